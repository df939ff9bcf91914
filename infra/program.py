"""The stack: wires the components together and returns the outputs an operator needs."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.components._aws import AwsAccount, MovedFrom
from infra.components.alarms import Alarms, AlarmsArgs
from infra.components.autoscaling import Autoscaling, AutoscalingArgs
from infra.components.cache import Cache, CacheArgs
from infra.components.canary import Canary, CanaryArgs
from infra.components.dashboard import Dashboard, DashboardArgs
from infra.components.database import Database, DatabaseArgs, rds_log_group_names
from infra.components.events import OperationalEvents, OperationalEventsArgs
from infra.components.jobs import ScheduledJobs, ScheduledJobsArgs
from infra.components.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.components.logs import LogsKey, LogsKeyArgs
from infra.components.network import Network, NetworkArgs
from infra.components.paging import Paging, PagingArgs
from infra.components.registry import ImageRegistry, ImageRegistryArgs
from infra.components.secret_age import SecretAge, SecretAgeArgs
from infra.components.secrets import AppSecrets, AppSecretsArgs
from infra.components.service import Service, ServiceArgs
from infra.components.storage import ArchiveBucket, ArchiveBucketArgs
from infra.config import StackConfig

__all__ = ["ALARMS_COMPONENT", "SERVICE_COMPONENT", "build"]

SERVICE_COMPONENT = MovedFrom(type_="cortiware:infra:Service", name="service")
"""The component that once held the registry, load balancer, autoscaling and prune schedule."""
ALARMS_COMPONENT = MovedFrom(type_="cortiware:infra:Alarms", name="alarms")
"""The component that once held the alarm topic, its key and its e-mail subscriptions."""


def build(config: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack; returns the stack outputs (name → value)."""
    account = AwsAccount.current(config.region)
    prefix, stack = config.prefix, config.stack

    rds_logs = rds_log_group_names(
        prefix, read_replica=config.database.read_replica, restore=config.database.restore
    )
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
    paging = Paging(
        "paging",
        PagingArgs(
            config=config.alerts,
            prefix=prefix,
            stack=stack,
            account=account,
            moved_from=ALARMS_COMPONENT,
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
            notification_topic_arn=paging.topic.arn,
        ),
    )
    secrets = AppSecrets(
        "secrets",
        AppSecretsArgs(
            config=config.secrets,
            prefix=prefix,
            stack=stack,
            production=config.is_production,
            # The owner through the proxy only while an existing stack switches over
            # (docs/infra.md, "Switching an existing stack to the application role").
            database_url=(
                database.app_pooled_url if config.database.application_role else database.pooled_url
            ),
            application_database_url=database.app_pooled_url,
            database_url_unpooled=database.direct_url,
            database_replica_url=database.app_replica_url,
            redis_url=cache.url,
        ),
    )
    registry = ImageRegistry(
        "registry",
        ImageRegistryArgs(prefix=prefix, stack=stack, moved_from=SERVICE_COMPONENT),
    )
    load_balancer = LoadBalancer(
        "load-balancer",
        LoadBalancerArgs(
            config=config.domain,
            prefix=prefix,
            stack=stack,
            account=account,
            production=config.is_production,
            vpc_id=network.vpc.id,
            public_subnet_ids=network.public_subnet_ids,
            security_group_id=groups.load_balancer.id,
            log_retention_days=config.service.log_retention_days,
            moved_from=SERVICE_COMPONENT,
        ),
    )
    optional = config.secrets.optional
    environment = (
        {"OIDC_ISSUER": optional.oidc_issuer, "OIDC_CLIENT_ID": optional.oidc_client_id}
        if optional.oidc_issuer is not None and optional.oidc_client_id is not None
        else {}
    )
    service = Service(
        SERVICE_COMPONENT.name,
        ServiceArgs(
            config=config.service,
            prefix=prefix,
            stack=stack,
            account=account,
            app_env=config.app_env,
            base_url=load_balancer.base_url,
            repository_url=registry.repository.repository_url,
            repository_arn=registry.repository.arn,
            subnet_ids=network.private_subnet_ids,
            security_group_id=groups.service.id,
            trusted_proxies=network.public_cidrs,
            target_group_arn=load_balancer.target_group.arn,
            listener=load_balancer.https_listener,
            secret_arns=secrets.serving_arns,
            migration_secret_arns=secrets.migration_arns,
            secrets_key_arn=secrets.key.arn,
            archive_url=archive.archive_url,
            archive_prefix_arn=archive.prefix_arn,
            archive_key_arn=archive.key.arn,
            logs_key_arn=logs_key.arn,
            environment=environment,
        ),
    )
    Autoscaling(
        "autoscaling",
        AutoscalingArgs(
            config=config.service,
            cluster_name=service.cluster.name,
            service_name=service.service.name,
            load_balancer_arn_suffix=load_balancer.load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group.arn_suffix,
            moved_from=SERVICE_COMPONENT,
        ),
    )
    events = OperationalEvents(
        "events",
        OperationalEventsArgs(
            prefix=prefix,
            stack=stack,
            log_retention_days=config.service.log_retention_days,
            logs_key_arn=logs_key.arn,
            cluster_arn=service.cluster.arn,
            prune_task_family_arn=service.prune_task.arn_without_revision,
            backup_vault=database.backup_vault,
            db_instance_identifiers=[
                database.instance.identifier,
                *([] if database.replica is None else [database.replica.identifier]),
            ],
            topic_arn=paging.topic.arn,
        ),
    )
    ScheduledJobs(
        "jobs",
        ScheduledJobsArgs(
            prefix=prefix,
            stack=stack,
            account=account,
            cluster_arn=service.cluster.arn,
            prune_task_definition_arn=service.prune_task.arn,
            task_role_arns=[service.execution_role.arn, service.task_role.arn],
            subnet_ids=network.private_subnet_ids,
            security_group_id=groups.service.id,
            moved_from=SERVICE_COMPONENT,
        ),
    )
    secret_age = SecretAge(
        "secret-age",
        SecretAgeArgs(
            prefix=prefix,
            stack=stack,
            account=account,
            metrics_environment=config.app_env,
            log_retention_days=config.service.log_retention_days,
            logs_key_arn=logs_key.arn,
        ),
    )
    alarms = Alarms(
        "alarms",
        AlarmsArgs(
            config=config.alerts,
            prefix=prefix,
            stack=stack,
            topic_arn=paging.topic.arn,
            metrics_environment=config.app_env,
            load_balancer_arn_suffix=load_balancer.load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group.arn_suffix,
            db_instance_identifier=database.instance.identifier,
            db_replica_identifier=None if database.replica is None else database.replica.identifier,
            db_burstable=config.database.instance_class.startswith("db.t"),
            db_proxy_name=database.proxy.name,
            cache_member_ids=cache.member_cluster_ids,
            cluster_name=service.cluster.name,
            service_name=service.service.name,
            prune_failure_rule=events.prune_failed.name,
            backup_failure_rule=events.backup_failed.name,
            secret_age=secret_age.metric,
        ),
    )
    canary = Canary(
        "canary",
        CanaryArgs(
            config=config.canary,
            name_prefix=f"cw-{stack}",
            prefix=prefix,
            stack=stack,
            account=account,
            base_url=load_balancer.base_url,
            topic_arn=paging.topic.arn,
        ),
    )

    Dashboard(
        "dashboard",
        DashboardArgs(
            prefix=prefix,
            region=config.region,
            metrics_environment=config.app_env,
            load_balancer_arn_suffix=load_balancer.load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group.arn_suffix,
            cluster_name=service.cluster.name,
            service_name=service.service.name,
            db_instance_identifier=database.instance.identifier,
            db_proxy_name=database.proxy.name,
            cache_member_ids=cache.member_cluster_ids,
            canary_names=[c.name for c in canary.canaries.values()],
            alarm_arns=[a.arn for a in [*alarms.alarms.values(), *canary.alarms.values()]],
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
        "url": load_balancer.base_url,
        "loadBalancerDnsName": load_balancer.load_balancer.dns_name,
        "ecrRepositoryUrl": registry.repository.repository_url,
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
        "alarmTopicArn": paging.topic.arn,
        "dashboardName": prefix,
        "canaryName": canary.canary.name,
        "canaryNames": {check: c.name for check, c in canary.canaries.items()},
    }
