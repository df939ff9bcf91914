"""Target-tracking autoscaling of the ECS service on CPU and on requests per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import MovedFrom, child_options
from infra.config import ServiceConfig

__all__ = ["Autoscaling", "AutoscalingArgs"]

SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60


@dataclass(frozen=True)
class AutoscalingArgs:
    """Inputs of :class:`Autoscaling`."""

    config: ServiceConfig
    """Bounds (``minCount``, ``maxCount``) and targets (``cpuTargetPercent``,
    ``requestsPerTarget``)."""
    cluster_name: pulumi.Input[str]
    """The ECS cluster."""
    service_name: pulumi.Input[str]
    """The ECS service scaled."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """``app/<name>/<id>``, for the requests-per-target metric."""
    target_group_arn_suffix: pulumi.Input[str]
    """``targetgroup/<name>/<id>``."""
    moved_from: MovedFrom | None = None
    """The component these resources were first declared under (their URNs stay)."""


class Autoscaling(pulumi.ComponentResource):
    """A scalable target and two target-tracking policies; the larger wish wins."""

    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Autoscaling", name, None, opts)
        cfg = args.config
        base, child = child_options(self, name, args.moved_from)
        target = aws.appautoscaling.Target(
            f"{base}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", args.service_name),
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
            f"{base}-scale-on-cpu",
            target_tracking_scaling_policy_configuration={
                "target_value": float(cfg.cpu_target_percent),
                "predefined_metric_specification": {
                    "predefined_metric_type": "ECSServiceAverageCPUUtilization"
                },
                "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
            },
            opts=child,
            **common,
        )
        aws.appautoscaling.Policy(
            f"{base}-scale-on-requests",
            target_tracking_scaling_policy_configuration={
                "target_value": float(cfg.requests_per_target),
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": pulumi.Output.concat(
                        args.load_balancer_arn_suffix, "/", args.target_group_arn_suffix
                    ),
                },
                "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
            },
            opts=child,
            **common,
        )
        self.register_outputs({})
