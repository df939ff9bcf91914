"""Fixtures shared by every test layer."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from cortiware.settings import Settings

TEST_ENV: dict[str, str] = {
    "APP_ENV": "test",
    "STRIPE_SECRET_KEY": "sk_test_cortiware",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_cortiware",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_primary,whsec_test_secondary",
    "ONBOARDING_TOKEN_SECRET": "o" * 64,
    "SESSION_SECRET": "s" * 48,
    "BASE_URL": "http://testserver.local",
    "PROVIDER_USERNAME": "provider",
    "PROVIDER_PASSWORD": "provider-password-for-tests-0123456789",
    "DEVELOPER_USERNAME": "developer",
    "DEVELOPER_PASSWORD": "developer-password-for-tests-0123456789",
    "ACCOUNTANT_USERNAME": "accountant",
    "ACCOUNTANT_PASSWORD": "accountant-password-for-tests-0123456789",
    "FEDERATION_WEBHOOK_SECRETS": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path_factory: pytest.TempPathFactory) -> SettingsFactory:
    """Build validated settings from the test environment plus overrides (None removes)."""

    def build(**overrides: str | None) -> Settings:
        env = dict(TEST_ENV)
        env.setdefault("CORTIWARE_REDIS_PREFIX", f"cwtest:{uuid.uuid4().hex[:12]}:")
        # The production Redis timeout (0.25 s): the breaker and the script channel measure
        # Redis, not a loaded machine's event loop (tests/integration/test_breaker_busy_loop.py).
        if "DATABASE_URL" not in overrides:
            path = tmp_path_factory.mktemp("db") / "cortiware.sqlite3"
            env["DATABASE_URL"] = f"sqlite:///{path}"
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return Settings.from_env(env)

    return build
