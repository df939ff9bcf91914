"""Settings validation (contract §2)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from cortiware import __version__
from cortiware.settings import (
    ALL_VARIABLES,
    VARIABLES,
    AppEnv,
    ConfigRow,
    RateLimitSpec,
    Settings,
    SettingsError,
    config_report,
    markdown_table,
    whsec_key,
)
from cortiware.webhooks import standard

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
        ("STRIPE_PAYMENT_METHODS", "card,paypal"),
        ("STRIPE_PAYMENT_METHODS", "sepa_debit"),
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


# --- the settings table -----------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def test_readme_configuration_table_is_the_settings_table() -> None:
    """README's configuration table is exactly what `python -m cortiware.settings` prints."""
    text = README.read_text()
    start = text.index("| variable | staging/production | default | notes |")
    end = text.index("<!-- end of settings table -->")
    assert text[start:end] == markdown_table()


def test_every_contract_variable_is_a_row_with_the_same_need() -> None:
    """Each variable of contract §2 is a row of the table, required when the contract says."""
    section = CONTRACT.read_text().split("## 2. Environment", 1)[1].split("\n## ", 1)[0]
    rows = {row.name: row for row in VARIABLES}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        assert names, line
        for name in names:
            assert name in rows, name
            assert rows[name].required_deployed == (cells[1] == "yes"), name


def test_every_row_is_a_settings_field_parsed_from_the_environment() -> None:
    """Each row's variable reaches its field: setting it changes the built settings."""
    names = [row.name for _, row in ALL_VARIABLES]
    assert len(names) == len(set(names))
    assert "APP_VERSION" in names
    settings = Settings.from_env(dict(STRONG, APP_VERSION="2026.12.06-abc123"))
    assert settings.app_version == "2026.12.06-abc123"
    assert Settings.from_env(STRONG).app_version == __version__


@pytest.mark.parametrize("value", ["has space", "-leading-dash", "x" * 129, "tag/with/slash"])
def test_app_version_must_be_an_image_tag(value: str) -> None:
    """APP_VERSION is refused unless it is a container image tag."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, APP_VERSION=value))
    assert [p.split(":")[0] for p in info.value.problems] == ["APP_VERSION"]


def test_secret_rows_are_hidden_from_repr() -> None:
    """Every secret row's field is left out of the settings repr."""
    secret_fields = {attribute for attribute, row in ALL_VARIABLES if row.secret}
    shown = {f.name for f in dataclasses.fields(Settings) if f.repr}
    assert secret_fields
    assert not secret_fields & shown


@pytest.mark.parametrize(
    "secret", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!", "nope", "whsec_ab"]
)
def test_settings_decode_federation_secrets_as_the_verifier_does(secret: str) -> None:
    """Start-up's `whsec_` decoding and the federation verifier's agree on every secret."""
    try:
        expected: bytes | None = standard.decode_secret(secret)
    except ValueError:
        expected = None
    try:
        actual: bytes | None = whsec_key(secret)
    except ValueError:
        actual = None
    assert actual == expected


def test_config_report_names_need_and_state_without_values() -> None:
    """`config_report` gives need and state per public variable and never a value."""
    app_env, rows, problems = config_report(dict(STRONG, STRIPE_SECRET_KEY="sk_test_x"))
    assert app_env is AppEnv.PRODUCTION
    by_name = {row.name: row for row in rows}
    assert by_name["SESSION_SECRET"] == ConfigRow("SESSION_SECRET", "required", "set")
    assert by_name["RATE_LIMIT_AUTH"].state == "default"
    assert "CORTIWARE_REDIS_PREFIX" not in by_name
    assert [p.split(":")[0] for p in problems] == ["STRIPE_SECRET_KEY"]
    assert "sk_test_x" not in " ".join(problems)


