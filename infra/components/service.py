"""The Fargate service behind an HTTPS load balancer, its jobs (migrate, audit prune) and IAM.

The image is built from the repository's ``Dockerfile`` and pushed to this stack's ECR
repository by the operator (``docs/infra.md``); the stack runs the tag in ``service.imageTag``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import (
    AwsAccount,
    assume_role_policy,
    policy_document,
    statement,
    tags,
)
from infra.components.logs import log_group_prefix
from infra.components.network import APP_PORT, Network
from infra.components.storage import PrivateBucket, PrivateBucketArgs
from infra.config import StackConfig

__all__ = [
    "HEALTH_PATH",
    "IMAGE_PYTHON",
    "LIVENESS_PATH",
    "METRICS_NAMESPACE",
    "Service",
    "ServiceArgs",
    "serve_command",
]

HEALTH_PATH = "/api/health"
"""The load balancer's target health check (503 when the database is unreachable)."""
TARGET_HEALTH_INTERVAL_SECONDS = 30
TARGET_UNHEALTHY_THRESHOLD = 5
"""Failed target checks before a target is unhealthy: 5 x 30 s outlasts a Multi-AZ failover."""
LIVENESS_PATH = "/api/health/live"
"""The container's own health check (200 while the process runs)."""
IMAGE_PYTHON = "/opt/venv/bin/python"
"""The service image's interpreter (its virtualenv, see ``Dockerfile``)."""
METRICS_NAMESPACE = "Cortiware"
"""The only CloudWatch namespace the task may put metrics into."""
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ALB_LOG_PREFIX = "alb"
"""Key prefix of the load balancer's access logs in their bucket."""


def serve_command(workers: int) -> list[str]:
    """The web container's command: arguments of the image's ``cortiware`` entry point."""
    # All interfaces of the task's own network namespace; only the LB's security group reaches it.
    host = "0.0.0.0"  # noqa: S104
    return [
        "serve",
        "--host",
        host,
        "--port",
        str(APP_PORT),
        "--workers",
        str(workers),
    ]


@dataclass(frozen=True)
class ServiceArgs:
    """Inputs of :class:`Service`."""

    config: StackConfig
    """The whole stack config (service sizing, domain, app env)."""
    account: AwsAccount
    """Account and region, for ARNs."""
    network: Network
    """Subnets and security groups."""
    secret_arns: Mapping[str, pulumi.Output[str]]
    """Environment variable → Secrets Manager ARN, injected with ``secrets``."""
    secrets_key_arn: pulumi.Input[str]
    """CMK of those secrets (the execution role decrypts through Secrets Manager only)."""
    archive_bucket_name: pulumi.Input[str]
    """The audit archive bucket."""
    archive_url: pulumi.Input[str]
    """``s3://<bucket>/audit/``."""
    archive_prefix_arn: pulumi.Input[str]
    """``arn:aws:s3:::<bucket>/audit/*``."""
    archive_key_arn: pulumi.Input[str]
    """CMK of the archive bucket."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the service's log group (`LogsKey`)."""


