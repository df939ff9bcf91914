"""Typed settings, built once at start-up from the environment (contract §2).

Each environment variable is declared once, as a field of `Settings` whose metadata is a
`Variable` row: its name, when it is required, its default, its parser, whether it is a
secret, and its documentation. That table drives `Settings.from_env()` (which validates
everything at once and raises `SettingsError` listing every problem by variable name, never
by value), `cortiware config check` (through `config_report`), and the configuration table
of the README (`markdown_table`, checked equal by a test).
"""

# ruff: noqa: RUF009 - `env(...)` is a field specifier (it returns `dataclasses.field`), not a default

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from typing import Any, Final
from urllib.parse import urlsplit

from cortiware import __version__

__all__ = [
    "ALL_VARIABLES",
    "CHECKOUT_PAYMENT_METHODS",
    "VARIABLES",
    "AppEnv",
    "ConfigRow",
    "RateLimitSpec",
    "Settings",
    "SettingsError",
    "StaffCredential",
    "Variable",
    "config_report",
    "markdown_table",
    "whsec_key",
]

DEFAULT_SQLITE_PATH: Final = "cortiware-dev.sqlite3"
_RATE_RE: Final = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour)\s*$", re.ASCII)
_PERIODS: Final = {"second": 1, "minute": 60, "hour": 3600}
MAX_RATE_LIMIT: Final = 1_000_000
"""Most requests a rate limit may allow per period; beyond it the limiter's arithmetic and
the `RateLimit-Remaining` header stop making sense (a fuzzed 10**23 printed -2**63)."""


class AppEnv(StrEnum):
    """Where the process runs; decides which variables are required and how strict."""

    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"

    @property
    def is_deployed(self) -> bool:
        """True for staging and production: real backends and strong secrets required."""
        return self in (AppEnv.STAGING, AppEnv.PRODUCTION)


class SettingsError(Exception):
    """The environment is invalid; `problems` names every variable at fault, never its value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid configuration: " + "; ".join(problems) if problems else "invalid configuration"
        )


class Invalid(ValueError):
    """A value is refused; each message is one problem (never containing the value)."""

    def __init__(self, *messages: str) -> None:
        self.messages = messages
        super().__init__("; ".join(messages))


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """A limit of `limit` requests per `period` seconds, parsed from `N/second|minute|hour`."""

    limit: int
    period: int

    @classmethod
    def parse(cls, raw: str) -> RateLimitSpec:
        """Parse `N/unit` with 1 <= N <= MAX_RATE_LIMIT; raise ValueError on anything else."""
        match = _RATE_RE.match(raw)
        if match is None or not 1 <= int(match.group(1)) <= MAX_RATE_LIMIT:
            raise ValueError(
                f"expected N/second, N/minute or N/hour with N from 1 to {MAX_RATE_LIMIT:,}"
            )
        return cls(limit=int(match.group(1)), period=_PERIODS[match.group(2)])

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIODS.items()}[self.period]
        return f"{self.limit}/{unit}"


@dataclass(frozen=True, slots=True)
class StaffCredential:
    """A staff role's username and password from the environment."""

    role: str
    username: str
    password: str = field(repr=False)


Parser = Callable[[str, AppEnv], Any]
"""Turns a variable's raw text into its value for an environment; raises ValueError."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: one row of the settings table."""

    name: str
    doc: str
    """What it is and its format, for the README table."""
    parse: Parser
    required_deployed: bool = False
    """Required in staging and production (unset there is a problem)."""
    secret: bool = False
    """Never printed, never in `repr`; the published development value is refused deployed."""
    default: str | None = None
    """Raw value used when unset (and not required): parsed like a set value."""
    dev_default: str | None = None
    """Public raw value used when unset in development and test (refused when deployed)."""
    default_from: str | None = None
    """When unset, take the value of this other variable."""
    listed: bool = False
    """Comma-separated: a value with nothing between its commas counts as unset."""
    public: bool = True
    """Part of contract §2 (README table, `config check`); else an internal knob."""
    default_doc: str | None = None
    """How the README states a default computed at start-up."""

    @property
    def description(self) -> str:
        """The documentation line (what `config check` and the README show)."""
        return self.doc

    @property
    def default_text(self) -> str:
        """The default as the README states it."""
        if self.default_doc is not None:
            return self.default_doc
        if self.default == "":
            return "none"
        if self.default is not None:
            return f"`{self.default}`"
        if self.default_from is not None:
            return f"`{self.default_from}`"
        if self.dev_default is not None:
            return "development value" if self.secret else f"`{self.dev_default}` (development)"
        return ""


