"""CloudWatch alarms on the load balancer, service, database and Redis, sent to an SNS topic.

The alarms are a table (:func:`alarm_table`): one :class:`AlarmSpec` row per alarm with its
signal (a metric or a metric-math expression), comparison, threshold, periods and runbook.
Every alarm names its runbook, ``runbooks/<alarm-name>.md``, in its description and in its
``Runbook`` tag; a test checks that each of those files exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, customer_managed_key, policy_document, tags
from infra.config import AlertsConfig

__all__ = [
    "GIB",
    "AlarmSpec",
    "Alarms",
    "AlarmsArgs",
    "Expression",
    "Metric",
    "alarm_table",
    "metric_alarm",
    "runbook_path",
]

GIB = 1024**3

Comparison = Literal[">", ">=", "<", "<="]
COMPARISONS: Mapping[str, str] = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}
MissingData = Literal["breaching", "notBreaching", "ignore", "missing"]


def runbook_path(alarm: str) -> str:
    """The runbook an alarm points at, relative to the repository root."""
    return f"runbooks/{alarm}.md"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric and how its datapoints are aggregated."""

    namespace: str
    name: str
    statistic: str
    """``Average``, ``Sum``, ``Maximum``, ``Minimum``, or a percentile such as ``p95``."""
    dimensions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    period: int = 300
    """Seconds per datapoint."""


@dataclass(frozen=True)
class Expression:
    """Metric math over named metrics (``id`` → :class:`Metric`)."""

    expression: str
    label: str
    metrics: Mapping[str, Metric]
    result_id: str = "result"
    """Query id of the expression itself."""


@dataclass(frozen=True)
class AlarmSpec:
    """One row of the alarm table."""

    name: str
    """Short name: the alarm is ``<prefix>-<name>``, its runbook ``runbooks/<name>.md``."""
    summary: str
    """What firing means, in one sentence (the alarm's description)."""
    signal: Metric | Expression
    comparison: Comparison
    threshold: float
    periods: int
    """Evaluation periods."""
    datapoints: int | None = None
    """Breaching datapoints among ``periods`` that fire the alarm (all of them when unset)."""
    missing: MissingData = "notBreaching"
    """How missing data counts."""

    @property
    def runbook(self) -> str:
        """``runbooks/<name>.md``."""
        return runbook_path(self.name)


def _query(query_id: str, metric: Metric) -> aws.cloudwatch.MetricAlarmMetricQueryArgsDict:
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": metric.namespace,
            "metric_name": metric.name,
            "stat": metric.statistic,
            "period": metric.period,
            "dimensions": dict(metric.dimensions),
        },
    }


def _signal_inputs(signal: Metric | Expression) -> dict[str, Any]:
    if isinstance(signal, Expression):
        result: aws.cloudwatch.MetricAlarmMetricQueryArgsDict = {
            "id": signal.result_id,
            "label": signal.label,
            "return_data": True,
            "expression": signal.expression,
        }
        queries = [_query(query_id, m) for query_id, m in signal.metrics.items()]
        return {"metric_queries": [*queries, result]}
    statistic: dict[str, str] = (
        {"extended_statistic": signal.statistic}
        if signal.statistic.startswith("p")
        else {"statistic": signal.statistic}
    )
    return {
        "namespace": signal.namespace,
        "metric_name": signal.name,
        "dimensions": dict(signal.dimensions),
        "period": signal.period,
        **statistic,
    }


