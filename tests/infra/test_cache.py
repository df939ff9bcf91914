"""ElastiCache Redis: TLS, at-rest encryption, AUTH token and failover per stack."""

from __future__ import annotations

import string
from urllib.parse import unquote, urlsplit

import pytest
from infra.components.cache import REDIS_TOKEN_SPECIALS, redis_url
from infra.offline import OfflineRun

from tests.infra.conftest import one

pytestmark = pytest.mark.infra

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


def test_tls_at_rest_encryption_and_auth(run: OfflineRun) -> None:
    """Redis requires TLS, encrypts at rest with a CMK and requires the generated AUTH token."""
    group = one(run, REDIS)
    assert group.inputs["transitEncryptionEnabled"] is True
    assert group.inputs["transitEncryptionMode"] == "required"
    assert group.inputs["atRestEncryptionEnabled"] is True
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert group.inputs["authToken"]
    assert "authToken" in group.secret_inputs


def test_failover_and_multi_az_only_in_prod(staging: OfflineRun, prod: OfflineRun) -> None:
    """Prod runs 3 nodes with automatic failover across AZs; staging runs one node."""
    prod_group, staging_group = one(prod, REDIS), one(staging, REDIS)
    assert prod_group.inputs["automaticFailoverEnabled"] is True
    assert prod_group.inputs["multiAzEnabled"] is True
    assert prod_group.inputs["numCacheClusters"] == 3
    assert staging_group.inputs["automaticFailoverEnabled"] is False
    assert staging_group.inputs["multiAzEnabled"] is False


def test_snapshots_slow_log_and_parameter_group(run: OfflineRun) -> None:
    """Snapshots are kept, the slow log goes to CloudWatch, and parameters are its own."""
    group = one(run, REDIS)
    assert group.inputs["snapshotRetentionLimit"] >= 1
    delivery = group.inputs["logDeliveryConfigurations"][0]
    assert delivery["logType"] == "slow-log"
    assert delivery["destinationType"] == "cloudwatch-logs"
    assert delivery["destination"] == f"/cortiware/{run.stack}/redis/slow-log"
    params = one(run, "aws:elasticache/parameterGroup:ParameterGroup")
    assert group.inputs["parameterGroupName"] == params.inputs["name"]


def test_auth_token_uses_only_characters_redis_accepts(run: OfflineRun) -> None:
    """The AUTH token is 64 printable characters whose specials are among ! & # $ ^ < > -."""
    token = run.named("cache-auth-token")
    assert 16 <= token.inputs["length"] <= 128
    assert token.inputs["overrideSpecial"] == REDIS_TOKEN_SPECIALS
    assert set(REDIS_TOKEN_SPECIALS) == set("!&#$^<>-")


def test_generated_token_matches_its_character_set(run: OfflineRun) -> None:
    """The token the mock generates from those inputs holds only allowed characters."""
    allowed = set(string.ascii_letters + string.digits + REDIS_TOKEN_SPECIALS)
    group = one(run, REDIS)
    assert set(group.inputs["authToken"]) <= allowed


def test_redis_url_is_tls_with_encoded_token() -> None:
    """REDIS_URL is rediss://:token@host:6379/0 and the token survives percent-encoding."""
    token = "ab#c&d$e^f<g>h-i!"
    parts = urlsplit(redis_url(token, "redis.example"))
    assert parts.scheme == "rediss"
    assert unquote(parts.password or "") == token
    assert (parts.hostname, parts.port, parts.path) == ("redis.example", 6379, "/0")