def env(
    name: str,
    doc: str,
    parse: Parser,
    *,
    required_deployed: bool = False,
    secret: bool = False,
    default: str | None = None,
    dev_default: str | None = None,
    default_from: str | None = None,
    listed: bool = False,
    public: bool = True,
    default_doc: str | None = None,
) -> Any:  # a field specifier: typed by the annotation it is assigned to
    """A `Settings` field read from environment variable `name` (one row of the table)."""
    row = Variable(
        name,
        doc,
        parse,
        required_deployed=required_deployed,
        secret=secret,
        default=default,
        dev_default=dev_default,
        default_from=default_from,
        listed=listed,
        public=public,
        default_doc=default_doc,
    )
    return field(repr=not secret, metadata={"env": row})


# --- parsers: each gets the stripped, non-empty raw text and the environment ----------------

SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq `sslmode` values; asyncpg takes the same names as its `ssl` argument."""
_POSTGRES: Final = ("postgresql://", "postgres://")


def _app_env(raw: str, _: AppEnv) -> AppEnv:
    try:
        return AppEnv(raw)
    except ValueError:
        raise Invalid("must be one of development, test, staging, production") from None


def _postgres_problems(url: str) -> list[str]:
    """What would stop asyncpg from connecting with `url`, before any connection is tried."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ["not a valid URL"]
    problems: list[str] = []
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        problems.append("the port must be a number")
    ssl_keys = 0
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        if key not in ("sslmode", "ssl"):
            problems.append(f"unsupported query parameter {key!r} (only sslmode)")
            continue
        ssl_keys += 1
        if value not in SSL_MODES:
            problems.append(f"{key} must be one of {', '.join(SSL_MODES)}")
    if ssl_keys > 1:
        problems.append("give sslmode once")
    return problems


def _database_url(raw: str, app_env: AppEnv) -> str:
    if raw.startswith("sqlite://"):
        if app_env.is_deployed:
            raise Invalid(f"SQLite is not allowed in {app_env.value}")
        return raw
    if not raw.startswith(_POSTGRES):
        raise Invalid("must start with postgresql:// (or sqlite:// outside staging)")
    if problems := _postgres_problems(raw):
        raise Invalid(*problems)
    return raw


def _postgres_url(raw: str, _: AppEnv) -> str:
    if not raw.startswith(_POSTGRES):
        raise Invalid("must start with postgresql://")
    if problems := _postgres_problems(raw):
        raise Invalid(*problems)
    return raw


def _redis_url(raw: str, _: AppEnv) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise Invalid("must start with redis:// or rediss://")
    return raw


def _redis_timeout(raw: str, _: AppEnv) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 10:
        raise Invalid("must be a number of seconds in (0, 10]")
    return value


def _text(raw: str, _: AppEnv) -> str:
    return raw


def _stripe_mode(raw: str, kind: str) -> str:
    """`test` or `live` from a Stripe key `sk_test_…`/`rk_live_…`/`pk_test_…` (else '')."""
    rest = raw.removeprefix(kind)
    return next((mode for mode in ("test", "live") if rest.startswith(mode + "_")), "")


def _stripe_mode_problems(raw: str, app_env: AppEnv, kinds: tuple[str, ...]) -> list[str]:
    mode = next((_stripe_mode(raw, k) for k in kinds if raw.startswith(k)), "")
    if app_env is AppEnv.PRODUCTION and mode != "live":
        return ["production needs a live-mode key (…_live_…), not a test-mode one"]
    if app_env is AppEnv.STAGING and mode == "live":
        return ["staging takes a test-mode key (…_test_…): it must never charge real cards"]
    return []


def _stripe_secret_key(raw: str, app_env: AppEnv) -> str:
    if not raw.startswith(("sk_", "rk_")):
        raise Invalid("must start with sk_ (or a restricted rk_ key)")
    if problems := _stripe_mode_problems(raw, app_env, ("sk_", "rk_")):
        raise Invalid(*problems)
    return raw


