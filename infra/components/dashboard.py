"""One CloudWatch dashboard per stack: golden signals, the onboarding funnel, RDS, Redis, the
canaries and every alarm's state, on one page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.alarms import DB_CONNECT_FAILED_METRIC, EMF_NAMESPACE

__all__ = ["FUNNEL", "Dashboard", "DashboardArgs"]

FUNNEL = (
    "activity.invite_created",
    "activity.invite_verified",
    "activity.invite_accepted",
    "activity.invite_failed",
)
"""The onboarding funnel's EMF counters, in order."""
WIDTH = 12
HEIGHT = 6


@dataclass(frozen=True)
class DashboardArgs:
    """Inputs of :class:`Dashboard`: what the widgets plot."""

    prefix: str
    """The dashboard is called ``<prefix>``."""
    region: str
    """The region every widget reads."""
    metrics_environment: str
    """``Environment`` dimension of the service's own metrics."""
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    db_instance_identifier: pulumi.Input[str]
    db_proxy_name: pulumi.Input[str]
    cache_member_ids: Sequence[str]
    canary_names: Sequence[pulumi.Input[str]]
    alarm_arns: Sequence[pulumi.Input[str]]
    """Every alarm of the stack, for the alarm-state widget."""


def _metric(namespace: str, name: str, dims: Mapping[str, Any], **options: Any) -> list[Any]:
    flat: list[Any] = [namespace, name]
    for key, value in dims.items():
        flat += [key, value]
    return [*flat, options] if options else flat


def _graph(title: str, metrics: list[list[Any]], region: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "period": 300,
            "metrics": metrics,
            **extra,
        },
    }


class Dashboard(pulumi.ComponentResource):
    """The stack's dashboard."""

    def __init__(
        self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Dashboard", name, None, opts)
        region = args.region
        lb = {"LoadBalancer": args.load_balancer_arn_suffix}
        target = {**lb, "TargetGroup": args.target_group_arn_suffix}
        ecs = {"ClusterName": args.cluster_name, "ServiceName": args.service_name}
        db = {"DBInstanceIdentifier": args.db_instance_identifier}
        proxy = {"ProxyName": args.db_proxy_name}
        app = {"Environment": args.metrics_environment}
        alb = "AWS/ApplicationELB"
        widgets: list[dict[str, Any]] = [
            _graph(
                "Traffic and errors",
                [
                    _metric(alb, "RequestCount", lb, stat="Sum", id="requests"),
                    _metric(alb, "HTTPCode_Target_5XX_Count", lb, stat="Sum", id="t5xx"),
                    _metric(alb, "HTTPCode_ELB_5XX_Count", lb, stat="Sum", id="e5xx"),
                    [
                        {
                            "expression": "100 * (FILL(t5xx, 0) + FILL(e5xx, 0)) / requests",
                            "label": "5xx %",
                            "id": "rate",
                            "yAxis": "right",
                        }
                    ],
                ],
                region,
            ),
            _graph(
                "Latency (target response time)",
                [
                    _metric(alb, "TargetResponseTime", target, stat="p50"),
                    _metric(alb, "TargetResponseTime", target, stat="p95"),
                    _metric(alb, "TargetResponseTime", target, stat="p99"),
                ],
                region,
            ),
            _graph(
                "Saturation (tasks)",
                [
                    _metric("AWS/ECS", "CPUUtilization", ecs, stat="Average"),
                    _metric("AWS/ECS", "MemoryUtilization", ecs, stat="Average"),
                    _metric("ECS/ContainerInsights", "RunningTaskCount", ecs, stat="Average"),
                    _metric(alb, "UnHealthyHostCount", target, stat="Maximum"),
                ],
                region,
            ),
            _graph(
                "Onboarding funnel",
                [_metric(EMF_NAMESPACE, m, app, stat="Sum") for m in FUNNEL],
                region,
                period=3600,
            ),
            _graph(
                "Database",
                [
                    _metric("AWS/RDS", "CPUUtilization", db, stat="Average"),
                    _metric("AWS/RDS", "DatabaseConnections", db, stat="Maximum"),
                    _metric("AWS/RDS", "FreeableMemory", db, stat="Minimum", yAxis="right"),
                    _metric("AWS/RDS", "DiskQueueDepth", db, stat="Average"),
                    _metric("AWS/RDS", "DatabaseConnectionsSetupFailed", proxy, stat="Sum"),
                    _metric(EMF_NAMESPACE, DB_CONNECT_FAILED_METRIC, app, stat="Sum"),
                ],
                region,
            ),
            _graph(
                "Database from the service (ms)",
                [
                    _metric(EMF_NAMESPACE, "db.query_ms", app, stat="p95"),
                    _metric(EMF_NAMESPACE, "db.pool.wait_ms", app, stat="p95"),
                    _metric(
                        EMF_NAMESPACE, "database.pool_exhausted", app, stat="Sum", yAxis="right"
                    ),
                    _metric(EMF_NAMESPACE, "db.replica.fallback", app, stat="Sum", yAxis="right"),
                ],
                region,
            ),
            _graph(
                "Redis",
                [
                    *(
                        _metric(
                            "AWS/ElastiCache",
                            "EngineCPUUtilization",
                            {"CacheClusterId": member},
                            stat="Maximum",
                        )
                        for member in args.cache_member_ids
                    ),
                    *(
                        _metric(
                            "AWS/ElastiCache",
                            "DatabaseMemoryUsagePercentage",
                            {"CacheClusterId": member},
                            stat="Maximum",
                        )
                        for member in args.cache_member_ids
                    ),
                    _metric(EMF_NAMESPACE, "cache.hit", app, stat="Sum", yAxis="right"),
                    _metric(EMF_NAMESPACE, "cache.miss", app, stat="Sum", yAxis="right"),
                    _metric(
                        EMF_NAMESPACE, "redis.fallback.active", app, stat="Maximum", yAxis="right"
                    ),
                ],
                region,
            ),
            _graph(
                "Canaries (success %)",
                [
                    _metric("CloudWatchSynthetics", "SuccessPercent", {"CanaryName": canary})
                    for canary in args.canary_names
                ],
                region,
                stat="Average",
            ),
            {
                "type": "alarm",
                "width": WIDTH,
                "height": HEIGHT,
                "properties": {"title": "Alarm states", "alarms": list(args.alarm_arns)},
            },
        ]
        self.dashboard: aws.cloudwatch.Dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.prefix,
            dashboard_body=pulumi.Output.json_dumps({"widgets": widgets}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"dashboardName": self.dashboard.dashboard_name})
