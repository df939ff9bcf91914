"""CloudWatch alarms on the load balancer, service, database and Redis, sent to an SNS topic.

Every alarm names its runbook, ``runbooks/<alarm-name>.md``, in its description and in
its ``Runbook`` tag; a test checks that each of those files exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, customer_managed_key, policy_document, tags
from infra.config import AlertsConfig

__all__ = ["ALARM_NAMES", "Alarms", "AlarmsArgs", "runbook_alarm", "runbook_path"]

ALARM_NAMES = (
    "alb-5xx-rate",
    "target-p99-latency",
    "unhealthy-hosts",
    "rds-cpu",
    "rds-free-storage",
    "rds-connections",
    "redis-cpu",
    "redis-memory",
    "redis-evictions",
    "ecs-running-tasks",
)
"""Alarms of this component; the canary adds ``canary-success``."""

GIB = 1024**3


def runbook_path(alarm: str) -> str:
    """The runbook an alarm points at, relative to the repository root."""
    return f"runbooks/{alarm}.md"


def runbook_alarm(
    name: str,
    *,
    alarm: str,
    summary: str,
    prefix: str,
    stack: str,
    topic_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    **metric: Any,
) -> aws.cloudwatch.MetricAlarm:
    """A metric alarm notifying ``topic_arn`` on alarm and recovery, tagged with its runbook."""
    runbook = runbook_path(alarm)
    return aws.cloudwatch.MetricAlarm(
        name,
        name=f"{prefix}-{alarm}",
        alarm_description=f"{summary} Runbook: {runbook}",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=tags(stack, f"{prefix}-{alarm}", Runbook=runbook),
        opts=pulumi.ResourceOptions(parent=parent),
        **metric,
    )


@dataclass(frozen=True)
class AlarmsArgs:
    """Inputs of :class:`Alarms`: the dimensions of what is watched."""

    config: AlertsConfig
    """Recipients and thresholds."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account, for the topic key's policy."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """``app/<name>/<id>``."""
    target_group_arn_suffix: pulumi.Input[str]
    """``targetgroup/<name>/<id>``."""
    db_instance_identifier: pulumi.Input[str]
    """The primary instance."""
    cache_member_ids: Sequence[str]
    """Redis node ids."""
    cluster_name: pulumi.Input[str]
    """ECS cluster."""
    service_name: pulumi.Input[str]
    """ECS service."""