def _stripe_publishable_key(raw: str, app_env: AppEnv) -> str:
    if not raw.startswith("pk_"):
        raise Invalid("must start with pk_")
    if problems := _stripe_mode_problems(raw, app_env, ("pk_",)):
        raise Invalid(*problems)
    return raw


def _split_list(raw: str | None) -> tuple[str, ...]:
    """The non-blank items of a comma-separated value."""
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _stripe_webhook_secrets(raw: str, _: AppEnv) -> tuple[str, ...]:
    secrets = _split_list(raw)
    if any(not s.startswith("whsec_") for s in secrets):
        raise Invalid("every comma-separated secret must start with whsec_")
    return secrets


CHECKOUT_PAYMENT_METHODS: Final[Mapping[str, frozenset[str] | None]] = {
    "card": None,
    "us_bank_account": frozenset({"usd"}),
    "sepa_debit": frozenset({"eur"}),
    "bacs_debit": frozenset({"gbp"}),
    "au_becs_debit": frozenset({"aud"}),
}
"""Stripe Checkout payment method types the service may offer, with the currencies each takes
(None: any). Bank debits are offered only for a price in their currency
(https://docs.stripe.com/payments/payment-methods/payment-method-support)."""


def _payment_methods(raw: str, _: AppEnv) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(_split_list(raw)))
    problems = [
        f"item {position} is not a payment method the service offers (see the README)"
        for position, method in enumerate(methods, start=1)
        if method not in CHECKOUT_PAYMENT_METHODS
    ]
    if "card" not in methods:
        problems.append("must include card (offered for every currency)")
    if problems:
        raise Invalid(*problems)
    return methods


_PAYMENT_METHODS_DOC: Final = (
    "what Stripe Checkout offers, comma-separated: `card` and any of "
    + ", ".join(
        f"`{name}` ({', '.join(sorted(currencies))})"
        for name, currencies in CHECKOUT_PAYMENT_METHODS.items()
        if currencies is not None
    )
    + ", each bank debit only for prices in its currency; activate them in Stripe first"
)


