"""The URLs the Pulumi program composes are the URLs the service's clients understand.

`infra` percent-encodes generated secrets that use every special character RDS and
ElastiCache accept; the service must get the very same secret back, with TLS on.
"""

from __future__ import annotations

from infra.components.cache import REDIS_TOKEN_SPECIALS, redis_url
from infra.components.database import RDS_PASSWORD_SPECIALS, postgres_url
from redis.asyncio.connection import SSLConnection
from sqlalchemy.engine import make_url

from cortiware.kv import KV
from cortiware.settings import async_database_url


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