class Alarms(pulumi.ComponentResource):
    """The alarm topic (CMK-encrypted, e-mail subscribers) and one alarm per failure mode."""

    def __init__(
        self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Alarms", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        key = customer_managed_key(
            f"{name}-topic-key",
            description="Cortiware alarm topic",
            stack=args.stack,
            alias=f"{args.prefix}-alarms",
            parent=self,
            # CloudWatch must be able to encrypt what it publishes to the topic.
            policy=policy_document(
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": pulumi.Output.concat(
                            "arn:aws:iam::", args.account.account_id, ":root"
                        )
                    },
                    "Action": "kms:*",
                    # In a key policy "*" means this key itself.
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchPublishes",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account.account_id}},
                },
            ),
        )
        self.topic: aws.sns.Topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{args.prefix}-alarms",
            kms_master_key_id=key.arn,
            tags=tags(args.stack, f"{args.prefix}-alarms"),
            opts=child,
        )
        for i, email in enumerate(cfg.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )

        def alarm(short: str, summary: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
            return runbook_alarm(
                f"{name}-{short}",
                alarm=short,
                summary=summary,
                prefix=args.prefix,
                stack=args.stack,
                topic_arn=self.topic.arn,
                parent=self,
                **metric,
            )

        lb = {"LoadBalancer": args.load_balancer_arn_suffix}
        target = {**lb, "TargetGroup": args.target_group_arn_suffix}
        db = {"DBInstanceIdentifier": args.db_instance_identifier}
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {
            "alb-5xx-rate": alarm(
                "alb-5xx-rate",
                f"More than {cfg.error_rate_percent}% of requests answered 5xx.",
                comparison_operator="GreaterThanThreshold",
                threshold=cfg.error_rate_percent,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="notBreaching",
                metric_queries=[
                    _metric("requests", "AWS/ApplicationELB", "RequestCount", "Sum", lb),
                    _metric("elb5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", lb),
                    _metric(
                        "target5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", lb
                    ),
                    {
                        "id": "rate",
                        "label": "5xx percent",
                        "return_data": True,
                        "expression": "IF(requests > 0, 100 * (FILL(elb5xx, 0) + "
                        "FILL(target5xx, 0)) / requests, 0)",
                    },
                ],
            ),
            "target-p99-latency": alarm(
                "target-p99-latency",
                f"p99 target response time above {cfg.p99_latency_seconds}s.",
                namespace="AWS/ApplicationELB",
                metric_name="TargetResponseTime",
                extended_statistic="p99",
                dimensions=target,
                period=300,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator="GreaterThanThreshold",
                threshold=cfg.p99_latency_seconds,
                treat_missing_data="notBreaching",
            ),
            "unhealthy-hosts": alarm(
                "unhealthy-hosts",
                "A task fails the /api/health target health check.",
                namespace="AWS/ApplicationELB",
                metric_name="UnHealthyHostCount",
                statistic="Maximum",
                dimensions=target,
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
            ),
            "rds-cpu": alarm(
                "rds-cpu",
                "Database CPU above 80% for 15 minutes.",
                namespace="AWS/RDS",
                metric_name="CPUUtilization",
                statistic="Average",
                dimensions=db,
                period=300,
                evaluation_periods=3,
                comparison_operator="GreaterThanThreshold",
                threshold=80,
                treat_missing_data="breaching",
            ),
            "rds-free-storage": alarm(
                "rds-free-storage",
                f"Database free storage below {cfg.db_min_free_storage_gb} GiB.",
                namespace="AWS/RDS",
                metric_name="FreeStorageSpace",
                statistic="Minimum",
                dimensions=db,
                period=300,
                evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=cfg.db_min_free_storage_gb * GIB,
                treat_missing_data="breaching",
            ),
            "rds-connections": alarm(
                "rds-connections",
                f"More than {cfg.db_max_connections} database connections.",
                namespace="AWS/RDS",
                metric_name="DatabaseConnections",
                statistic="Maximum",
                dimensions=db,
                period=300,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator="GreaterThanThreshold",
                threshold=cfg.db_max_connections,
                treat_missing_data="breaching",
            ),
            "redis-cpu": alarm(
                "redis-cpu",
                "Redis engine CPU above 80% on a node.",
                **_redis_max(args.cache_member_ids, "EngineCPUUtilization", "Maximum"),
                comparison_operator="GreaterThanThreshold",
                threshold=80,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="breaching",
            ),
            "redis-memory": alarm(
                "redis-memory",
                "Redis memory above 80% of maxmemory on a node.",
                **_redis_max(args.cache_member_ids, "DatabaseMemoryUsagePercentage", "Maximum"),
                comparison_operator="GreaterThanThreshold",
                threshold=80,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="breaching",
            ),
            "redis-evictions": alarm(
                "redis-evictions",
                "Redis is evicting keys (rate-limit/idempotency state is being lost).",
                **_redis_max(args.cache_member_ids, "Evictions", "Sum"),
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="notBreaching",
            ),
            "ecs-running-tasks": alarm(
                "ecs-running-tasks",
                "Fewer tasks running than desired for 10 minutes.",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=10,
                datapoints_to_alarm=10,
                # No Container Insights data means no tasks reporting: treat as breaching.
                treat_missing_data="breaching",
                metric_queries=[
                    _metric(
                        "desired",
                        "ECS/ContainerInsights",
                        "DesiredTaskCount",
                        "Average",
                        {"ClusterName": args.cluster_name, "ServiceName": args.service_name},
                        period=60,
                    ),
                    _metric(
                        "running",
                        "ECS/ContainerInsights",
                        "RunningTaskCount",
                        "Average",
                        {"ClusterName": args.cluster_name, "ServiceName": args.service_name},
                        period=60,
                    ),
                    {
                        "id": "missing",
                        "label": "tasks missing",
                        "return_data": True,
                        "expression": "desired - running",
                    },
                ],
            ),
        }
        self.register_outputs({"topicArn": self.topic.arn})


def _metric(
    query_id: str,
    namespace: str,
    metric_name: str,
    stat: str,
    dimensions: dict[str, pulumi.Input[str]],
    *,
    period: int = 300,
) -> aws.cloudwatch.MetricAlarmMetricQueryArgsDict:
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": namespace,
            "metric_name": metric_name,
            "stat": stat,
            "period": period,
            "dimensions": dimensions,
        },
    }


def _redis_max(members: Sequence[str], metric_name: str, stat: str) -> dict[str, Any]:
    """The worst node's value: a failover moves the primary, so every node is watched."""
    ids = [f"node{i}" for i in range(len(members))]
    queries = [
        _metric(query_id, "AWS/ElastiCache", metric_name, stat, {"CacheClusterId": member})
        for query_id, member in zip(ids, members, strict=True)
    ]
    worst: aws.cloudwatch.MetricAlarmMetricQueryArgsDict = {
        "id": "worst",
        "label": f"worst node {metric_name}",
        "return_data": True,
        "expression": f"MAX([{', '.join(ids)}])",
    }
    return {"metric_queries": [*queries, worst]}