def whsec_key(secret: str) -> bytes:
    """The key bytes of a Standard Webhooks `whsec_<base64>` secret; raise ValueError.

    The federation verifier decodes its secrets with this function, so start-up refuses
    exactly the secrets it could not use.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("a Standard Webhooks secret is whsec_ + base64") from exc


def _federation_secrets(raw: str, _: AppEnv) -> tuple[str, ...]:
    secrets = _split_list(raw)
    problems: list[str] = []
    for position, secret in enumerate(secrets, start=1):
        try:
            key = whsec_key(secret)
        except ValueError:
            problems.append(f"secret {position} of {len(secrets)} is not whsec_ + base64")
            continue
        if not key:
            problems.append(f"secret {position} of {len(secrets)} has an empty key")
    if problems:
        raise Invalid(*problems)
    return secrets


def _min_length(length: int, *, deployed_only: bool = False) -> Parser:
    def parse(raw: str, app_env: AppEnv) -> str:
        if len(raw) < length and (app_env.is_deployed or not deployed_only):
            raise Invalid(f"must be at least {length} characters")
        return raw

    return parse


def _base_url(raw: str, app_env: AppEnv) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("must be an absolute http(s):// origin")
    if app_env.is_deployed and parts.scheme != "https":
        raise Invalid(f"must use https:// in {app_env.value}")
    return raw.rstrip("/")


def _oidc_issuer(raw: str, app_env: AppEnv) -> str:
    if app_env.is_deployed and not raw.startswith("https://"):
        raise Invalid("must use https://")
    return raw


def _sentry_dsn(raw: str, _: AppEnv) -> str:
    if not raw.startswith(("https://", "http://")):
        raise Invalid("must be an http(s):// DSN")
    return raw


def _sample_rate(raw: str, _: AppEnv) -> float:
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise Invalid("must be a number from 0 to 1")
    return rate


def _proxies(raw: str, _: AppEnv) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in _split_list(raw))
    except ValueError:
        raise Invalid("every entry must be an IP address or CIDR") from None


def _boolean(raw: str, _: AppEnv) -> bool:
    value = raw.lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise Invalid("must be true or false")
    return value in ("true", "1", "yes")


def _rate_limit(raw: str, _: AppEnv) -> RateLimitSpec:
    try:
        return RateLimitSpec.parse(raw)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _retention_days(raw: str, _: AppEnv) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 3650:
        raise Invalid("must be an integer from 1 to 3650")
    return int(raw)


def _app_version(raw: str, _: AppEnv) -> str:
    # What a container image tag may hold (plus `+` for PEP 440 local versions).
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}", raw):
        raise Invalid("must be an image tag: letters, digits, _ . + -, at most 128 characters")
    return raw


_DEV_ONBOARDING_SECRET: Final = "dev-onboarding-secret-" + "x" * 48
_DEV_SESSION_SECRET: Final = "dev-session-secret-" + "x" * 20


@dataclass(frozen=True)
class Settings:
    """Every setting of contract §2, validated; secrets are excluded from `repr`.

    Each field declared with `env(...)` is one row of the settings table, in this order.
    """

    app_env: AppEnv = env(
        "APP_ENV", "development, test, staging or production", _app_env, default="development"
    )
    app_version: str = env(
        "APP_VERSION",
        "the deployed image tag; health, Sentry release and smoke report it",
        _app_version,
        default=__version__,
        default_doc="the package version",
    )
    database_url: str = env(
        "DATABASE_URL",
        "`postgresql://…` (libpq's `?sslmode=` is honoured; no other query parameters); "
        "unset outside staging/production: an SQLite file",
        _database_url,
        required_deployed=True,
        secret=True,
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
    )
    database_url_unpooled: str = env(
        "DATABASE_URL_UNPOOLED",
        "direct URL (bypassing RDS Proxy) for migrations",
        _postgres_url,
        secret=True,
        default_from="DATABASE_URL",
    )
    database_replica_url: str | None = env(
        "DATABASE_REPLICA_URL",
        "a read replica: accountant reports, CSV exports and audit listings read there, "
        "falling back to `DATABASE_URL` while it is unreachable",
        _postgres_url,
        secret=True,
    )
    redis_url: str | None = env(
        "REDIS_URL",
        "`redis://` or `rediss://`; unset outside staging/production: in-memory stores",
        _redis_url,
        required_deployed=True,
        secret=True,
    )
    stripe_secret_key: str = env(
        "STRIPE_SECRET_KEY",
        "`sk_…` (or restricted `rk_…`); live mode in production, test mode in staging",
        _stripe_secret_key,
        required_deployed=True,
        secret=True,
        dev_default="sk_test_dev_placeholder",
    )
    stripe_publishable_key: str = env(
        "STRIPE_PUBLISHABLE_KEY",
        "`pk_…`, same mode as the secret key; validated, not yet used by the service "
        "(Checkout and the Billing Portal are created server-side)",
        _stripe_publishable_key,
        required_deployed=True,
        dev_default="pk_test_dev_placeholder",
    )
    stripe_webhook_secrets: tuple[str, ...] = env(
        "STRIPE_WEBHOOK_SECRET",
        "`whsec_…`, comma-separated while rotating (only commas counts as unset)",
        _stripe_webhook_secrets,
        required_deployed=True,
        secret=True,
        dev_default="whsec_dev_placeholder",
        listed=True,
    )
    stripe_payment_methods: tuple[str, ...] = env(
        "STRIPE_PAYMENT_METHODS",
        _PAYMENT_METHODS_DOC,
        _payment_methods,
        default="card",
        listed=True,
    )
    onboarding_token_secret: str = env(
        "ONBOARDING_TOKEN_SECRET",
        "≥ 64 characters; signs invite tokens",
        _min_length(64),
        required_deployed=True,
        secret=True,
        dev_default=_DEV_ONBOARDING_SECRET,
    )
    onboarding_token_secret_previous: str | None = env(
        "ONBOARDING_TOKEN_SECRET_PREVIOUS",
        "while rotating: the replaced secret, still accepted for open invites",
        _min_length(64),
        secret=True,
    )
    base_url: str = env(
        "BASE_URL",
        "`https://` origin; links and Origin checks",
        _base_url,
        required_deployed=True,
        dev_default="http://127.0.0.1:8000",
    )
    provider_username: str = env(
        "PROVIDER_USERNAME",
        "provider login",
        _text,
        required_deployed=True,
        dev_default="provider",
    )
    provider_password: str = env(
        "PROVIDER_PASSWORD",
        "≥ 32 characters in staging/production",
        _min_length(32, deployed_only=True),
        required_deployed=True,
        secret=True,
        dev_default="provider-dev-password",
    )
    developer_username: str = env(
        "DEVELOPER_USERNAME",
        "developer login",
        _text,
        required_deployed=True,
        dev_default="developer",
    )
    developer_password: str = env(
        "DEVELOPER_PASSWORD",
        "≥ 32 characters in staging/production",
        _min_length(32, deployed_only=True),
        required_deployed=True,
        secret=True,
        dev_default="developer-dev-password",
    )
    accountant_username: str = env(
        "ACCOUNTANT_USERNAME",
        "accountant login",
        _text,
        required_deployed=True,
        dev_default="accountant",
    )
    accountant_password: str = env(
        "ACCOUNTANT_PASSWORD",
        "≥ 32 characters in staging/production",
        _min_length(32, deployed_only=True),
        required_deployed=True,
        secret=True,
        dev_default="accountant-dev-password",
    )
    session_secret: str = env(
        "SESSION_SECRET",
        "≥ 32 characters; signs CSRF tokens and the OIDC flow cookie",
        _min_length(32),
        required_deployed=True,
        secret=True,
        dev_default=_DEV_SESSION_SECRET,
    )
    session_secret_previous: str | None = env(
        "SESSION_SECRET_PREVIOUS",
        "while rotating: the replaced secret, still accepted for CSRF tokens and OIDC cookies",
        _min_length(32),
        secret=True,
    )
    federation_webhook_secrets: tuple[str, ...] = env(
        "FEDERATION_WEBHOOK_SECRETS",
        "enables `/api/webhooks/federation`; each `whsec_` + base64 of a non-empty key, "
        "comma-separated",
        _federation_secrets,
        secret=True,
        default="",
        listed=True,
    )
    oidc_issuer: str | None = env(
        "OIDC_ISSUER", "`https://` issuer; all three OIDC variables or none", _oidc_issuer
    )
    oidc_client_id: str | None = env("OIDC_CLIENT_ID", "all three OIDC variables or none", _text)
    oidc_client_secret: str | None = env(
        "OIDC_CLIENT_SECRET", "all three OIDC variables or none", _text, secret=True
    )
    sentry_dsn: str | None = env("SENTRY_DSN", "error reporting", _sentry_dsn, secret=True)
    sentry_traces_sample_rate: float = env(
        "SENTRY_TRACES_SAMPLE_RATE", "0 to 1", _sample_rate, default="0.0"
    )
    access_log_sample_rate: float = env(
        "ACCESS_LOG_SAMPLE_RATE",
        "0 to 1: share of fast (under 100 ms) successful GET and HEAD requests written to the "
        "access log; every other request is always written (the health probes' fast "
        "successful answers never are)",
        _sample_rate,
        default="1.0",
    )
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = env(
        "TRUSTED_PROXIES",
        "CIDRs whose `X-Forwarded-For` is believed, comma-separated",
        _proxies,
        default="",
        listed=True,
    )
    rate_limit_enabled: bool = env("RATE_LIMIT_ENABLED", "true or false", _boolean, default="true")
    rate_limit_default: RateLimitSpec = env(
        "RATE_LIMIT_DEFAULT",
        "`N/second`, `N/minute` or `N/hour`, N from 1 to 1,000,000",
        _rate_limit,
        default="600/minute",
    )
    rate_limit_auth: RateLimitSpec = env(
        "RATE_LIMIT_AUTH",
        "login attempts per client IP and username, same format",
        _rate_limit,
        default="10/minute",
    )
    rate_limit_auth_ip: RateLimitSpec = env(
        "RATE_LIMIT_AUTH_IP",
        "login attempts per client IP whatever the username (stops password spraying)",
        _rate_limit,
        default="30/minute",
    )
    rate_limit_onboarding: RateLimitSpec = env(
        "RATE_LIMIT_ONBOARDING", "same format", _rate_limit, default="30/minute"
    )
    audit_retention_days: int = env(
        "AUDIT_RETENTION_DAYS",
        "1 to 3650; the value stored through the API wins",
        _retention_days,
        default="90",
    )
    redis_key_prefix: str = env(
        "CORTIWARE_REDIS_PREFIX",
        "prefix of every Redis key the service writes (tests isolate runs with it)",
        _text,
        default="cw:",
        public=False,
    )
    redis_timeout: float = env(
        "CORTIWARE_REDIS_TIMEOUT",
        "seconds to connect to Redis or wait for a reply before the fallback is used",
        _redis_timeout,
        default="0.25",
        public=False,
    )
    uses_dev_defaults: tuple[str, ...] = ()
    """Variables that fell back to their public development value."""

    @property
    def is_embedded_database(self) -> bool:
        """True when running on the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` (and CSRF uses `__Host-`) outside development and test."""
        return self.app_env.is_deployed

    @property
    def oidc_enabled(self) -> bool:
        """True when the three OIDC variables are set."""
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def staff(self) -> tuple[StaffCredential, ...]:
        """The three staff credentials: provider, developer, accountant."""
        return (
            StaffCredential("provider", self.provider_username, self.provider_password),
            StaffCredential("developer", self.developer_username, self.developer_password),
            StaffCredential("accountant", self.accountant_username, self.accountant_password),
        )

    @property
    def session_secrets(self) -> tuple[str, ...]:
        """SESSION_SECRET then, while rotating, SESSION_SECRET_PREVIOUS: all accepted."""
        return _with_previous(self.session_secret, self.session_secret_previous)

    @property
    def onboarding_token_secrets(self) -> tuple[str, ...]:
        """ONBOARDING_TOKEN_SECRET then, while rotating, its previous value: all accepted."""
        return _with_previous(self.onboarding_token_secret, self.onboarding_token_secret_previous)

    @cached_property
    def base_origin(self) -> str:
        """`scheme://host[:port]` of BASE_URL, for Origin checks."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`); raise SettingsError."""
        values, problems, used = _parse(os.environ if environ is None else environ)
        if problems:
            raise SettingsError(problems)
        return cls(**values, uses_dev_defaults=used)


