"""Settings validation (contract §2)."""

from __future__ import annotations

import pytest

from cortiware.settings import AppEnv, RateLimitSpec, Settings, SettingsError

STRONG = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://app:pw@db.internal:5432/cortiware",
    "REDIS_URL": "rediss://:token@cache.internal:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_abc",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_one,whsec_two",
    "ONBOARDING_TOKEN_SECRET": "k" * 64,
    "BASE_URL": "https://app.example.com",
    "PROVIDER_USERNAME": "provider",
    "PROVIDER_PASSWORD": "p" * 32,
    "DEVELOPER_USERNAME": "developer",
    "DEVELOPER_PASSWORD": "d" * 32,
    "ACCOUNTANT_USERNAME": "accountant",
    "ACCOUNTANT_PASSWORD": "a" * 32,
    "SESSION_SECRET": "s" * 32,
}


def test_development_needs_no_configuration() -> None:
    """With an empty environment the service runs on SQLite and in-memory stores."""
    settings = Settings.from_env({})
    assert settings.app_env is AppEnv.DEVELOPMENT
    assert settings.is_embedded_database
    assert settings.redis_url is None


def test_strong_production_environment_is_accepted() -> None:
    """A complete production environment validates and keeps every rotating secret."""
    settings = Settings.from_env(STRONG)
    assert settings.stripe_webhook_secrets == ("whsec_one", "whsec_two")
    assert settings.secure_cookies


def test_production_lists_every_problem_without_values() -> None:
    """Missing and weak values are all named in one error, and no value is echoed."""
    env = dict(STRONG, ONBOARDING_TOKEN_SECRET="short-secret-value", SESSION_SECRET="tiny")
    del env["REDIS_URL"]
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "ONBOARDING_TOKEN_SECRET" in message
    assert "SESSION_SECRET" in message
    assert "REDIS_URL" in message
    assert "short-secret-value" not in message
    assert "tiny" not in message
    assert len(info.value.problems) == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://cache"),
        ("BASE_URL", "http://app.example.com"),
        ("STRIPE_SECRET_KEY", "pk_wrong"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_ok,nope"),
        ("PROVIDER_PASSWORD", "x" * 31),
        ("RATE_LIMIT_AUTH", "10/fortnight"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("AUDIT_RETENTION_DAYS", "99999"),
        ("APP_ENV", "live"),
        ("CORTIWARE_REDIS_TIMEOUT", "-1"),
        ("CORTIWARE_REDIS_TIMEOUT", "soon"),
    ],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    """Each malformed value is refused and named."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, **{name: value}))
    assert any(p.startswith(name.split("_", maxsplit=1)[0]) for p in info.value.problems)
    assert value not in str(info.value)


def test_oidc_is_all_or_none() -> None:
    """Setting one OIDC variable without the others is a problem naming the missing ones."""
    with pytest.raises(SettingsError, match="OIDC_CLIENT_SECRET"):
        Settings.from_env(dict(STRONG, OIDC_ISSUER="https://id.example.com", OIDC_CLIENT_ID="c"))


def test_rate_limit_spec_parses_units() -> None:
    """`N/unit` becomes a limit and a period in seconds."""
    assert RateLimitSpec.parse("600/minute") == RateLimitSpec(600, 60)
    assert RateLimitSpec.parse("5/second") == RateLimitSpec(5, 1)
    assert str(RateLimitSpec.parse("2/hour")) == "2/hour"


def test_repr_hides_secrets() -> None:
    """The settings repr never contains a secret value."""
    text = repr(Settings.from_env(STRONG))
    assert "k" * 64 not in text
    assert "p" * 32 not in text
    assert "sk_live_abc" not in text


@pytest.mark.parametrize(
    "secret",
    ["whsec_!!notbase64", "whsec_", "whsec_abc", "bm90LWEtcHJlZml4", "whsec_ bWFu"],
)
def test_federation_secret_the_verifier_cannot_decode_is_refused(secret: str) -> None:
    """Each federation secret must be whsec_ + base64 of a non-empty key, as the verifier
    decodes it; a bad one is named by position, never echoed."""
    good = "whsec_" + "bWFueS1rZXktYnl0ZXM="
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, FEDERATION_WEBHOOK_SECRETS=f"{good},{secret}"))
    (problem,) = info.value.problems  # the good secret passes
    assert problem.startswith("FEDERATION_WEBHOOK_SECRETS: secret 2 of 2 ")
    assert secret.removeprefix("whsec_") not in problem or secret == "whsec_"


def test_federation_secrets_that_decode_are_accepted() -> None:
    """Valid whsec_ + base64 secrets (two while rotating) are kept in order."""
    secrets = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_bWFu"
    settings = Settings.from_env(dict(STRONG, FEDERATION_WEBHOOK_SECRETS=secrets))
    assert settings.federation_webhook_secrets == (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_bWFu",
    )


@pytest.mark.parametrize("value", [" , ", ",", ",,,"])
def test_stripe_webhook_secret_of_only_commas_is_missing_in_production(value: str) -> None:
    """A STRIPE_WEBHOOK_SECRET with no secret between its commas is as good as unset."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, STRIPE_WEBHOOK_SECRET=value))
    assert info.value.problems == ["STRIPE_WEBHOOK_SECRET: required in production"]


def test_stripe_webhook_secret_of_only_commas_uses_the_default_in_development() -> None:
    """In development an all-commas STRIPE_WEBHOOK_SECRET falls back like an unset one."""
    settings = Settings.from_env({"STRIPE_WEBHOOK_SECRET": " , "})
    assert settings.stripe_webhook_secrets == ("whsec_dev_placeholder",)
    assert "STRIPE_WEBHOOK_SECRET" in settings.uses_dev_defaults


@pytest.mark.parametrize(
    "value", ["99999999999999999999999/second", "1000001/minute", "0/hour", "1" * 5000 + "/hour"]
)
def test_rate_limit_count_is_bounded(value: str) -> None:
    """A rate limit allows 1 to 1,000,000 requests per period; beyond is one problem."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, RATE_LIMIT_DEFAULT=value))
    assert info.value.problems == [
        "RATE_LIMIT_DEFAULT: expected N/second, N/minute or N/hour with N from 1 to 1,000,000"
    ]


def test_rate_limit_count_up_to_a_million_is_accepted() -> None:
    """The bound is inclusive."""
    assert RateLimitSpec.parse("1000000/second") == RateLimitSpec(1_000_000, 1)
