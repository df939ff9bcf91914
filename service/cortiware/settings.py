"""Typed settings, built once at start-up from the environment (contract §2).

`Settings.from_env()` validates everything at once and raises `SettingsError` listing every
problem by variable name, never by value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Final
from urllib.parse import urlsplit

from cortiware import __version__

__all__ = [
    "VARIABLES",
    "AppEnv",
    "RateLimitSpec",
    "Settings",
    "SettingsError",
    "StaffCredential",
    "VariableSpec",
]

DEFAULT_SQLITE_PATH: Final = "cortiware-dev.sqlite3"
_RATE_RE: Final = re.compile(r"^\s*(\d{1,9})\s*/\s*(second|minute|hour)\s*$", re.ASCII)
_PERIODS: Final = {"second": 1, "minute": 60, "hour": 3600}
# An image tag as ECR and Docker accept it (the first character not '.' or '-').
_VERSION_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
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
class VariableSpec:
    """One environment variable of contract §2."""

    name: str
    required_deployed: bool
    secret: bool
    description: str


VARIABLES: Final[tuple[VariableSpec, ...]] = (
    VariableSpec("APP_ENV", False, False, "development | test | staging | production"),
    VariableSpec("DATABASE_URL", True, True, "postgresql://…; unset in development: SQLite file"),
    VariableSpec("DATABASE_URL_UNPOOLED", False, True, "direct URL for migrations"),
    VariableSpec("REDIS_URL", True, True, "redis:// or rediss://; unset in development: memory"),
    VariableSpec("STRIPE_SECRET_KEY", True, True, "sk_…"),
    VariableSpec("STRIPE_PUBLISHABLE_KEY", True, False, "pk_…"),
    VariableSpec("STRIPE_WEBHOOK_SECRET", True, True, "whsec_…, comma-separated while rotating"),
    VariableSpec("ONBOARDING_TOKEN_SECRET", True, True, "at least 64 characters"),
    VariableSpec("BASE_URL", True, False, "public origin, https:// when deployed"),
    VariableSpec("PROVIDER_USERNAME", True, False, "provider login"),
    VariableSpec("PROVIDER_PASSWORD", True, True, "at least 32 characters when deployed"),
    VariableSpec("DEVELOPER_USERNAME", True, False, "developer login"),
    VariableSpec("DEVELOPER_PASSWORD", True, True, "at least 32 characters when deployed"),
    VariableSpec("ACCOUNTANT_USERNAME", True, False, "accountant login"),
    VariableSpec("ACCOUNTANT_PASSWORD", True, True, "at least 32 characters when deployed"),
    VariableSpec("SESSION_SECRET", True, True, "at least 32 characters"),
    VariableSpec("FEDERATION_WEBHOOK_SECRETS", False, True, "whsec_<base64>, comma-separated"),
    VariableSpec("OIDC_ISSUER", False, False, "https:// issuer; all three OIDC or none"),
    VariableSpec("OIDC_CLIENT_ID", False, False, "all three OIDC or none"),
    VariableSpec("OIDC_CLIENT_SECRET", False, True, "all three OIDC or none"),
    VariableSpec("SENTRY_DSN", False, True, "error reporting"),
    VariableSpec("SENTRY_TRACES_SAMPLE_RATE", False, False, "0.0 to 1.0, default 0"),
    VariableSpec("TRUSTED_PROXIES", False, False, "CIDRs whose X-Forwarded-For is believed"),
    VariableSpec("RATE_LIMIT_ENABLED", False, False, "default true"),
    VariableSpec("RATE_LIMIT_DEFAULT", False, False, "default 600/minute"),
    VariableSpec("RATE_LIMIT_AUTH", False, False, "default 10/minute"),
    VariableSpec("RATE_LIMIT_ONBOARDING", False, False, "default 30/minute"),
    VariableSpec("AUDIT_RETENTION_DAYS", False, False, "default 90; the API-stored value wins"),
    VariableSpec("APP_VERSION", False, False, "deployed image tag; default the package version"),
)

# Development/test fall-backs. They are public, so `APP_ENV=staging|production` refuses them.
_DEV_DEFAULTS: Final[Mapping[str, str]] = {
    "ONBOARDING_TOKEN_SECRET": "dev-onboarding-secret-" + "x" * 48,
    "SESSION_SECRET": "dev-session-secret-" + "x" * 20,
    "BASE_URL": "http://127.0.0.1:8000",
    "PROVIDER_USERNAME": "provider",
    "PROVIDER_PASSWORD": "provider-dev-password",
    "DEVELOPER_USERNAME": "developer",
    "DEVELOPER_PASSWORD": "developer-dev-password",
    "ACCOUNTANT_USERNAME": "accountant",
    "ACCOUNTANT_PASSWORD": "accountant-dev-password",
    "STRIPE_SECRET_KEY": "sk_test_dev_placeholder",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_dev_placeholder",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev_placeholder",
}


@dataclass(frozen=True, slots=True)
class StaffCredential:
    """A staff role's username and password from the environment."""

    role: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    """Every setting of contract §2, validated; secrets are excluded from `repr`."""

    app_env: AppEnv
    database_url: str = field(repr=False)
    database_url_unpooled: str = field(repr=False)
    redis_url: str | None = field(repr=False)
    stripe_secret_key: str = field(repr=False)
    stripe_publishable_key: str
    stripe_webhook_secrets: tuple[str, ...] = field(repr=False)
    onboarding_token_secret: str = field(repr=False)
    base_url: str
    staff: tuple[StaffCredential, ...] = field(repr=False)
    session_secret: str = field(repr=False)
    federation_webhook_secrets: tuple[str, ...] = field(repr=False)
    oidc_issuer: str | None
    oidc_client_id: str | None
    oidc_client_secret: str | None = field(repr=False)
    sentry_dsn: str | None = field(repr=False)
    sentry_traces_sample_rate: float
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    rate_limit_enabled: bool
    rate_limit_default: RateLimitSpec
    rate_limit_auth: RateLimitSpec
    rate_limit_onboarding: RateLimitSpec
    audit_retention_days: int
    uses_dev_defaults: tuple[str, ...] = ()
    redis_key_prefix: str = "cw:"
    """Prefix of every Redis key the service writes (tests isolate runs with it)."""
    redis_timeout: float = 0.25
    """Seconds to connect to Redis or to wait for one reply before the fallback is used."""
    app_version: str = __version__
    """The deployed image tag (`APP_VERSION`), reported by health, diagnostics and Sentry."""

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

    @cached_property
    def base_origin(self) -> str:
        """`scheme://host[:port]` of BASE_URL, for Origin checks."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`); raise SettingsError."""
        return _build(dict(os.environ if environ is None else environ))


SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq `sslmode` values; asyncpg takes the same names as its `ssl` argument."""


def async_database_url(url: str) -> str:
    """Map `postgresql://`/`postgres://` to asyncpg and `sqlite://` to aiosqlite.

    A libpq-style `?sslmode=` (what RDS documentation and `psql` use, and what the Pulumi
    program writes) becomes asyncpg's `?ssl=`: SQLAlchemy passes query parameters to
    `asyncpg.connect()` as keyword arguments, and asyncpg has no `sslmode` keyword.
    """
    if url.startswith(("postgresql://", "postgres://")):
        # By hand, not urlsplit/geturl: that drops the `//` of a URL without a host
        # (`postgresql:///db`, a local socket), which SQLAlchemy then refuses.
        base, _, query = url.split("://", 1)[1].partition("?")
        pairs = (pair.partition("=")[::2] for pair in query.split("&") if pair)
        query = "&".join(f"{'ssl' if k == 'sslmode' else k}={v}" for k, v in pairs)
        return f"postgresql+asyncpg://{base}" + (f"?{query}" if query else "")
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def _postgres_url_problems(name: str, url: str) -> list[str]:
    """What would stop asyncpg from connecting with `url`, before any connection is tried."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return [f"{name}: not a valid URL"]
    problems: list[str] = []
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        problems.append(f"{name}: the port must be a number")
    ssl_keys = 0
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        if key not in ("sslmode", "ssl"):
            problems.append(f"{name}: unsupported query parameter {key!r} (only sslmode)")
            continue
        ssl_keys += 1
        if value not in SSL_MODES:
            problems.append(f"{name}: {key} must be one of {', '.join(SSL_MODES)}")
    if ssl_keys > 1:
        problems.append(f"{name}: give sslmode once")
    return problems


def _split_list(raw: str | None) -> tuple[str, ...]:
    """The non-blank items of a comma-separated value."""
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _federation_secret_problems(secrets: tuple[str, ...]) -> list[str]:
    """One problem per secret the federation verifier could not decode (named by position)."""
    from cortiware.webhooks.standard import decode_secret  # the verifier's own decoding

    problems: list[str] = []
    for position, secret in enumerate(secrets, start=1):
        try:
            key = decode_secret(secret)
        except ValueError:
            problems.append(
                f"FEDERATION_WEBHOOK_SECRETS: secret {position} of {len(secrets)} "
                "is not whsec_ + base64"
            )
            continue
        if not key:
            problems.append(
                f"FEDERATION_WEBHOOK_SECRETS: secret {position} of {len(secrets)} has an empty key"
            )
    return problems


