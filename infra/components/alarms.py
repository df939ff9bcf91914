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

from infra.components._aws import tags
from infra.config import AlertsConfig

__all__ = [
    "DB_CONNECT_FAILED_METRIC",
    "EMF_NAMESPACE",
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
MIB = 1024**2
TRANSACTION_ID_ALARM = 1_000_000_000
"""AWS's recommended alarm point for MaximumUsedTransactionIDs (wraparound is at 2^31)."""
EMF_NAMESPACE = "Cortiware"
"""The namespace of the service's own metrics (``cortiware.metrics_publisher``)."""
DB_CONNECT_FAILED_METRIC = "db.connect_failed"
"""The service's counter of failed attempts to open a database connection."""

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
    shared_runbook: str | None = None
    """The alarm (short name) whose runbook this one shares, for alarms of one kind."""

    @property
    def runbook(self) -> str:
        """``runbooks/<name>.md`` (or the shared runbook's path)."""
        return runbook_path(self.shared_runbook or self.name)


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
    topic_arn: pulumi.Input[str]
    """The paging topic every alarm notifies on ALARM and OK."""
    metrics_environment: str
    """The ``Environment`` dimension of the service's own (EMF) metrics: its ``APP_ENV``."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """``app/<name>/<id>``."""
    target_group_arn_suffix: pulumi.Input[str]
    """``targetgroup/<name>/<id>``."""
    db_instance_identifier: pulumi.Input[str]
    """The primary instance."""
    db_replica_identifier: pulumi.Input[str] | None
    """The read replica, if any (replica lag)."""
    db_burstable: bool
    """The instance class earns CPU credits (``db.t*``)."""
    db_proxy_name: pulumi.Input[str]
    """The RDS Proxy in front of the primary."""
    cache_member_ids: Sequence[str]
    """Redis node ids."""
    cluster_name: pulumi.Input[str]
    """ECS cluster."""
    service_name: pulumi.Input[str]
    """ECS service."""
    prune_failure_rule: pulumi.Input[str]
    """EventBridge rule matching a failed audit-prune task."""
    backup_failure_rule: pulumi.Input[str]
    """EventBridge rule matching a failed AWS Backup job."""
    secret_age: Metric
    """Days since the stack's oldest secret last changed (:mod:`infra.components.secret_age`)."""


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
    app = {"Environment": args.metrics_environment}
    proxy = {"ProxyName": args.db_proxy_name}
    window = cfg.conversion_window_hours * 3600

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
            "target-p95-latency",
            f"p95 target response time above {cfg.p95_latency_seconds:g}s.",
            Metric("AWS/ApplicationELB", "TargetResponseTime", "p95", target),
            ">",
            cfg.p95_latency_seconds,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "onboarding-conversion",
            f"Fewer than {cfg.conversion_min_percent:g}% of the invites created in the last "
            f"{cfg.conversion_window_hours} h were accepted (with at least "
            f"{cfg.conversion_min_invites} created).",
            Expression(
                # Counters are published only when they moved: a missing datapoint is zero.
                # Below the minimum volume the expression reads 100 %, so it cannot fire.
                f"IF(FILL(created, 0) >= {cfg.conversion_min_invites}, "
                "100 * FILL(accepted, 0) / FILL(created, 0), 100)",
                "invite conversion percent",
                {
                    "created": Metric(
                        EMF_NAMESPACE, "activity.invite_created", "Sum", app, period=window
                    ),
                    "accepted": Metric(
                        EMF_NAMESPACE, "activity.invite_accepted", "Sum", app, period=window
                    ),
                },
            ),
            "<",
            cfg.conversion_min_percent,
            periods=1,
        ),
        AlarmSpec(
            "db-connection-failures",
            "Connections to the database fail: the service cannot connect, RDS Proxy cannot "
            "reach the instance, or clients fail to authenticate to the proxy.",
            Expression(
                "FILL(service, 0) + FILL(proxy_to_db, 0) + FILL(client_auth, 0)",
                "failed database connections",
                {
                    "service": Metric(EMF_NAMESPACE, DB_CONNECT_FAILED_METRIC, "Sum", app),
                    "proxy_to_db": Metric(
                        "AWS/RDS", "DatabaseConnectionsSetupFailed", "Sum", proxy
                    ),
                    "client_auth": Metric(
                        "AWS/RDS", "ClientConnectionsSetupFailedAuth", "Sum", proxy
                    ),
                },
            ),
            ">",
            cfg.db_connection_failures,
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
            "rds-freeable-memory",
            f"Database freeable memory below {cfg.db_min_freeable_memory_mb} MiB.",
            Metric("AWS/RDS", "FreeableMemory", "Minimum", db),
            "<",
            cfg.db_min_freeable_memory_mb * MIB,
            periods=3,
            datapoints=2,
            missing="breaching",
        ),
        AlarmSpec(
            "rds-transaction-ids",
            "More than 1 billion transaction ids used since the oldest unfrozen row: "
            "autovacuum is not keeping up with wraparound (PostgreSQL stops at 2^31).",
            Metric("AWS/RDS", "MaximumUsedTransactionIDs", "Maximum", db),
            ">",
            TRANSACTION_ID_ALARM,
            periods=1,
            missing="breaching",
        ),
        AlarmSpec(
            "rds-disk-queue-depth",
            f"More than {cfg.db_max_disk_queue_depth:g} I/Os waiting for the database's disk.",
            Metric("AWS/RDS", "DiskQueueDepth", "Average", db),
            ">",
            cfg.db_max_disk_queue_depth,
            periods=3,
            datapoints=3,
        ),
        *(
            [
                AlarmSpec(
                    "rds-cpu-credits",
                    f"Database CPU credit balance below {cfg.db_min_cpu_credits}: the "
                    "burstable instance is about to be throttled to its baseline.",
                    Metric("AWS/RDS", "CPUCreditBalance", "Minimum", db),
                    "<",
                    cfg.db_min_cpu_credits,
                    periods=3,
                    datapoints=2,
                    missing="breaching",
                )
            ]
            if args.db_burstable
            else []
        ),
        *(
            [
                AlarmSpec(
                    "rds-replica-lag",
                    f"The read replica is more than {cfg.db_max_replica_lag_seconds} s behind.",
                    Metric(
                        "AWS/RDS",
                        "ReplicaLag",
                        "Maximum",
                        {"DBInstanceIdentifier": args.db_replica_identifier},
                    ),
                    ">",
                    cfg.db_max_replica_lag_seconds,
                    periods=3,
                    datapoints=2,
                    missing="breaching",
                )
            ]
            if args.db_replica_identifier is not None
            else []
        ),
        AlarmSpec(
            "prune-task-failed",
            "The daily audit-prune task stopped with a non-zero exit code (or never started).",
            Metric("AWS/Events", "MatchedEvents", "Sum", {"RuleName": args.prune_failure_rule}),
            ">",
            0,
            periods=1,
        ),
        AlarmSpec(
            "backup-job-failed",
            "An AWS Backup job or cross-region copy of the database failed, aborted or expired.",
            Metric("AWS/Events", "MatchedEvents", "Sum", {"RuleName": args.backup_failure_rule}),
            ">",
            0,
            periods=1,
        ),
        AlarmSpec(
            "secret-age",
            f"A secret of the stack has not changed for more than {cfg.secret_max_age_days} "
            "days: rotate it.",
            args.secret_age,
            ">",
            cfg.secret_max_age_days,
            periods=1,
            # The measuring function not reporting is itself worth a look.
            missing="breaching",
        ),
        AlarmSpec(
            "redis-fallback",
            "A task switched from Redis to its in-memory fallback (limits per worker).",
            Metric(EMF_NAMESPACE, "redis.fallback.activated", "Sum", app),
            ">",
            0,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "redis-degraded",
            "Tasks have served from their in-memory fallback for 5 minutes (health "
            "`degraded`: Redis configured but unreachable; limits and idempotency per worker).",
            # A gauge every worker publishes each minute: 1 while its breaker is open.
            Metric(EMF_NAMESPACE, "redis.fallback.active", "Maximum", app, period=60),
            ">=",
            1,
            periods=5,
        ),
        AlarmSpec(
            "db-pool-waits",
            f"Requests wait over {cfg.db_max_pool_wait_ms} ms (p95) for a pooled database "
            "connection, or the pool ran out (503 `The service is busy`).",
            Expression(
                # Exhaustion (every connection busy for the 5 s pool timeout) counts as a
                # wait far over any threshold; without either metric nothing is waiting.
                f"IF(FILL(exhausted, 0) > 0, {cfg.db_max_pool_wait_ms + 1}, FILL(wait, 0))",
                "p95 pool wait (ms)",
                {
                    "wait": Metric(EMF_NAMESPACE, "db.pool.wait_ms", "p95", app),
                    "exhausted": Metric(EMF_NAMESPACE, "database.pool_exhausted", "Sum", app),
                },
            ),
            ">",
            cfg.db_max_pool_wait_ms,
            periods=3,
            datapoints=2,
        ),
        AlarmSpec(
            "webhook-failures",
            "Signed Stripe events failed while being applied (subscriptions drift from Stripe).",
            Metric(EMF_NAMESPACE, "webhooks.stripe.failed", "Sum", app),
            ">",
            0,
            periods=3,
            datapoints=2,
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
    """One CloudWatch alarm per table row, each notifying the paging topic."""

    def __init__(
        self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Alarms", name, None, opts)
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {
            spec.name: metric_alarm(
                f"{name}-{spec.name}",
                spec,
                prefix=args.prefix,
                stack=args.stack,
                topic_arn=args.topic_arn,
                parent=self,
            )
            for spec in alarm_table(args)
        }
        self.register_outputs({})
