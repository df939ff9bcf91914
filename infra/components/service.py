"""The Fargate service: cluster, log group, IAM roles, the task definitions (web, migrate,
audit prune) and the ECS service registered with the load balancer's target group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from infra.components.network import APP_PORT
from infra.config import AppEnv, ServiceConfig

__all__ = [
    "IMAGE_PYTHON",
    "LIVENESS_PATH",
    "METRICS_NAMESPACE",
    "Service",
    "ServiceArgs",
    "serve_command",
]

LIVENESS_PATH = "/api/health/live"
"""The container's own health check (200 while the process runs)."""
IMAGE_PYTHON = "/opt/venv/bin/python"
"""The service image's interpreter (its virtualenv, see ``Dockerfile``)."""
METRICS_NAMESPACE = "Cortiware"
"""The only CloudWatch namespace the task may put metrics into."""


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

    config: ServiceConfig
    """Image tag, task size, workers, desired count and log retention."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account and region, for ARNs and the log driver."""
    app_env: AppEnv
    """``APP_ENV`` of the containers."""
    base_url: pulumi.Input[str]
    """``BASE_URL``: the public HTTPS origin."""
    repository_url: pulumi.Input[str]
    """The ECR repository the image tag is pulled from."""
    repository_arn: pulumi.Input[str]
    """Its ARN, for the execution role."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets of the tasks."""
    security_group_id: pulumi.Input[str]
    """The tasks' security group."""
    trusted_proxies: Sequence[str]
    """``TRUSTED_PROXIES``: the public subnets' CIDRs, where the load balancer connects from."""
    target_group_arn: pulumi.Input[str]
    """The load balancer's target group the web tasks register with."""
    listener: pulumi.Resource
    """The HTTPS listener; the service waits for it (ECS refuses an unattached target group)."""
    secret_arns: Mapping[str, pulumi.Output[str]]
    """Environment variable → Secrets Manager ARN, injected with ``secrets`` into the web and
    audit-prune tasks."""
    migration_secret_arns: Mapping[str, pulumi.Output[str]]
    """The same for the migrate task (the owner's URL, the application role's as DATABASE_URL)."""
    secrets_key_arn: pulumi.Input[str]
    """CMK of those secrets (the execution role decrypts through Secrets Manager only)."""
    archive_url: pulumi.Input[str]
    """``s3://<bucket>/audit/``."""
    archive_prefix_arn: pulumi.Input[str]
    """``arn:aws:s3:::<bucket>/audit/*``."""
    archive_key_arn: pulumi.Input[str]
    """CMK of the archive bucket."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the service's log group (`LogsKey`)."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Further plain environment variables (optional settings such as ``OIDC_ISSUER``)."""


