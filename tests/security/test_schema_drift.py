"""What the published OpenAPI document says about inputs, the service enforces (and the
reverse): currency codes, feature lengths, zero bounds. What the schema cannot say is listed
in tests/security/test_schema_fuzz.py and docs/security.md."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from cortiware.monetization.schemas import CURRENCY_CODES
from tests.support.auth import login_staff

Client = AsyncTestClient[Litestar]


def _component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


async def test_schema_states_currency_feature_and_zero_bounds(client: Client) -> None:
    """Currencies are the ISO 4217 enum, feature items are at most 200 characters, and
    trial days and amounts publish their minimum of 0."""
    document = (await client.get("/api/docs/openapi.json")).json()
    currency = _component(document, "PriceIn")["properties"]["currency"]
    assert set(currency["enum"]) - {None} == set(CURRENCY_CODES)  # None: "use the default"
    assert {"usd", "eur", "jpy"} <= set(CURRENCY_CODES)
    assert len(CURRENCY_CODES) > 150
    features = _component(document, "PlanIn")["properties"]["features"]
    assert features["items"]["maxLength"] == 200
    assert _component(document, "ConfigUpdate")["properties"]["trial_days"]["minimum"] == 0
    assert _component(document, "PriceIn")["properties"]["amount_cents"]["minimum"] == 0


async def test_service_refuses_what_the_schema_refuses(client: Client) -> None:
    """An unknown currency and a 201-character feature are 400; a known currency passes."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    config = "/api/provider/monetization/config"
    assert (await client.put(config, json={"currency": "zzz"})).status_code == 400
    assert (await client.put(config, json={"currency": "eur"})).status_code == 200
    code = f"drift-{uuid.uuid4().hex[:8]}"
    long_feature = {"code": code, "name": "Drift", "features": ["x" * 201]}
    assert (await client.post("/api/provider/plans", json=long_feature)).status_code == 400
    ok = {"code": code, "name": "Drift", "features": ["x" * 200]}
    assert (await client.post("/api/provider/plans", json=ok)).status_code == 201
