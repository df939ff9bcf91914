"""The URLs the Pulumi program composes are the URLs the service's clients understand.

`infra` percent-encodes generated secrets that use every special character RDS and
ElastiCache accept; the service must get the very same secret back, with TLS on.
"""

from __future__ import annotations

import pytest
from infra.components.cache import REDIS_TOKEN_SPECIALS, redis_url
from infra.components.database import RDS_PASSWORD_SPECIALS, postgres_url
from redis.asyncio.connection import SSLConnection
from sqlalchemy.engine import make_url

from cortiware.kv import KV
from cortiware.settings import Settings, SettingsError, async_database_url
from tests.conftest import TEST_ENV


def test_database_url_round_trips_every_rds_special_and_keeps_tls() -> None:
    password = "Aa0" + RDS_PASSWORD_SPECIALS
    url = make_url(async_database_url(postgres_url("cortiware_admin", password, "px", "app")))
    assert (url.drivername, url.username, url.password) == (
        "postgresql+asyncpg",
        "cortiware_admin",
        password,
    )
    assert (url.host, url.port, url.database) == ("px", 5432, "app")
    assert dict(url.query) == {"ssl": "require"}


async def test_redis_url_round_trips_every_elasticache_special_over_tls() -> None:
    token = "Aa0" + REDIS_TOKEN_SPECIALS
    kv = KV.from_url(redis_url(token, "cache.internal"))
    try:
        assert kv.redis is not None
        pool = kv.redis.connection_pool
        assert pool.connection_kwargs["password"] == token
        assert pool.connection_kwargs["host"] == "cache.internal"
        assert pool.connection_class is SSLConnection
    finally:
        await kv.aclose()


def test_urls_keep_their_shape_through_the_driver_mapping() -> None:
    """A URL without a host (a local socket) keeps its `//`; IPv6 hosts and other
    parameters survive; only `sslmode` is renamed (a urlsplit round trip dropped the `//`)."""
    assert async_database_url("postgresql:///cortiware") == "postgresql+asyncpg:///cortiware"
    assert make_url(async_database_url("postgresql:///cortiware")).database == "cortiware"
    assert async_database_url("postgres://[::1]:5432/db?sslmode=verify-full") == (
        "postgresql+asyncpg://[::1]:5432/db?ssl=verify-full"
    )


def test_database_url_problems_are_lines_not_exceptions() -> None:
    base = {**TEST_ENV}
    for url, problem in [
        ("postgresql://u:p@[::1/db", "DATABASE_URL: not a valid URL"),
        ("postgresql://h/db?sslmode=require&sslmode=disable", "DATABASE_URL: give sslmode once"),
        ("postgresql://h/db?ssl=require&sslmode=disable", "DATABASE_URL: give sslmode once"),
    ]:
        with pytest.raises(SettingsError) as failure:
            Settings.from_env({**base, "DATABASE_URL": url})
        assert problem in str(failure.value)
    with pytest.raises(SettingsError) as failure:
        Settings.from_env({**base, "AUDIT_RETENTION_DAYS": "\u00b2"})
    assert "AUDIT_RETENTION_DAYS" in str(failure.value)