def metric_alarm(
    resource_name: str,
    spec: AlarmSpec,
    *,
    prefix: str,
    stack: str,
    topic_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> aws.cloudwatch.MetricAlarm:
    """The alarm of one table row, notifying ``topic_arn`` on alarm and recovery."""
    extra: dict[str, Any] = {}
    if spec.datapoints is not None:
        extra["datapoints_to_alarm"] = spec.datapoints
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=f"{prefix}-{spec.name}",
        alarm_description=f"{spec.summary} Runbook: {spec.runbook}",
        comparison_operator=COMPARISONS[spec.comparison],
        threshold=spec.threshold,
        evaluation_periods=spec.periods,
        treat_missing_data=spec.missing,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=tags(stack, f"{prefix}-{spec.name}", Runbook=spec.runbook),
        opts=pulumi.ResourceOptions(parent=parent),
        **_signal_inputs(spec.signal),
        **extra,
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


def _worst_node(members: Sequence[str], metric: str, statistic: str) -> Expression:
    """The worst Redis node's value: a failover moves the primary, so every node is watched."""
    return Expression(
        expression=f"MAX([{', '.join(f'node{i}' for i in range(len(members)))}])",
        label=f"worst node {metric}",
        metrics={
            f"node{i}": Metric("AWS/ElastiCache", metric, statistic, {"CacheClusterId": member})
            for i, member in enumerate(members)
        },
        result_id="worst",
    )


def alarm_table(args: AlarmsArgs) -> list[AlarmSpec]:
    """Every alarm of the stack, one row each."""
    cfg = args.config
    lb = {"LoadBalancer": args.load_balancer_arn_suffix}
    target = {**lb, "TargetGroup": args.target_group_arn_suffix}
    db = {"DBInstanceIdentifier": args.db_instance_identifier}
    ecs = {"ClusterName": args.cluster_name, "ServiceName": args.service_name}
    members = args.cache_member_ids

    def alb(name: str) -> Metric:
        return Metric("AWS/ApplicationELB", name, "Sum", lb)

    def container_insights(name: str) -> Metric:
        return Metric("ECS/ContainerInsights", name, "Average", ecs, period=60)

    return [
        AlarmSpec(
            "alb-5xx-rate",
            f"More than {cfg.error_rate_percent}% of requests answered 5xx.",
            Expression(
                "IF(requests > 0, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)",
                "5xx percent",
                {
                    "requests": alb("RequestCount"),
                    "elb5xx": alb("HTTPCode_ELB_5XX_Count"),
                    "target5xx": alb("HTTPCode_Target_5XX_Count"),
                },
                result_id="rate",
            ),
            ">",
            cfg.error_rate_percent,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "target-p99-latency",
            f"p99 target response time above {cfg.p99_latency_seconds}s.",
            Metric("AWS/ApplicationELB", "TargetResponseTime", "p99", target),
            ">",
            cfg.p99_latency_seconds,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "unhealthy-hosts",
            "A task fails the /api/health target health check.",
            Metric("AWS/ApplicationELB", "UnHealthyHostCount", "Maximum", target, period=60),
            ">",
            0,
            periods=5,
            datapoints=3,
        ),
        AlarmSpec(
            "rds-cpu",
            "Database CPU above 80% for 15 minutes.",
            Metric("AWS/RDS", "CPUUtilization", "Average", db),
            ">",
            80,
            periods=3,
            missing="breaching",
        ),
        AlarmSpec(
            "rds-free-storage",
            f"Database free storage below {cfg.db_min_free_storage_gb} GiB.",
            Metric("AWS/RDS", "FreeStorageSpace", "Minimum", db),
            "<",
            cfg.db_min_free_storage_gb * GIB,
            periods=1,
            missing="breaching",
        ),
        AlarmSpec(
            "rds-connections",
            f"More than {cfg.db_max_connections} database connections.",
            Metric("AWS/RDS", "DatabaseConnections", "Maximum", db),
            ">",
            cfg.db_max_connections,
            periods=3,
            datapoints=2,
            missing="breaching",
        ),
        AlarmSpec(
            "redis-cpu",
            "Redis engine CPU above 80% on a node.",
            _worst_node(members, "EngineCPUUtilization", "Maximum"),
            ">",
            80,
            periods=3,
            datapoints=2,
            missing="breaching",
        ),
        AlarmSpec(
            "redis-memory",
            "Redis memory above 80% of maxmemory on a node.",
            _worst_node(members, "DatabaseMemoryUsagePercentage", "Maximum"),
            ">",
            80,
            periods=3,
            datapoints=2,
            missing="breaching",
        ),
        AlarmSpec(
            "redis-evictions",
            "Redis is evicting keys (rate-limit/idempotency state is being lost).",
            _worst_node(members, "Evictions", "Sum"),
            ">",
            0,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "ecs-running-tasks",
            "Fewer tasks running than desired for 10 minutes.",
            Expression(
                "desired - running",
                "tasks missing",
                {
                    "desired": container_insights("DesiredTaskCount"),
                    "running": container_insights("RunningTaskCount"),
                },
                result_id="missing",
            ),
            # No Container Insights data means no tasks reporting: treat as breaching.
            ">",
            0,
            periods=10,
            datapoints=10,
            missing="breaching",
        ),
    ]


class Alarms(pulumi.ComponentResource):
    """The alarm topic (CMK-encrypted, e-mail subscribers) and one alarm per table row."""

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
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {
            spec.name: metric_alarm(
                f"{name}-{spec.name}",
                spec,
                prefix=args.prefix,
                stack=args.stack,
                topic_arn=self.topic.arn,
                parent=self,
            )
            for spec in alarm_table(args)
        }
        self.register_outputs({"topicArn": self.topic.arn})
