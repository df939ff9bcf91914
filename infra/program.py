"""The stack: wires the components together and returns the outputs an operator needs."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.components._aws import AwsAccount
from infra.components.alarms import Alarms, AlarmsArgs
from infra.components.cache import Cache, CacheArgs
from infra.components.canary import Canary, CanaryArgs
from infra.components.database import Database, DatabaseArgs, rds_log_group_names
from infra.components.logs import LogsKey, LogsKeyArgs
from infra.components.network import Network, NetworkArgs
from infra.components.secrets import AppSecrets, AppSecretsArgs
from infra.components.service import Service, ServiceArgs
from infra.components.storage import ArchiveBucket, ArchiveBucketArgs
from infra.config import StackConfig

__all__ = ["build"]


def build(config: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack; returns the stack outputs (name → value)."""
    account = AwsAccount.current(config.region)
    prefix, stack = config.prefix, config.stack

    rds_logs = rds_log_group_names(prefix, read_replica=config.database.read_replica)
    logs_key = LogsKey(
        "logs",
        LogsKeyArgs(prefix=prefix, stack=stack, account=account, rds_log_groups=rds_logs),
    ).key
    network = Network(
        "network",
        NetworkArgs(
            config=config.network,
            prefix=prefix,
            stack=stack,
            account=account,
            logs_key_arn=logs_key.arn,
        ),
    )
    groups = network.security_groups
    archive = ArchiveBucket(
        "archive",
        ArchiveBucketArgs(
            config=config.archive, prefix=prefix, stack=stack, account_id=account.account_id
        ),
    )
    database = Database(
        "database",
        DatabaseArgs(
            config=config.database,
            prefix=prefix,
            stack=stack,
            production=config.is_production,
            account=account,
            isolated_subnet_ids=network.isolated_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            database_security_group_id=groups.database.id,
            proxy_security_group_id=groups.proxy.id,
            logs_key_arn=logs_key.arn,
            log_retention_days=config.service.log_retention_days,
        ),
    )
    cache = Cache(
        "cache",
        CacheArgs(
            config=config.cache,
            prefix=prefix,
            stack=stack,
            isolated_subnet_ids=network.isolated_subnet_ids,
            security_group_id=groups.cache.id,
            logs_key_arn=logs_key.arn,
        ),
    )
    secrets = AppSecrets(
        "secrets",
        AppSecretsArgs(
            config=config,
            database_url=database.pooled_url,
            database_url_unpooled=database.direct_url,
            redis_url=cache.url,
        ),
    )
    service = Service(
        "service",
        ServiceArgs(
            config=config,
            account=account,
            network=network,
            secret_arns=secrets.arns,
            secrets_key_arn=secrets.key.arn,
            archive_bucket_name=archive.bucket.bucket,
            archive_url=archive.archive_url,
            archive_prefix_arn=archive.prefix_arn,
            archive_key_arn=archive.key.arn,
            logs_key_arn=logs_key.arn,
        ),
    )
    alarms = Alarms(
        "alarms",
        AlarmsArgs(
            config=config.alerts,
            prefix=prefix,
            stack=stack,
            account=account,
            load_balancer_arn_suffix=service.load_balancer.arn_suffix,
            target_group_arn_suffix=service.target_group.arn_suffix,
            db_instance_identifier=database.instance.identifier,
            cache_member_ids=cache.member_cluster_ids,
            cluster_name=service.cluster.name,
            service_name=service.service.name,
        ),
    )
    canary = Canary(
        "canary",
        CanaryArgs(
            name=f"cw-{stack}-health",
            prefix=prefix,
            stack=stack,
            account=account,
            base_url=service.base_url,
            runtime_version=config.canary.runtime_version,
            artifact_retention_days=config.canary.artifact_retention_days,
            topic_arn=alarms.topic.arn,
        ),
    )

    migration_network = pulumi.Output.json_dumps(
        {
            "awsvpcConfiguration": {
                "subnets": network.private_subnet_ids,
                "securityGroups": [groups.service.id],
                "assignPublicIp": "DISABLED",
            }
        }
    )
    return {
        "url": service.base_url,
        "loadBalancerDnsName": service.load_balancer.dns_name,
        "ecrRepositoryUrl": service.repository.repository_url,
        "imageTag": config.service.image_tag,
        "clusterName": service.cluster.name,
        "serviceName": service.service.name,
        "migrationTaskDefinitionArn": service.migrate_task.arn,
        "migrationNetworkConfiguration": migration_network,
        "logGroupName": service.log_group.name,
        "databaseEndpoint": database.instance.address,
        "databaseIdentifier": database.instance.identifier,
        "databaseProxyEndpoint": database.proxy.endpoint,
        "databaseReplicaEndpoint": None if database.replica is None else database.replica.address,
        "redisEndpoint": cache.replication_group.primary_endpoint_address,
        "secretArns": dict(secrets.arns),
        "archiveBucket": archive.bucket.bucket,
        "archiveUrl": archive.archive_url,
        "alarmTopicArn": alarms.topic.arn,
        "canaryName": canary.canary.name,
    }