def _with_previous(current: str, previous: str | None) -> tuple[str, ...]:
    return (current, previous) if previous else (current,)


ALL_VARIABLES: Final[tuple[tuple[str, Variable], ...]] = tuple(
    (f.name, f.metadata["env"]) for f in fields(Settings) if "env" in f.metadata
)
"""(Settings field, row) for every variable, in table order."""

VARIABLES: Final[tuple[Variable, ...]] = tuple(row for _, row in ALL_VARIABLES if row.public)
"""The variables of contract §2 (internal knobs left out)."""

_PUBLISHED: Final = {
    row.dev_default: row.name for _, row in ALL_VARIABLES if row.secret and row.dev_default
}
"""Development values of secrets: printed in this file and the README, so never secret."""


def _parse(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str], tuple[str, ...]]:
    """Every field's value, every problem, and the variables that used a development value."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    used: list[str] = []
    raw_env = environ.get("APP_ENV", "").strip() or "development"
    try:
        app_env = AppEnv(raw_env)
    except ValueError:
        app_env = (
            AppEnv.PRODUCTION
        )  # judge the rest by the strictest rules (APP_ENV's parser names it)
    deployed = app_env.is_deployed
    for attribute, row in ALL_VARIABLES:
        raw: str | None = environ.get(row.name, "").strip() or None
        if raw is not None and row.listed and not _split_list(raw):
            raw = None  # only commas and blanks: judged exactly like an unset variable
        if raw is None:
            if row.required_deployed and deployed:
                problems.append(f"{row.name}: required in {app_env.value}")
                values[attribute] = None
                continue
            if row.default_from is not None:
                values[attribute] = values[_field_of(row.default_from)]
                continue
            if row.dev_default is not None:
                used.append(row.name)
            raw = row.dev_default if row.dev_default is not None else row.default
        if raw is None:
            values[attribute] = None
            continue
        if (
            deployed
            and row.secret
            and any(item in _PUBLISHED for item in (_split_list(raw) if row.listed else (raw,)))
        ):
            problems.append(f"{row.name}: is a published development value")
        try:
            values[attribute] = row.parse(raw, app_env)
        except ValueError as exc:
            messages = exc.messages if isinstance(exc, Invalid) else (str(exc),)
            problems.extend(f"{row.name}: {message}" for message in messages)
            values[attribute] = None
    problems.extend(_cross_problems(values, app_env))
    return values, problems, tuple(used)


def _field_of(name: str) -> str:
    return next(attribute for attribute, row in ALL_VARIABLES if row.name == name)


def _cross_problems(values: Mapping[str, Any], app_env: AppEnv) -> list[str]:
    """Rules that relate several variables."""
    problems: list[str] = []
    usernames = [
        values[f"{role}_username"]
        for role in ("provider", "developer", "accountant")
        if values[f"{role}_username"]
    ]
    if len(set(usernames)) != len(usernames):
        problems.append("PROVIDER/DEVELOPER/ACCOUNTANT_USERNAME: must be distinct")
    oidc = {
        n: values[_field_of(n)] for n in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
    }
    if any(oidc.values()) and not all(oidc.values()):
        missing = ", ".join(n for n, v in oidc.items() if not v)
        problems.append(f"OIDC: set all three OIDC variables or none (missing {missing})")
    for current in ("SESSION_SECRET", "ONBOARDING_TOKEN_SECRET"):
        now, before = values[_field_of(current)], values[_field_of(current + "_PREVIOUS")]
        if now and before and now == before:
            problems.append(f"{current}_PREVIOUS: must differ from {current}")
    secret, publishable = values["stripe_secret_key"], values["stripe_publishable_key"]
    if (
        not app_env.is_deployed  # deployed, each key's own mode rule already says more
        and secret
        and publishable
        and _stripe_mode(secret, secret[:3]) != _stripe_mode(publishable, "pk_")
    ):
        problems.append("STRIPE_PUBLISHABLE_KEY: its mode (test/live) differs from the secret key")
    return problems


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One line of `cortiware config check`: a variable, its need and its state."""

    name: str
    need: str
    """`required` or `optional` in the checked environment."""
    state: str
    """`set`, `missing`, `default` or `dev default`; never the value."""


