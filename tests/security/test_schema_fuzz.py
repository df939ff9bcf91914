"""Schemathesis over the OpenAPI document as anonymous, provider and owner.

A real client (schemathesis 4, property-based cases from the published schema) against the
service over real HTTP on PostgreSQL and Redis. Every case must answer without a 5xx and
conform to the schema (status, content type, headers, body), except for the checks listed
in `EXCLUDED` with the reason the schema cannot say it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.generation.meta import CoverageScenario, coverage_scenario
from schemathesis.schemas import APIOperation, BaseSchema

from cortiware.db import migrate
from cortiware.idempotency.middleware import valid_key
from cortiware.settings import Settings
from tests.conftest import TEST_ENV
from tests.integration.backends import Backends, scratch_database
from tests.security._served import Identity, onboard_owner, served, staff

EXAMPLES = 8
"""Cases per operation and identity: bounded so the suite runs in a minute or two."""

SCHEMA_CANNOT_SAY: dict[str, str] = {
    # Schema-valid input the service refuses for a reason JSON Schema cannot state; only
    # `positive_data_acceptance` (ST202) is left out for these operations, every other
    # check (no 5xx, status codes, content types, headers, response bodies) still runs.
    "POST /api/webhooks/stripe": "the signature is an HMAC of the body under a secret",
    "POST /api/webhooks/federation": "the signature is an HMAC of id, timestamp and body",
    "GET /api/onboarding/verify": "the token is a value the service signed",
    "POST /api/onboarding/accept": "the token is a value the service signed",
    "GET /api/provider/audit": "the cursor is a value the service returned",
    "POST /api/owner/billing/checkout": "price_id must name an active price in the database",
    "POST /api/provider/invites": "plan_code must name an active plan in the database",
    "POST /api/provider/coupons": "exactly one of percent_off and amount_off_cents",
    "PUT /api/provider/monetization/config": "default_plan_code must name an active plan",
}
"""Operation → why schema-valid data may be refused (listed in docs/security.md)."""


@pytest.fixture(scope="module")
def fuzz_target(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Identity]]]:
    """The service on a database of its own (fuzzed writes touch no other test's rows)."""
    with scratch_database(backends.admin_database_url) as url:
        asyncio.run(migrate.upgrade(url))
        env = dict(
            TEST_ENV,
            DATABASE_URL=url,
            REDIS_URL=backends.redis_url,
            CORTIWARE_REDIS_PREFIX=f"cwfuzz:{tmp_path_factory.getbasetemp().name}:",
            CORTIWARE_REDIS_TIMEOUT="2",
            # Fuzzing explores the API, not the limiter (tests/security/test_login_spraying.py).
            RATE_LIMIT_DEFAULT="1000000/minute",
            RATE_LIMIT_AUTH="1000000/minute",
            RATE_LIMIT_AUTH_IP="1000000/minute",
            RATE_LIMIT_ONBOARDING="1000000/minute",
        )
        with served(Settings.from_env(env)) as (base, _app, _fake):
            provider = staff(base, "provider")
            owner, _ = onboard_owner(base, provider)
            yield (
                base,
                {"anonymous": Identity("anonymous", {}, {}), "provider": provider, "owner": owner},
            )


@pytest.fixture(scope="module")
def api_schema(fuzz_target: tuple[str, dict[str, Identity]]) -> BaseSchema:
    """The OpenAPI document the running service publishes."""
    base, _ = fuzz_target
    loaded = schemathesis.openapi.from_url(f"{base}/api/docs/openapi.json")
    # The input guard refuses NUL in every string (documented once for the whole API, not
    # as a pattern on each string of the schema): generate none.
    # The identities' cookie and CSRF header are sent as they are (the authorization matrix
    # and the CSRF tests vary them): no case generates or mutates them.
    loaded.config.generation.update(allow_x00=False, with_security_parameters=False)
    return loaded


def _fuzz(schema: BaseSchema, base: str, who: Identity, skip: frozenset[str] = frozenset()) -> None:
    """Every operation, in both generation modes; all failures reported together.

    The operations are walked here rather than with `schema.parametrize()`: schemathesis'
    lazy pytest integration reads a private pytest attribute that pytest 9 no longer has.
    """
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in skip:
            continue
        excluded = (
            [schemathesis.checks.positive_data_acceptance]
            if operation.label in SCHEMA_CANNOT_SAY
            else []
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            check = _checker(operation, mode, base, who, excluded)
            try:
                check()
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters, no body): nothing to run
            except (AssertionError, BaseExceptionGroup) as exc:  # reported together below
                failures.append(f"{who.name} {operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _checker(
    operation: APIOperation,
    mode: GenerationMode,
    base: str,
    who: Identity,
    excluded: list[Any],
) -> Callable[[], None]:
    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE and "Idempotency-Key" in (case.headers or {}):
            # As a client does: a fresh key per request (a reused key with another body is
            # 422 by contract, which generated keys would hit by chance).
            case.headers["Idempotency-Key"] = uuid.uuid4().hex
        # Credentials per call, not on a session: schemathesis then knows them as the
        # schema's `session` cookie and `csrf` header, and its auth checks can leave them out.
        case.call_and_validate(
            base_url=base,
            headers=dict(who.headers),
            cookies=dict(who.cookies),
            excluded_checks=excluded,
        )

    return check  # type: ignore[no-any-return]  # hypothesis' given erases the signature


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


def test_anonymous_calls_conform(
    api_schema: BaseSchema, fuzz_target: tuple[str, dict[str, Identity]]
) -> None:
    """As anonymous, no case answers 5xx or departs from the published schema."""
    base, identities = fuzz_target
    _fuzz(api_schema, base, identities["anonymous"])


# Logging out would end the identity's session for every later case; logout is covered by
# tests/integration/test_auth.py and the journey of test_logs.py.
NO_LOGOUT = frozenset({"/api/auth/logout"})


def test_provider_calls_conform(
    api_schema: BaseSchema, fuzz_target: tuple[str, dict[str, Identity]]
) -> None:
    """As the provider, no case answers 5xx or departs from the published schema."""
    base, identities = fuzz_target
    _fuzz(api_schema, base, identities["provider"], NO_LOGOUT)


def test_owner_calls_conform(
    api_schema: BaseSchema, fuzz_target: tuple[str, dict[str, Identity]]
) -> None:
    """As an organization's owner, no case answers 5xx or departs from the published schema."""
    base, identities = fuzz_target
    _fuzz(api_schema, base, identities["owner"], NO_LOGOUT)


def test_coverage_cases_conform(
    api_schema: BaseSchema, fuzz_target: tuple[str, dict[str, Identity]]
) -> None:
    """As the provider, schemathesis' negative coverage cases (each parameter and body field
    of the wrong type, out of range or missing; methods the path does not declare; OPTIONS)
    are refused as the schema says: a number as text is 400, an undeclared method is 405 with
    `Allow`, and OPTIONS lists exactly the declared methods (HEAD besides)."""
    base, identities = fuzz_target
    who = identities["provider"]
    failures: list[str] = []
    scenarios: set[str] = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.path in NO_LOGOUT:
            continue
        excluded = (
            [schemathesis.checks.positive_data_acceptance]
            if operation.label in SCHEMA_CANNOT_SAY
            else []
        )
        cases = api_schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.NEGATIVE],
            generation_config=api_schema.config.generation,
        )
        for case in cases:
            scenario = coverage_scenario(case)
            scenarios.add(str(scenario))
            key = (case.headers or {}).get("Idempotency-Key")
            if isinstance(key, str) and valid_key(key):
                # A valid key made fresh (a reused key with another body is 422 by contract);
                # an invalid one is the case's point and stays.
                case.headers["Idempotency-Key"] = uuid.uuid4().hex
            try:
                case.call_and_validate(
                    base_url=base,
                    headers=dict(who.headers),
                    cookies=dict(who.cookies),
                    excluded_checks=excluded,
                )
            except (AssertionError, BaseExceptionGroup) as exc:  # reported together below
                failures.append(f"{operation.label} {case.method} ({scenario}): {exc}")
    assert {CoverageScenario.INCORRECT_TYPE, CoverageScenario.UNSPECIFIED_HTTP_METHOD} <= {
        CoverageScenario(s) for s in scenarios if s != "None"
    }
    assert not failures, "\n\n".join(failures)