# --- deployed environments refuse test and development values ---------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_SECRET_KEY", "sk_test_abc"),
        ("STRIPE_SECRET_KEY", "rk_test_abc"),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_abc"),
    ],
)
def test_production_refuses_test_mode_stripe_keys(name: str, value: str) -> None:
    """APP_ENV=production refuses a test-mode Stripe key, naming it."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, **{name: value}))
    assert [p.split(":")[0] for p in info.value.problems] == [name]
    assert value not in str(info.value)


def test_staging_refuses_live_mode_stripe_keys() -> None:
    """APP_ENV=staging refuses live-mode keys (staging never charges real cards)."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(dict(STRONG, APP_ENV="staging"))
    assert [p.split(":")[0] for p in info.value.problems] == [
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
    ]
    staging = dict(
        STRONG, APP_ENV="staging", STRIPE_SECRET_KEY="sk_test_a", STRIPE_PUBLISHABLE_KEY="pk_test_a"
    )
    assert Settings.from_env(staging).app_env is AppEnv.STAGING


def test_development_refuses_keys_of_different_modes() -> None:
    """A live secret key with a test publishable key is a mistake wherever it runs."""
    with pytest.raises(SettingsError, match="STRIPE_PUBLISHABLE_KEY"):
        Settings.from_env({"STRIPE_SECRET_KEY": "sk_live_a", "STRIPE_PUBLISHABLE_KEY": "pk_test_a"})


DEV_SECRETS = [
    (row.name, row.dev_default)
    for _, row in ALL_VARIABLES
    if row.secret and row.dev_default and not row.name.startswith("STRIPE_SECRET")
]


@pytest.mark.parametrize("app_env", ["staging", "production"])
@pytest.mark.parametrize(("name", "value"), DEV_SECRETS)
def test_deployed_environments_refuse_published_development_secrets(
    app_env: str, name: str, value: str
) -> None:
    """Staging and production refuse each published development secret, however long."""
    keys = {"STRIPE_SECRET_KEY": "sk_test_a", "STRIPE_PUBLISHABLE_KEY": "pk_test_a"}
    env = dict(STRONG, APP_ENV=app_env, **(keys if app_env == "staging" else {}))
    env[name] = value
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert f"{name}: is a published development value" in info.value.problems
    assert value not in str(info.value)


def test_published_development_secret_is_refused_as_previous_and_in_a_list() -> None:
    """A development secret is refused as a `_PREVIOUS` value and inside a rotation list."""
    env = dict(
        STRONG,
        SESSION_SECRET_PREVIOUS="dev-session-secret-" + "x" * 20,
        STRIPE_WEBHOOK_SECRET="whsec_live,whsec_dev_placeholder",
    )
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "SESSION_SECRET_PREVIOUS",
        "STRIPE_WEBHOOK_SECRET",
    ]


# --- rotation ----------------------------------------------------------------------------


def test_previous_secrets_are_accepted_after_the_current_ones() -> None:
    """`_PREVIOUS` values join the accepted secrets, newest first."""
    settings = Settings.from_env(
        dict(STRONG, SESSION_SECRET_PREVIOUS="o" * 32, ONBOARDING_TOKEN_SECRET_PREVIOUS="q" * 64)
    )
    assert settings.session_secrets == ("s" * 32, "o" * 32)
    assert settings.onboarding_token_secrets == ("k" * 64, "q" * 64)
    assert Settings.from_env(STRONG).session_secrets == ("s" * 32,)


def test_previous_secret_must_be_strong_and_different() -> None:
    """A weak `_PREVIOUS` or one equal to the current secret is refused."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            dict(STRONG, SESSION_SECRET_PREVIOUS="s" * 32, ONBOARDING_TOKEN_SECRET_PREVIOUS="x")
        )
    assert info.value.problems == [
        "ONBOARDING_TOKEN_SECRET_PREVIOUS: must be at least 64 characters",
        "SESSION_SECRET_PREVIOUS: must differ from SESSION_SECRET",
    ]


def test_payment_methods_are_card_then_bank_debits_in_order_without_repeats() -> None:
    """STRIPE_PAYMENT_METHODS defaults to card and keeps the order given, once each."""
    assert Settings.from_env({}).stripe_payment_methods == ("card",)
    given = {"STRIPE_PAYMENT_METHODS": " card, sepa_debit ,us_bank_account,card"}
    assert Settings.from_env(given).stripe_payment_methods == (
        "card",
        "sepa_debit",
        "us_bank_account",
    )
