"""RDS PostgreSQL 16 with RDS Proxy, a CMK, PITR backups, AWS Backup and an optional replica."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components._aws import (
    AwsAccount,
    assume_role_policy,
    customer_managed_key,
    managed_service_role,
    policy_document,
    statement,
    tags,
)
from infra.config import DatabaseConfig, DatabaseRestore

__all__ = [
    "APP_USER",
    "DB_USER",
    "RDS_PASSWORD_SPECIALS",
    "Database",
    "DatabaseArgs",
    "instance_identifier",
    "postgres_url",
    "rds_log_group_names",
    "replica_identifier",
]

RDS_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?~^."  # noqa: S105 - a character set
"""Specials for the master password: RDS rejects ``/``, ``@``, ``"``, ``'`` and space."""

DB_NAME = "cortiware"
DB_USER = "cortiware_admin"
"""The RDS master user: owns the schema; `cortiware migrate` connects as it."""
APP_USER = "cortiware_service"
"""The service's login role, a member of the NOLOGIN group `cortiware_app` (rows only, no DDL),
created and given its password by `cortiware migrate` (``service/cortiware/db/roles.py``)."""
POSTGRES_PORT = 5432
LOG_EXPORTS = ["postgresql", "upgrade"]


def instance_identifier(prefix: str, restore: DatabaseRestore | None = None) -> str:
    """The primary's RDS identifier: ``cortiware-prod-db``, or ``cortiware-prod-db-r1`` when the
    stack runs on restore generation ``r1``."""
    return f"{prefix}-db" if restore is None else f"{prefix}-db-{restore.generation}"


def replica_identifier(prefix: str) -> str:
    """The read replica's RDS identifier, e.g. ``cortiware-prod-db-replica``."""
    return f"{prefix}-db-replica"


def rds_log_group_names(
    prefix: str, *, read_replica: bool, restore: DatabaseRestore | None = None
) -> list[str]:
    """The log groups RDS exports to (``/aws/rds/instance/<identifier>/<log>``), per instance."""
    identifiers = [instance_identifier(prefix, restore)]
    if read_replica:
        identifiers.append(replica_identifier(prefix))
    return [f"/aws/rds/instance/{i}/{log}" for i in identifiers for log in LOG_EXPORTS]


def postgres_url(user: str, password: str, host: str, database: str) -> str:
    """``postgresql://user:pass@host:5432/db?sslmode=require`` with the password percent-encoded."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{POSTGRES_PORT}"
        f"/{database}?sslmode=require"
    )


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of :class:`Database`."""

    config: DatabaseConfig
    """Sizing, retention and availability choices."""
    prefix: str
    """Physical name prefix, e.g. ``cortiware-prod``."""
    stack: str
    """Stack name, for tags."""
    production: bool
    """Adds Pulumi ``protect`` to the instance (deletion protection comes from config)."""
    account: AwsAccount
    """Account and region, for ARNs."""
    isolated_subnet_ids: list[pulumi.Output[str]]
    """Subnets without an internet route, for the instance."""
    private_subnet_ids: list[pulumi.Output[str]]
    """Subnets of the proxy (next to the service)."""
    database_security_group_id: pulumi.Input[str]
    """Group of the instance."""
    proxy_security_group_id: pulumi.Input[str]
    """Group of the proxy."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the log-export groups (`LogsKey`, whose policy names those groups)."""
    log_retention_days: int
    """Retention of the log-export groups (the stack's application log retention)."""


