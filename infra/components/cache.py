"""ElastiCache Redis: TLS, at-rest CMK encryption, AUTH token, failover in prod, slow log."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components._aws import customer_managed_key, tags
from infra.components.logs import log_group_prefix
from infra.config import CacheConfig

__all__ = ["REDIS_TOKEN_SPECIALS", "Cache", "CacheArgs", "redis_url"]

REDIS_TOKEN_SPECIALS = "!&#$^<>-"  # noqa: S105 - a character set, not a secret
"""The only specials ElastiCache accepts in an AUTH token (printable ASCII otherwise alnum)."""

REDIS_PORT = 6379


def redis_url(token: str, host: str) -> str:
    """``rediss://:token@host:6379/0`` with the token percent-encoded."""
    return f"rediss://:{quote(token, safe='')}@{host}:{REDIS_PORT}/0"


@dataclass(frozen=True)
class CacheArgs:
    """Inputs of :class:`Cache`."""

    config: CacheConfig
    """Sizing and availability choices."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    isolated_subnet_ids: list[pulumi.Output[str]]
    """Subnets without an internet route."""
    security_group_id: pulumi.Input[str]
    """The cache's group (reachable from the service only)."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the slow-log group (`LogsKey`)."""
    notification_topic_arn: pulumi.Input[str] | None = None
    """SNS topic that receives the group's events (failover, node replacement, errors)."""


class Cache(pulumi.ComponentResource):
    """A Redis replication group the service reaches with ``rediss://`` and a generated token."""

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Cache", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        group_id = f"{args.prefix}-redis"
        key = customer_managed_key(
            f"{name}-key",
            description="Cortiware Redis at-rest encryption",
            stack=args.stack,
            alias=f"{args.prefix}-redis",
            parent=self,
        )
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=f"{args.prefix}-redis",
            subnet_ids=args.isolated_subnet_ids,
            tags=tags(args.stack, group_id),
            opts=child,
        )
        parameters = aws.elasticache.ParameterGroup(
            f"{name}-params",
            name=f"{args.prefix}-redis7",
            family="redis7",
            description="Cortiware Redis 7",
            parameters=[
                # Rate-limit and idempotency keys all carry TTLs: under memory pressure evict
                # those first rather than refusing writes (the evictions alarm reports it).
                {"name": "maxmemory-policy", "value": "volatile-lru"},
                {"name": "slowlog-log-slower-than", "value": "10000"},
                {"name": "slowlog-max-len", "value": "256"},
            ],
            tags=tags(args.stack, group_id),
            opts=child,
        )
        slow_log = aws.cloudwatch.LogGroup(
            f"{name}-slow-log",
            name=f"{log_group_prefix(args.prefix)}/redis/slow-log",
            retention_in_days=cfg.slow_log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(args.stack, f"{group_id}-slow-log"),
            opts=child,
        )
        self.auth_token: random.RandomPassword = random.RandomPassword(
            f"{name}-auth-token",
            length=64,
            special=True,
            override_special=REDIS_TOKEN_SPECIALS,
            min_special=2,
            min_numeric=4,
            min_lower=4,
            min_upper=4,
            opts=child,
        )
        self.member_cluster_ids: list[str] = [
            f"{group_id}-{i:03d}" for i in range(1, cfg.num_cache_clusters + 1)
        ]
        self.replication_group: aws.elasticache.ReplicationGroup = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=group_id,
            description="Cortiware rate limits, idempotency keys and caches",
            engine="redis",
            engine_version=cfg.engine_version,
            node_type=cfg.node_type,
            num_cache_clusters=cfg.num_cache_clusters,
            port=REDIS_PORT,
            parameter_group_name=parameters.name,
            subnet_group_name=subnet_group.name,
            security_group_ids=[args.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self.auth_token.result,
            # Changing the token keeps the old one valid until the service has the new URL.
            auth_token_update_strategy="ROTATE",  # noqa: S106 - a strategy name
            automatic_failover_enabled=cfg.automatic_failover,
            multi_az_enabled=cfg.multi_az,
            snapshot_retention_limit=cfg.snapshot_retention_days,
            snapshot_window="01:00-02:00",
            maintenance_window="sun:02:30-sun:03:30",
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            notification_topic_arn=args.notification_topic_arn,
            log_delivery_configurations=[
                {
                    "destination": slow_log.name,
                    "destination_type": "cloudwatch-logs",
                    "log_format": "json",
                    "log_type": "slow-log",
                }
            ],
            tags=tags(args.stack, group_id),
            opts=child,
        )
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(
                self.auth_token.result, self.replication_group.primary_endpoint_address
            ).apply(lambda v: redis_url(v[0], v[1]))
        )
        self.register_outputs({"endpoint": self.replication_group.primary_endpoint_address})
