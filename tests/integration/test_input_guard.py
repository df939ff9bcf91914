"""Input PostgreSQL cannot store or the JSON decoders cannot parse is one 400, not a 500.

Each case here answered 500 on PostgreSQL before `InputGuardMiddleware` (found by fuzzing).
"""

from __future__ import annotations

import base64
import json

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.auth import login_staff

JSON = {"Content-Type": "application/json"}
AUDIT = "/api/provider/audit?cursor="


async def _problem(response: object, detail: str) -> None:
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert detail in response.json()["detail"]  # type: ignore[attr-defined]


async def test_anonymous_bad_bodies_are_400(client: AsyncTestClient[Litestar]) -> None:
    login = "/api/auth/login"
    nul = await client.post(login, json={"username": "a\u0000", "password": "x"})
    await _problem(nul, "NUL characters")
    not_utf8 = await client.post(login, content=b'{"username":"\xff","password":"x"}', headers=JSON)
    await _problem(not_utf8, "not valid UTF-8")
    deep = await client.post(login, content=b"[" * 2000 + b"]" * 2000, headers=JSON)
    await _problem(deep, "nested deeper than 32 levels")
    untyped = await client.post(login, content=b'{"username":"a\\u0000","password":"x"}')
    await _problem(untyped, "NUL characters")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for content, detail in [
        (b'{"username":"a\\u0000","password":"x"}', "NUL characters"),
        (b'{"username":"caf\xe9","password":"x"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
    ]:
        # A form Content-Type does not get a JSON body past the guard.
        await _problem(await client.post(login, content=content, headers=form), detail)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/provider/invites", {"email": "n@example.com", "org_name": "A\u0000B"}),
        ("POST", "/api/provider/plans", {"code": "nul", "name": "N", "description": "\u0000"}),
        ("GET", "/api/provider/audit?entity=%00", None),
        ("GET", "/api/provider/audit?action=a%00b", None),
        ("GET", "/api/accountant/subscriptions?status=%00", None),
        ("DELETE", "/api/provider/coupons/a%00b", None),
    ],
)
async def test_nul_anywhere_in_a_provider_request_is_400_and_stores_nothing(
    client: AsyncTestClient[Litestar], method: str, path: str, body: object
) -> None:
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    response = await client.request(
        method, path, content=None if body is None else json.dumps(body), headers=JSON
    )
    await _problem(response, "NUL characters")
    invites = (await client.get("/api/provider/invites")).json()
    assert not any("\u0000" in json.dumps(i) for i in invites)


async def test_text_that_only_looks_like_an_escape_is_kept(
    client: AsyncTestClient[Litestar],
) -> None:
    """A backslash followed by `u0000` is ordinary text (JSON `\\\\u0000`), stored as sent;
    brackets inside strings do not count as nesting."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    name = "C:\\u0000 " + "[" * 40
    created = await client.post(
        "/api/provider/invites", json={"email": "esc@example.com", "org_name": name}
    )
    assert created.status_code == 201, created.text
    assert created.json()["org_name"] == name


def _cursor(value: object) -> str:
    raw = json.dumps(value).encode() if not isinstance(value, bytes) else value
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/provider/coupons", {"code": "BIG1", "percent_off": 10,
                                            "duration": "once", "max_redemptions": 2**31}),
        ("POST", "/api/provider/coupons", {"code": "BIG2", "percent_off": 10,
                                            "duration": "once", "max_redemptions": 2**63}),
        ("POST", "/api/provider/coupons", {"code": "LATE", "percent_off": 10, "duration": "once",
                                            "expires_at": "9999-12-31T23:59:59-23:59"}),
        ("GET", "/api/provider/audit?since=9999-12-31T23:59:59-23:59", None),
        ("GET", "/api/provider/audit?until=0001-01-01T00:00:00%2B05:00", None),
        ("GET", AUDIT + _cursor(["2026-01-01T00:00:00+00:00", 10**23]), None),
        ("GET", AUDIT + _cursor(["2026-01-01T00:00:00+00:00", True]), None),
        ("GET", AUDIT + _cursor(["0001-01-01T00:00:00+01:00", 5]), None),
        ("GET", AUDIT + _cursor(b"[" * 3000), None),
    ],
)  # fmt: skip
async def test_values_outside_what_the_database_holds_are_400(
    client: AsyncTestClient[Litestar], method: str, path: str, body: object
) -> None:
    """Integers beyond the column, datetimes that overflow in UTC and cursors this API never
    issued (each a 500 on PostgreSQL before) are 400 problems."""
    client.headers["X-CSRF-Token"] = await login_staff(client, "provider")
    response = await client.request(
        method, path, content=None if body is None else json.dumps(body), headers=JSON
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