class Service(pulumi.ComponentResource):
    """ECS/Fargate cluster and web service, its task definitions, roles and log group."""

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Service", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        prefix, stack = args.prefix, args.stack

        self.log_group: aws.cloudwatch.LogGroup = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{log_group_prefix(prefix)}/service",
            retention_in_days=cfg.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(stack, f"{prefix}-service-logs"),
            opts=child,
        )
        # ECS Exec sessions (incident access: `cortiware db shell`) are logged here, encrypted
        # with the logs CMK, whose policy covers every group under /cortiware/<stack>/.
        self.exec_log_group: aws.cloudwatch.LogGroup = aws.cloudwatch.LogGroup(
            f"{name}-exec-logs",
            name=f"{log_group_prefix(prefix)}/ecs-exec",
            retention_in_days=cfg.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(stack, f"{prefix}-ecs-exec-logs"),
            opts=child,
        )
        self.cluster: aws.ecs.Cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=prefix,
            settings=[{"name": "containerInsights", "value": "enabled"}],
            configuration={
                "execute_command_configuration": {
                    "logging": "OVERRIDE",
                    "log_configuration": {
                        "cloud_watch_log_group_name": self.exec_log_group.name,
                        "cloud_watch_encryption_enabled": True,
                    },
                }
            },
            tags=tags(stack, prefix),
            opts=child,
        )
        self.execution_role, self.task_role = self._roles(name, args)

        image = pulumi.Output.concat(args.repository_url, ":", cfg.image_tag)
        environment: dict[str, pulumi.Input[str]] = {
            "APP_ENV": args.app_env,
            # The deployed image tag: the version /api/health reports, Sentry's release and
            # what `cortiware smoke --expect-version` checks.
            "APP_VERSION": cfg.image_tag,
            "BASE_URL": args.base_url,
            "TRUSTED_PROXIES": ",".join(args.trusted_proxies),
            "AWS_EMF_NAMESPACE": METRICS_NAMESPACE,
            "AWS_EMF_SERVICE_NAME": prefix,
            "SENTRY_TRACES_SAMPLE_RATE": f"{cfg.traces_sample_rate:g}",
            "STRIPE_PAYMENT_METHODS": ",".join(cfg.stripe_payment_methods),
            **args.environment,
        }

        def task(
            job: str,
            command: pulumi.Input[Sequence[str]],
            *,
            web: bool,
            secret_arns: Mapping[str, pulumi.Output[str]] = args.secret_arns,
        ) -> aws.ecs.TaskDefinition:
            container: dict[str, Any] = {
                "name": job,
                "image": image,
                "essential": True,
                # ECS `command` replaces the image's CMD, not its ENTRYPOINT ["cortiware"]:
                # it holds the subcommand and its arguments only.
                "command": command,
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secret_arns.items())],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": self.log_group.name,
                        "awslogs-region": args.account.region,
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
                cpu=str(cfg.cpu),
                memory=str(cfg.memory_mib),
                execution_role_arn=self.execution_role.arn,
                task_role_arn=self.task_role.arn,
                runtime_platform={
                    "operating_system_family": "LINUX",
                    "cpu_architecture": "X86_64",
                },
                container_definitions=pulumi.Output.json_dumps([container]),
                # Keep every revision registered when a new one replaces it: the fast rollback
                # (`make rollback`) points the service at the previous revision, and ECS
                # refuses an INACTIVE one.
                skip_destroy=True,
                tags=tags(stack, f"{prefix}-{job}"),
                opts=child,
            )

        self.web_task: aws.ecs.TaskDefinition = task("web", serve_command(cfg.workers), web=True)
        self.migrate_task: aws.ecs.TaskDefinition = task(
            "migrate", ["migrate"], web=False, secret_arns=args.migration_secret_arns
        )
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
            desired_count=cfg.desired_count,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            health_check_grace_period_seconds=60,
            network_configuration={
                "subnets": list(args.subnet_ids),
                "security_groups": [args.security_group_id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": args.target_group_arn,
                    "container_name": "web",
                    "container_port": APP_PORT,
                }
            ],
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            # ECS Exec for incident access (runbooks: `aws ecs execute-command … cortiware db
            # shell`); sessions are logged to the exec log group (cluster configuration).
            enable_execute_command=True,
            tags=tags(stack, f"{prefix}-web"),
            # Autoscaling owns the count after creation; a deploy must not reset it.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.listener], ignore_changes=["desiredCount"]
            ),
        )
        self.register_outputs({"clusterName": self.cluster.name, "serviceName": self.service.name})

    def _roles(self, name: str, args: ServiceArgs) -> tuple[aws.iam.Role, aws.iam.Role]:
        child = pulumi.ResourceOptions(parent=self)
        trust = assume_role_policy(
            "ecs-tasks.amazonaws.com", source_account=args.account.account_id
        )
        execution = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=trust,
            tags=tags(args.stack, f"{args.prefix}-execution"),
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
                    [args.repository_arn],
                    sid="PullOwnRepository",
                ),
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self.log_group.arn, ":*")],
                    sid="WriteOwnLogGroup",
                ),
                statement(
                    ["secretsmanager:GetSecretValue"],
                    # Each task's secrets; both maps name DATABASE_URL, with different ARNs.
                    [
                        *args.secret_arns.values(),
                        *(
                            v
                            for k, v in args.migration_secret_arns.items()
                            if args.secret_arns.get(k) is not v
                        ),
                    ],
                    sid="ReadOwnSecrets",
                ),
                statement(
                    ["kms:Decrypt"],
                    [args.secrets_key_arn],
                    sid="DecryptOwnSecrets",
                    condition={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{args.account.region}.amazonaws.com"
                        }
                    },
                ),
            ),
            opts=child,
        )
        task_role = aws.iam.Role(
            f"{name}-task-role",
            assume_role_policy=trust,
            tags=tags(args.stack, f"{args.prefix}-task"),
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
                        "StringEquals": {
                            "kms:ViaService": f"s3.{args.account.region}.amazonaws.com"
                        }
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
                statement(
                    # ECS Exec's SSM agent channel; these actions have no resource-level
                    # permissions, AWS accepts only "*" (ECS developer guide, "ECS Exec").
                    [
                        "ssmmessages:CreateControlChannel",
                        "ssmmessages:CreateDataChannel",
                        "ssmmessages:OpenControlChannel",
                        "ssmmessages:OpenDataChannel",
                    ],
                    ["*"],
                    sid="EcsExecChannelRequiresWildcard",
                ),
                statement(
                    # The agent looks the group up before logging; Describe* takes only "*".
                    ["logs:DescribeLogGroups"],
                    ["*"],
                    sid="EcsExecFindsLogGroupRequiresWildcard",
                ),
                statement(
                    ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    [pulumi.Output.concat(self.exec_log_group.arn, ":*")],
                    sid="EcsExecWritesSessionLog",
                ),
            ),
            opts=child,
        )
        return execution, task_role