class Service(pulumi.ComponentResource):
    """ECR, ECS/Fargate service behind HTTPS, autoscaling, migration and prune jobs."""

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Service", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        prefix = cfg.prefix

        self.repository: aws.ecr.Repository = aws.ecr.Repository(
            f"{name}-repository",
            name=prefix,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            tags=tags(cfg.stack, prefix),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=self.repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "Keep the newest 50 images (rollback targets)",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 50,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        self.log_group: aws.cloudwatch.LogGroup = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{log_group_prefix(prefix)}/service",
            retention_in_days=cfg.service.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(cfg.stack, f"{prefix}-service-logs"),
            opts=child,
        )
        self.cluster: aws.ecs.Cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=prefix,
            settings=[{"name": "containerInsights", "value": "enabled"}],
            tags=tags(cfg.stack, prefix),
            opts=child,
        )
        self.execution_role, self.task_role = self._roles(name, args)

        self.load_balancer, self.target_group, https = self._load_balancer(name, args)
        if cfg.domain.name is not None:
            self.base_url: pulumi.Output[str] = pulumi.Output.from_input(
                f"https://{cfg.domain.name}"
            )
        else:
            self.base_url = pulumi.Output.concat("https://", self.load_balancer.dns_name)

        image = pulumi.Output.concat(self.repository.repository_url, ":", cfg.service.image_tag)
        environment: dict[str, pulumi.Input[str]] = {
            "APP_ENV": cfg.app_env,
            "BASE_URL": self.base_url,
            "TRUSTED_PROXIES": ",".join(args.network.public_cidrs),
            "AWS_EMF_NAMESPACE": METRICS_NAMESPACE,
            "AWS_EMF_SERVICE_NAME": prefix,
        }
        if cfg.optional.oidc_issuer is not None and cfg.optional.oidc_client_id is not None:
            environment["OIDC_ISSUER"] = cfg.optional.oidc_issuer
            environment["OIDC_CLIENT_ID"] = cfg.optional.oidc_client_id

        def task(
            job: str, command: pulumi.Input[Sequence[str]], *, web: bool
        ) -> aws.ecs.TaskDefinition:
            container: dict[str, Any] = {
                "name": job,
                "image": image,
                "essential": True,
                # ECS `command` replaces the image's CMD, not its ENTRYPOINT ["cortiware"]:
                # it holds the subcommand and its arguments only.
                "command": command,
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "secrets": [
                    {"name": k, "valueFrom": v} for k, v in sorted(args.secret_arns.items())
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": self.log_group.name,
                        "awslogs-region": cfg.region,
                        "awslogs-stream-prefix": job,
                    },
                },
                "user": "10001:10001",
                "linuxParameters": {"initProcessEnabled": True},
            }
            if web:
                container["portMappings"] = [
                    {"containerPort": APP_PORT, "hostPort": APP_PORT, "protocol": "tcp"}
                ]
                # Exec form, outside the entry point: the interpreter by its absolute path
                # (the image's virtualenv, as in the Dockerfile's HEALTHCHECK), since a CI
                # base image may have no `python` of its own. urlopen raises on non-2xx.
                container["healthCheck"] = {
                    "command": [
                        "CMD",
                        IMAGE_PYTHON,
                        "-c",
                        "import urllib.request; urllib.request.urlopen("
                        f"'http://127.0.0.1:{APP_PORT}{LIVENESS_PATH}', timeout=3)",
                    ],
                    "interval": 15,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 30,
                }
            return aws.ecs.TaskDefinition(
                f"{name}-{job}-task",
                family=f"{prefix}-{job}",
                requires_compatibilities=["FARGATE"],
                network_mode="awsvpc",
                cpu=str(cfg.service.cpu),
                memory=str(cfg.service.memory_mib),
                execution_role_arn=self.execution_role.arn,
                task_role_arn=self.task_role.arn,
                runtime_platform={
                    "operating_system_family": "LINUX",
                    "cpu_architecture": "X86_64",
                },
                container_definitions=pulumi.Output.json_dumps([container]),
                tags=tags(cfg.stack, f"{prefix}-{job}"),
                opts=child,
            )

        self.web_task: aws.ecs.TaskDefinition = task(
            "web", serve_command(cfg.service.workers), web=True
        )
        self.migrate_task: aws.ecs.TaskDefinition = task("migrate", ["migrate"], web=False)
        self.prune_task: aws.ecs.TaskDefinition = task(
            "audit-prune",
            pulumi.Output.from_input(args.archive_url).apply(
                lambda url: ["audit", "prune", "--archive-to", url]
            ),
            web=False,
        )

        self.service: aws.ecs.Service = aws.ecs.Service(
            f"{name}-service",
            name=f"{prefix}-web",
            cluster=self.cluster.arn,
            task_definition=self.web_task.arn,
            launch_type="FARGATE",
            desired_count=cfg.service.desired_count,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            health_check_grace_period_seconds=60,
            network_configuration={
                "subnets": args.network.private_subnet_ids,
                "security_groups": [args.network.security_groups.service.id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": self.target_group.arn,
                    "container_name": "web",
                    "container_port": APP_PORT,
                }
            ],
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            tags=tags(cfg.stack, f"{prefix}-web"),
            # Autoscaling owns the count after creation; a deploy must not reset it.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[https], ignore_changes=["desiredCount"]
            ),
        )
        self._autoscaling(name, args)
        self._prune_schedule(name, args)
        self.register_outputs(
            {
                "url": self.base_url,
                "repositoryUrl": self.repository.repository_url,
                "clusterName": self.cluster.name,
            }
        )

    def _roles(self, name: str, args: ServiceArgs) -> tuple[aws.iam.Role, aws.iam.Role]:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        trust = assume_role_policy(
            "ecs-tasks.amazonaws.com", source_account=args.account.account_id
        )
        execution = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=trust,
            tags=tags(cfg.stack, f"{cfg.prefix}-execution"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=execution.id,
            policy=policy_document(
                statement(
                    # GetAuthorizationToken is account-wide by design: AWS accepts only "*".
                    ["ecr:GetAuthorizationToken"],
                    ["*"],
                    sid="EcrLoginRequiresWildcard",
                ),
                statement(
                    [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    [self.repository.arn],
                    sid="PullOwnRepository",
                ),
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self.log_group.arn, ":*")],
                    sid="WriteOwnLogGroup",
                ),
                statement(
                    ["secretsmanager:GetSecretValue"],
                    list(args.secret_arns.values()),
                    sid="ReadOwnSecrets",
                ),
                statement(
                    ["kms:Decrypt"],
                    [args.secrets_key_arn],
                    sid="DecryptOwnSecrets",
                    condition={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{cfg.region}.amazonaws.com"
                        }
                    },
                ),
            ),
            opts=child,
        )
        task_role = aws.iam.Role(
            f"{name}-task-role",
            assume_role_policy=trust,
            tags=tags(cfg.stack, f"{cfg.prefix}-task"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-task-policy",
            role=task_role.id,
            policy=policy_document(
                statement(
                    ["s3:PutObject", "s3:AbortMultipartUpload"],
                    [args.archive_prefix_arn],
                    sid="WriteAuditArchivePrefix",
                ),
                statement(
                    ["kms:GenerateDataKey", "kms:Decrypt"],
                    [args.archive_key_arn],
                    sid="EncryptAuditArchive",
                    condition={
                        "StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"}
                    },
                ),
                statement(
                    # PutMetricData has no resource-level permissions: AWS accepts only "*";
                    # the namespace condition is what scopes it.
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    sid="PutOwnMetricsOnly",
                    condition={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
                ),
            ),
            opts=child,
        )
        return execution, task_role

    def _load_balancer(
        self, name: str, args: ServiceArgs
    ) -> tuple[aws.lb.LoadBalancer, aws.lb.TargetGroup, aws.lb.Listener]:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        logs = self._access_log_bucket(name, args)
        lb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=f"{cfg.prefix}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[args.network.security_groups.load_balancer.id],
            subnets=args.network.public_subnet_ids,
            drop_invalid_header_fields=True,
            enable_deletion_protection=cfg.is_production,
            idle_timeout=60,
            access_logs={"bucket": logs.bucket.bucket, "prefix": ALB_LOG_PREFIX, "enabled": True},
            tags=tags(cfg.stack, f"{cfg.prefix}-alb"),
            # ELB checks it may write to the bucket when logging is switched on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs.policy]),
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-web-tg",
            name=f"{cfg.prefix}-web",
            port=APP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.network.vpc.id,
            deregistration_delay=30,
            # /api/health answers 503 while the database is unreachable, which is what lets
            # the circuit breaker roll back a deployment that cannot reach its database. A
            # Multi-AZ failover makes it unreachable for 60-120 s, so a target turns unhealthy
            # only after 5 failures 30 s apart (150 s): a failover alone replaces no task.
            health_check={
                "path": HEALTH_PATH,
                "matcher": "200",
                "interval": TARGET_HEALTH_INTERVAL_SECONDS,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": TARGET_UNHEALTHY_THRESHOLD,
            },
            tags=tags(cfg.stack, f"{cfg.prefix}-web"),
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=lb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"},
                }
            ],
            tags=tags(cfg.stack, f"{cfg.prefix}-http"),
            opts=child,
        )
        https = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=lb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self._certificate(name, args, lb),
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=tags(cfg.stack, f"{cfg.prefix}-https"),
            opts=child,
        )
        return lb, target_group, https

    def _access_log_bucket(self, name: str, args: ServiceArgs) -> PrivateBucket:
        """The ALB's access logs: SSE-S3 (the only encryption ELB log delivery supports),
        writable by the region's Elastic Load Balancing account under our prefix only,
        expired after the application log retention."""
        cfg = args.config
        # Regions older than August 2022 (eu-west-1 among them) deliver from a per-region
        # ELB account, not from the `logdelivery.elasticloadbalancing` service principal.
        elb_account = aws.elb.get_service_account_output().arn
        path = f"{ALB_LOG_PREFIX}/AWSLogs/"

        def delivery(bucket_arn: pulumi.Output[str]) -> dict[str, Any]:
            return statement(
                ["s3:PutObject"],
                [pulumi.Output.concat(bucket_arn, "/", path, args.account.account_id, "/*")],
                sid="ElbAccessLogDelivery",
            ) | {"Principal": {"AWS": elb_account}}

        return PrivateBucket(
            f"{name}-alb-logs",
            PrivateBucketArgs(
                bucket_name=pulumi.Output.concat(cfg.prefix, "-alb-logs-", args.account.account_id),
                label=f"{cfg.prefix}-alb-logs",
                stack=cfg.stack,
                kms_key_arn=None,
                versioned=False,
                lifecycle_rules=[
                    {
                        "id": "expire-access-logs",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "expiration": {"days": cfg.service.log_retention_days},
                    }
                ],
                allow_statements=[delivery],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _certificate(
        self, name: str, args: ServiceArgs, lb: aws.lb.LoadBalancer
    ) -> pulumi.Input[str]:
        domain = args.config.domain
        if domain.certificate_arn is not None:
            return domain.certificate_arn
        assert domain.name is not None  # config.load() guarantees a name or an ARN
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domain.name,
            validation_method="DNS",
            tags=tags(args.config.stack, domain.name),
            opts=child,
        )
        if domain.hosted_zone_id is None:
            # Without a zone the operator adds the validation CNAME by hand (docs/infra.md).
            return certificate.arn
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation-record",
            zone_id=domain.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        aws.route53.Record(
            f"{name}-alias",
            zone_id=domain.hosted_zone_id,
            name=domain.name,
            type="A",
            aliases=[
                {
                    "name": lb.dns_name,
                    "zone_id": lb.zone_id,
                    "evaluate_target_health": True,
                }
            ],
            opts=child,
        )
        return validation.certificate_arn

    def _autoscaling(self, name: str, args: ServiceArgs) -> None:
        cfg = args.config.service
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.service.name),
            min_capacity=cfg.min_count,
            max_capacity=cfg.max_count,
            opts=child,
        )
        common: dict[str, Any] = {
            "policy_type": "TargetTrackingScaling",
            "service_namespace": target.service_namespace,
            "scalable_dimension": target.scalable_dimension,
            "resource_id": target.resource_id,
        }
        aws.appautoscaling.Policy(
            f"{name}-scale-on-cpu",
            target_tracking_scaling_policy_configuration={
                "target_value": float(cfg.cpu_target_percent),
                "predefined_metric_specification": {
                    "predefined_metric_type": "ECSServiceAverageCPUUtilization"
                },
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=child,
            **common,
        )
        aws.appautoscaling.Policy(
            f"{name}-scale-on-requests",
            target_tracking_scaling_policy_configuration={
                "target_value": float(cfg.requests_per_target),
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": pulumi.Output.concat(
                        self.load_balancer.arn_suffix, "/", self.target_group.arn_suffix
                    ),
                },
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=child,
            **common,
        )

    def _prune_schedule(self, name: str, args: ServiceArgs) -> None:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=assume_role_policy(
                "scheduler.amazonaws.com", source_account=args.account.account_id
            ),
            tags=tags(cfg.stack, f"{cfg.prefix}-scheduler"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    ["ecs:RunTask"],
                    [self.prune_task.arn],
                    sid="RunPruneTaskOnOwnCluster",
                    condition={"ArnEquals": {"ecs:cluster": self.cluster.arn}},
                ),
                statement(
                    ["iam:PassRole"],
                    [self.execution_role.arn, self.task_role.arn],
                    sid="PassTaskRoles",
                    condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                ),
            ),
            opts=child,
        )
        aws.scheduler.Schedule(
            f"{name}-audit-prune",
            name=f"{cfg.prefix}-audit-prune",
            description="Daily: cortiware audit prune --archive-to s3://<archive>/audit/",
            schedule_expression="cron(30 3 * * ? *)",
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "FLEXIBLE", "maximum_window_in_minutes": 30},
            target={
                "arn": self.cluster.arn,
                "role_arn": role.arn,
                "ecs_parameters": {
                    "task_definition_arn": self.prune_task.arn,
                    "launch_type": "FARGATE",
                    "task_count": 1,
                    "network_configuration": {
                        "subnets": args.network.private_subnet_ids,
                        "security_groups": [args.network.security_groups.service.id],
                        "assign_public_ip": False,
                    },
                },
                "retry_policy": {
                    "maximum_retry_attempts": 2,
                    "maximum_event_age_in_seconds": 3600,
                },
            },
            opts=child,
        )