def config_report(environ: Mapping[str, str]) -> tuple[AppEnv | None, list[ConfigRow], list[str]]:
    """The environment, one row per public variable, and every problem (never a value)."""
    raw_env = environ.get("APP_ENV", "").strip() or "development"
    app_env = AppEnv(raw_env) if raw_env in AppEnv.__members__.values() else None
    deployed = app_env is None or app_env.is_deployed
    _, problems, used = _parse(environ)
    rows: list[ConfigRow] = []
    for row in VARIABLES:
        state = "set" if environ.get(row.name, "").strip() else "missing"
        if state == "missing" and not problems and row.name in used:
            state = "dev default"
        elif state == "missing" and (row.default is not None or row.default_from):
            state = "default"
        need = "required" if row.required_deployed and deployed else "optional"
        rows.append(ConfigRow(row.name, need, state))
    return app_env, rows, problems


def markdown_table() -> str:
    """The README's configuration table, generated from the settings table."""
    lines = [
        "| variable | staging/production | default | notes |",
        "| --- | --- | --- | --- |",
    ]
    for row in VARIABLES:
        need = "**required**" if row.required_deployed else "optional"
        secret = " (secret)" if row.secret else ""
        lines.append(f"| `{row.name}`{secret} | {need} | {row.default_text} | {row.doc} |")
    return "\n".join(lines) + "\n"


def async_database_url(url: str) -> str:
    """Map `postgresql://`/`postgres://` to asyncpg and `sqlite://` to aiosqlite.

    A libpq-style `?sslmode=` (what RDS documentation and `psql` use, and what the Pulumi
    program writes) becomes asyncpg's `?ssl=`: SQLAlchemy passes query parameters to
    `asyncpg.connect()` as keyword arguments, and asyncpg has no `sslmode` keyword.
    """
    if url.startswith(_POSTGRES):
        # By hand, not urlsplit/geturl: that drops the `//` of a URL without a host
        # (`postgresql:///db`, a local socket), which SQLAlchemy then refuses.
        base, _, query = url.split("://", 1)[1].partition("?")
        pairs = (pair.partition("=")[::2] for pair in query.split("&") if pair)
        query = "&".join(f"{'ssl' if k == 'sslmode' else k}={v}" for k, v in pairs)
        return f"postgresql+asyncpg://{base}" + (f"?{query}" if query else "")
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


if __name__ == "__main__":  # pragma: no cover - `python -m cortiware.settings` prints the table
    print(markdown_table(), end="")