class Database(pulumi.ComponentResource):
    """PostgreSQL 16: encrypted, backed up, proxied and monitored; protected in prod."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Database", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.key: aws.kms.Key = customer_managed_key(
            f"{name}-key",
            description="Cortiware RDS storage, Performance Insights, backups and proxy secret",
            stack=args.stack,
            alias=f"{args.prefix}-database",
            parent=self,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=f"{args.prefix}-db",
            subnet_ids=args.isolated_subnet_ids,
            tags=tags(args.stack, f"{args.prefix}-db"),
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            name=f"{args.prefix}-postgres16",
            family="postgres16",
            description="Cortiware PostgreSQL 16: TLS only, slow-query logging",
            parameters=[
                {"name": "rds.force_ssl", "value": "1"},
                {"name": "log_min_duration_statement", "value": str(cfg.slow_query_ms)},
                {"name": "log_lock_waits", "value": "1"},
                {"name": "log_temp_files", "value": "0"},
                {"name": "log_autovacuum_min_duration", "value": "1000"},
            ],
            tags=tags(args.stack, f"{args.prefix}-db"),
            opts=child,
        )
        self.password: random.RandomPassword = _db_password(f"{name}-master-password", child)
        # The application role's password: the migrate task sets it in PostgreSQL (as a SCRAM
        # verifier) from the URL it is given; RDS Proxy authenticates the service with it.
        self.app_password: random.RandomPassword = _db_password(f"{name}-app-password", child)
        # Unique per stack lifetime, so a destroy/re-create never collides with an old snapshot.
        final_snapshot = random.RandomId(f"{name}-final-snapshot-id", byte_length=4, opts=child)
        monitoring_role = managed_service_role(
            f"{name}-monitoring-role",
            service="monitoring.rds.amazonaws.com",
            # AWS-managed and scoped by AWS to the RDSOSMetrics log group.
            managed_policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            attachment_name=f"{name}-monitoring-policy",
            account_id=args.account.account_id,
            tags=tags(args.stack, f"{args.prefix}-rds-monitoring"),
            opts=child,
        )
        restore = cfg.restore
        # A restore is a new instance under a new logical name: Pulumi creates it from the
        # source's backups, and everything below that names `self.instance` follows it.
        instance_name = f"{name}-instance" + (f"-{restore.generation}" if restore else "")
        identifier = instance_identifier(args.prefix, restore)
        primary_logs = self._log_groups(instance_name, identifier, args)
        origin: dict[str, Any] = {"db_name": DB_NAME, "username": DB_USER}
        if restore is not None:
            # The restored instance brings the database and its master user from the source.
            origin = {
                "restore_to_point_in_time": {
                    "source_db_instance_identifier": restore.source_identifier,
                    **(
                        {"restore_time": restore.time}
                        if restore.time
                        else {"use_latest_restorable_time": True}
                    ),
                }
            }
        self.instance: aws.rds.Instance = aws.rds.Instance(
            instance_name,
            identifier=identifier,
            engine="postgres",
            engine_version=cfg.engine_version,
            instance_class=cfg.instance_class,
            **origin,
            password=self.password.result,
            port=POSTGRES_PORT,
            storage_type="gp3",
            allocated_storage=cfg.allocated_storage_gb,
            max_allocated_storage=cfg.max_allocated_storage_gb,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            multi_az=cfg.multi_az,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[args.database_security_group_id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            backup_retention_period=cfg.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:03:30-sun:04:30",
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=False,
            final_snapshot_identifier=final_snapshot.hex.apply(
                lambda suffix: f"{args.prefix}-db-final-{suffix}"
            ),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.key.arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            monitoring_interval=cfg.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn,
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            auto_minor_version_upgrade=True,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            apply_immediately=False,
            tags=tags(args.stack, f"{args.prefix}-db", Environment=_environment(args)),
            # Dropping an instance from the program (a restore switches to a new one) leaves it
            # in AWS, deletion-protected, for the operator to delete once it is not needed.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.production,
                retain_on_delete=True,
                depends_on=primary_logs,
            ),
        )
        self.replica: aws.rds.Instance | None = None
        if cfg.read_replica:
            replica_logs = self._log_groups(
                f"{name}-replica", replica_identifier(args.prefix), args
            )
            self.replica = aws.rds.Instance(
                f"{name}-replica",
                identifier=replica_identifier(args.prefix),
                replicate_source_db=self.instance.identifier,
                instance_class=cfg.instance_class,
                storage_type="gp3",
                max_allocated_storage=cfg.max_allocated_storage_gb,
                storage_encrypted=True,
                kms_key_id=self.key.arn,
                vpc_security_group_ids=[args.database_security_group_id],
                publicly_accessible=False,
                parameter_group_name=parameters.name,
                # AWS refuses a final snapshot of a read replica; the primary keeps the backups.
                skip_final_snapshot=True,
                deletion_protection=cfg.deletion_protection,
                performance_insights_enabled=True,
                performance_insights_kms_key_id=self.key.arn,
                performance_insights_retention_period=cfg.performance_insights_retention_days,
                monitoring_interval=cfg.monitoring_interval_seconds,
                monitoring_role_arn=monitoring_role.arn,
                enabled_cloudwatch_logs_exports=LOG_EXPORTS,
                auto_minor_version_upgrade=True,
                ca_cert_identifier="rds-ca-rsa2048-g1",
                tags=tags(args.stack, f"{args.prefix}-db-replica", Environment=_environment(args)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=replica_logs),
            )

        self.proxy: aws.rds.Proxy = self._proxy(name, args)
        self._backup_plan(name, args)

        self.direct_url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.password.result, self.instance.address).apply(
                lambda v: postgres_url(DB_USER, v[0], v[1], DB_NAME)
            )
        )
        self.pooled_url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.password.result, self.proxy.endpoint).apply(
                lambda v: postgres_url(DB_USER, v[0], v[1], DB_NAME)
            )
        )
        """The owner through the proxy: the service's only while ``applicationRole`` is false."""
        self.app_pooled_url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.app_password.result, self.proxy.endpoint).apply(
                lambda v: postgres_url(APP_USER, v[0], v[1], DB_NAME)
            )
        )
        """The application role through the proxy."""
        # RDS Proxy serves no read-only endpoint for RDS for PostgreSQL (Aurora only), so the
        # service reaches the replica directly; the role exists there by replication.
        self.app_replica_url: pulumi.Output[str] | None = (
            None
            if self.replica is None
            else pulumi.Output.secret(
                pulumi.Output.all(self.app_password.result, self.replica.address).apply(
                    lambda v: postgres_url(APP_USER, v[0], v[1], DB_NAME)
                )
            )
        )
        """The application role on the read replica (prod), for reports, exports and audit."""
        self.register_outputs(
            {
                "endpoint": self.instance.address,
                "proxyEndpoint": self.proxy.endpoint,
                "replicaEndpoint": None if self.replica is None else self.replica.address,
            }
        )

    def _log_groups(
        self, name: str, identifier: str, args: DatabaseArgs
    ) -> list[aws.cloudwatch.LogGroup]:
        """The instance's log-export groups, declared so they get the stack's retention and
        logs CMK: the instance depends on them, or RDS would create them first with neither."""
        return [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=f"/aws/rds/instance/{identifier}/{log}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.logs_key_arn,
                tags=tags(args.stack, f"{identifier}-{log}-logs"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for log in LOG_EXPORTS
        ]

    def _proxy_secret(
        self,
        name: str,
        args: DatabaseArgs,
        *,
        suffix: str,
        description: str,
        username: str,
        password: pulumi.Input[str],
    ) -> aws.secretsmanager.Secret:
        """A Secrets Manager secret holding one database user's credentials for RDS Proxy."""
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            name,
            name=f"cortiware/{args.stack}/{suffix}",
            description=description,
            kms_key_id=self.key.arn,
            recovery_window_in_days=30 if args.production else 7,
            tags=tags(args.stack, f"{args.prefix}-{suffix}"),
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps({"username": username, "password": password}),
            opts=child,
        )
        return secret

    def _proxy(self, name: str, args: DatabaseArgs) -> aws.rds.Proxy:
        child = pulumi.ResourceOptions(parent=self)
        credentials = self._proxy_secret(
            f"{name}-proxy-credentials",
            args,
            suffix="rds-proxy-credentials",
            description="Master credentials RDS Proxy uses to reach the instance",
            username=DB_USER,
            password=self.password.result,
        )
        # The application role's credentials: RDS Proxy checks the service's SCRAM login against
        # them and logs in to PostgreSQL with them (one secret per database user it serves).
        app_credentials = self._proxy_secret(
            f"{name}-proxy-app-credentials",
            args,
            suffix="rds-proxy-app-credentials",
            description="Application role credentials RDS Proxy uses for the service",
            username=APP_USER,
            password=self.app_password.result,
        )
        role = aws.iam.Role(
            f"{name}-proxy-role",
            # No aws:SourceAccount: RDS Proxy's documented trust policy has no condition
            # (RDS User Guide, "Setting up IAM for RDS Proxy"); see SOURCE_ACCOUNT_DOCUMENTED.
            assume_role_policy=assume_role_policy("rds.amazonaws.com"),
            tags=tags(args.stack, f"{args.prefix}-rds-proxy"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-proxy-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    ["secretsmanager:GetSecretValue"],
                    [credentials.arn, app_credentials.arn],
                    sid="ReadOwnCredentials",
                ),
                statement(
                    ["kms:Decrypt"],
                    [self.key.arn],
                    sid="DecryptViaSecretsManager",
                    condition={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{args.account.region}.amazonaws.com"
                        }
                    },
                ),
            ),
            opts=child,
        )
        proxy = aws.rds.Proxy(
            f"{name}-proxy",
            name=f"{args.prefix}-db-proxy",
            engine_family="POSTGRESQL",
            require_tls=True,
            role_arn=role.arn,
            vpc_subnet_ids=args.private_subnet_ids,
            vpc_security_group_ids=[args.proxy_security_group_id],
            idle_client_timeout=1800,
            debug_logging=False,
            auths=[
                {
                    "auth_scheme": "SECRETS",
                    "iam_auth": "DISABLED",
                    "client_password_auth_type": "POSTGRES_SCRAM_SHA_256",
                    "secret_arn": secret_arn,
                }
                for secret_arn in (credentials.arn, app_credentials.arn)
            ],
            tags=tags(args.stack, f"{args.prefix}-db-proxy"),
            opts=child,
        )
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-proxy-target-group",
            db_proxy_name=proxy.name,
            connection_pool_config={
                "max_connections_percent": args.config.proxy_max_connections_percent,
                "max_idle_connections_percent": 50,
                "connection_borrow_timeout": 120,
            },
            opts=child,
        )
        aws.rds.ProxyTarget(
            f"{name}-proxy-target",
            db_proxy_name=proxy.name,
            target_group_name=target_group.name,
            db_instance_identifier=self.instance.identifier,
            opts=child,
        )
        return proxy

    def _backup_plan(self, name: str, args: DatabaseArgs) -> None:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        vault = aws.backup.Vault(
            f"{name}-backup-vault",
            name=f"{args.prefix}-db",
            kms_key_arn=self.key.arn,
            tags=tags(args.stack, f"{args.prefix}-db-backups"),
            opts=child,
        )
        self.backup_vault: aws.backup.Vault = vault
        lifecycle: aws.backup.PlanRuleLifecycleArgsDict = {
            "delete_after": cfg.backup_vault_retention_days
        }
        copy_actions: list[aws.backup.PlanRuleCopyActionArgsDict] = []
        if cfg.backup_copy_region is not None:
            region = aws.Provider(
                f"{name}-backup-copy-region",
                region=cfg.backup_copy_region,
                opts=child,
            )
            in_region = pulumi.ResourceOptions(parent=self, provider=region)
            copy_key = aws.kms.Key(
                f"{name}-backup-copy-key",
                description="Cortiware cross-region database backup copies",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                tags=tags(args.stack, f"{args.prefix}-db-backup-copy"),
                opts=in_region,
            )
            copy_vault = aws.backup.Vault(
                f"{name}-backup-copy-vault",
                name=f"{args.prefix}-db-copy",
                kms_key_arn=copy_key.arn,
                tags=tags(args.stack, f"{args.prefix}-db-backup-copy"),
                opts=in_region,
            )
            copy_actions.append({"destination_vault_arn": copy_vault.arn, "lifecycle": lifecycle})
        plan = aws.backup.Plan(
            f"{name}-backup-plan",
            name=f"{args.prefix}-db-daily",
            rules=[
                {
                    "rule_name": "daily",
                    "target_vault_name": vault.name,
                    # 05:00-06:00 UTC start: clear of the automated backup window
                    # (02:00-03:00) and of the maintenance window (Sun 03:30-04:30), where a
                    # snapshot would queue behind or collide with patching.
                    "schedule": "cron(0 5 * * ? *)",
                    "start_window": 60,
                    "completion_window": 360,
                    "lifecycle": lifecycle,
                    "copy_actions": copy_actions,
                }
            ],
            tags=tags(args.stack, f"{args.prefix}-db-daily"),
            opts=child,
        )
        role = managed_service_role(
            f"{name}-backup-role",
            service="backup.amazonaws.com",
            # AWS-managed: AWS Backup needs its documented service-role permissions.
            managed_policy_arn="arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
            attachment_name=f"{name}-backup-role-policy",
            account_id=args.account.account_id,
            tags=tags(args.stack, f"{args.prefix}-db-backup"),
            opts=child,
        )
        aws.backup.Selection(
            f"{name}-backup-selection",
            name=f"{args.prefix}-db",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=[self.instance.arn],
            opts=child,
        )


def _environment(args: DatabaseArgs) -> str:
    return "production" if args.production else "staging"


def _db_password(name: str, opts: pulumi.ResourceOptions) -> random.RandomPassword:
    """A 40-character database password of the characters RDS accepts."""
    return random.RandomPassword(
        name,
        length=40,
        special=True,
        override_special=RDS_PASSWORD_SPECIALS,
        min_lower=4,
        min_upper=4,
        min_numeric=4,
        min_special=2,
        opts=opts,
    )