def _build(env: dict[str, str]) -> Settings:  # noqa: PLR0912, PLR0915 - one flat validation pass reads best
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    raw_env = get("APP_ENV") or "development"
    try:
        app_env = AppEnv(raw_env)
    except ValueError:
        problems.append("APP_ENV: must be one of development, test, staging, production")
        app_env = AppEnv.PRODUCTION  # judge the rest by the strictest rules

    deployed = app_env.is_deployed
    used_defaults: list[str] = []

    def required(name: str) -> str:
        value = get(name)
        return unset(name) if value is None else value

    def unset(name: str) -> str:
        """A required variable is unset: a problem when deployed, else its dev default."""
        if deployed:
            problems.append(f"{name}: required in {app_env.value}")
            return ""
        used_defaults.append(name)
        return _DEV_DEFAULTS[name]

    # Database
    database_url = get("DATABASE_URL")
    if database_url is None:
        if deployed:
            problems.append(f"DATABASE_URL: required in {app_env.value}")
        database_url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    elif not database_url.startswith(("postgresql://", "postgres://", "sqlite://")):
        problems.append(
            "DATABASE_URL: must start with postgresql:// (or sqlite:// outside staging)"
        )
    elif deployed and database_url.startswith("sqlite://"):
        problems.append(f"DATABASE_URL: SQLite is not allowed in {app_env.value}")
    elif not database_url.startswith("sqlite://"):
        problems.extend(_postgres_url_problems("DATABASE_URL", database_url))
    unpooled = get("DATABASE_URL_UNPOOLED")
    if unpooled is not None and not unpooled.startswith(("postgresql://", "postgres://")):
        problems.append("DATABASE_URL_UNPOOLED: must start with postgresql://")
    elif unpooled is not None:
        problems.extend(_postgres_url_problems("DATABASE_URL_UNPOOLED", unpooled))

    redis_url = get("REDIS_URL")
    if redis_url is None and deployed:
        problems.append(f"REDIS_URL: required in {app_env.value}")
    elif redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("REDIS_URL: must start with redis:// or rediss://")
    # Not part of contract §2: an internal knob (tests under heavy load raise it).
    redis_timeout = 0.25
    raw_timeout = get("CORTIWARE_REDIS_TIMEOUT")
    if raw_timeout is not None:
        try:
            redis_timeout = float(raw_timeout)
        except ValueError:
            redis_timeout = -1.0
        if not 0 < redis_timeout <= 10:
            problems.append("CORTIWARE_REDIS_TIMEOUT: must be a number of seconds in (0, 10]")
            redis_timeout = 0.25

    stripe_secret = required("STRIPE_SECRET_KEY")
    if stripe_secret and not stripe_secret.startswith(("sk_", "rk_")):
        problems.append("STRIPE_SECRET_KEY: must start with sk_ (or a restricted rk_ key)")
    stripe_pk = required("STRIPE_PUBLISHABLE_KEY")
    if stripe_pk and not stripe_pk.startswith("pk_"):
        problems.append("STRIPE_PUBLISHABLE_KEY: must start with pk_")
    # Only commas and blanks (` , `) is no secret at all: judged exactly like an unset variable.
    webhook_secrets = _split_list(get("STRIPE_WEBHOOK_SECRET")) or _split_list(
        unset("STRIPE_WEBHOOK_SECRET")
    )
    if any(not s.startswith("whsec_") for s in webhook_secrets):
        problems.append(
            "STRIPE_WEBHOOK_SECRET: every comma-separated secret must start with whsec_"
        )

    onboarding_secret = required("ONBOARDING_TOKEN_SECRET")
    if onboarding_secret and len(onboarding_secret) < 64:
        problems.append("ONBOARDING_TOKEN_SECRET: must be at least 64 characters")
    session_secret = required("SESSION_SECRET")
    if session_secret and len(session_secret) < 32:
        problems.append("SESSION_SECRET: must be at least 32 characters")

    base_url = required("BASE_URL")
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append("BASE_URL: must be an absolute http(s):// origin")
        elif deployed and parts.scheme != "https":
            problems.append(f"BASE_URL: must use https:// in {app_env.value}")

    staff: list[StaffCredential] = []
    for role in ("provider", "developer", "accountant"):
        user = required(f"{role.upper()}_USERNAME")
        password = required(f"{role.upper()}_PASSWORD")
        if password and deployed and len(password) < 32:
            problems.append(f"{role.upper()}_PASSWORD: must be at least 32 characters")
        staff.append(StaffCredential(role=role, username=user, password=password))
    usernames = [c.username for c in staff if c.username]
    if len(set(usernames)) != len(usernames):
        problems.append("PROVIDER/DEVELOPER/ACCOUNTANT_USERNAME: must be distinct")

    federation_raw = get("FEDERATION_WEBHOOK_SECRETS") or ""
    federation = _split_list(federation_raw)
    problems.extend(_federation_secret_problems(federation))

    oidc = {n: get(n) for n in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")}
    if any(oidc.values()) and not all(oidc.values()):
        missing = ", ".join(n for n, v in oidc.items() if not v)
        problems.append(f"OIDC: set all three OIDC variables or none (missing {missing})")
    issuer = oidc["OIDC_ISSUER"]
    if issuer and not issuer.startswith("https://") and deployed:
        problems.append("OIDC_ISSUER: must use https://")

    sentry_dsn = get("SENTRY_DSN")
    if sentry_dsn and not sentry_dsn.startswith(("https://", "http://")):
        problems.append("SENTRY_DSN: must be an http(s):// DSN")
    sample_rate = 0.0
    if (raw := get("SENTRY_TRACES_SAMPLE_RATE")) is not None:
        try:
            sample_rate = float(raw)
            if not 0.0 <= sample_rate <= 1.0:
                raise ValueError
        except ValueError:
            problems.append("SENTRY_TRACES_SAMPLE_RATE: must be a number from 0 to 1")

    proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for cidr in (get("TRUSTED_PROXIES") or "").split(","):
        if cidr.strip():
            try:
                proxies.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                problems.append("TRUSTED_PROXIES: every entry must be an IP address or CIDR")
                break

    enabled_raw = (get("RATE_LIMIT_ENABLED") or "true").lower()
    if enabled_raw not in ("true", "false", "1", "0", "yes", "no"):
        problems.append("RATE_LIMIT_ENABLED: must be true or false")
    limits: dict[str, RateLimitSpec] = {}
    for name, default in (
        ("RATE_LIMIT_DEFAULT", "600/minute"),
        ("RATE_LIMIT_AUTH", "10/minute"),
        ("RATE_LIMIT_ONBOARDING", "30/minute"),
    ):
        try:
            limits[name] = RateLimitSpec.parse(get(name) or default)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            limits[name] = RateLimitSpec.parse(default)

    retention = 90
    if (raw := get("AUDIT_RETENTION_DAYS")) is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 3650:
            problems.append("AUDIT_RETENTION_DAYS: must be an integer from 1 to 3650")
        else:
            retention = int(raw)

    app_version = get("APP_VERSION") or __version__
    if not _VERSION_RE.fullmatch(app_version):
        problems.append("APP_VERSION: 1-128 characters of letters, digits, '.', '_' or '-'")

    if problems:
        raise SettingsError(problems)

    return Settings(
        app_env=app_env,
        database_url=database_url,
        database_url_unpooled=unpooled or database_url,
        redis_url=redis_url,
        stripe_secret_key=stripe_secret,
        stripe_publishable_key=stripe_pk,
        stripe_webhook_secrets=webhook_secrets,
        onboarding_token_secret=onboarding_secret,
        base_url=base_url.rstrip("/"),
        staff=tuple(staff),
        session_secret=session_secret,
        federation_webhook_secrets=federation,
        oidc_issuer=issuer,
        oidc_client_id=oidc["OIDC_CLIENT_ID"],
        oidc_client_secret=oidc["OIDC_CLIENT_SECRET"],
        sentry_dsn=sentry_dsn,
        sentry_traces_sample_rate=sample_rate,
        trusted_proxies=tuple(proxies),
        rate_limit_enabled=enabled_raw in ("true", "1", "yes"),
        rate_limit_default=limits["RATE_LIMIT_DEFAULT"],
        rate_limit_auth=limits["RATE_LIMIT_AUTH"],
        rate_limit_onboarding=limits["RATE_LIMIT_ONBOARDING"],
        audit_retention_days=retention,
        uses_dev_defaults=tuple(used_defaults),
        # Not part of contract §2: an internal knob so test runs sharing a Redis never collide.
        redis_key_prefix=get("CORTIWARE_REDIS_PREFIX") or "cw:",
        redis_timeout=redis_timeout,
        app_version=app_version,
    )
