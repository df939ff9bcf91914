"""Scheduled jobs: EventBridge Scheduler runs the audit prune task on the cluster daily."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import (
    AwsAccount,
    MovedFrom,
    assume_role_policy,
    child_options,
    policy_document,
    statement,
    tags,
)

__all__ = ["PRUNE_SCHEDULE", "ScheduledJobs", "ScheduledJobsArgs"]

PRUNE_SCHEDULE = "cron(30 3 * * ? *)"
"""Daily at 03:30 UTC, within a 30-minute flexible window."""


@dataclass(frozen=True)
class ScheduledJobsArgs:
    """Inputs of :class:`ScheduledJobs`."""

    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account, for the scheduler role's trust condition."""
    cluster_arn: pulumi.Input[str]
    """The ECS cluster the jobs run on."""
    prune_task_definition_arn: pulumi.Input[str]
    """``cortiware audit prune --archive-to …``."""
    task_role_arns: Sequence[pulumi.Input[str]]
    """Execution and task roles of the job's task definition (passed to ECS)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the job runs in."""
    security_group_id: pulumi.Input[str]
    """The service's security group (reaches the database and Redis)."""
    moved_from: MovedFrom | None = None
    """The component these resources were first declared under (their URNs stay)."""


class ScheduledJobs(pulumi.ComponentResource):
    """The scheduler role (may run only the prune task) and the daily schedule."""

    def __init__(
        self, name: str, args: ScheduledJobsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:ScheduledJobs", name, None, opts)
        base, child = child_options(self, name, args.moved_from)
        role = aws.iam.Role(
            f"{base}-scheduler-role",
            assume_role_policy=assume_role_policy(
                "scheduler.amazonaws.com", source_account=args.account.account_id
            ),
            tags=tags(args.stack, f"{args.prefix}-scheduler"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{base}-scheduler-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    ["ecs:RunTask"],
                    [args.prune_task_definition_arn],
                    sid="RunPruneTaskOnOwnCluster",
                    condition={"ArnEquals": {"ecs:cluster": args.cluster_arn}},
                ),
                statement(
                    ["iam:PassRole"],
                    list(args.task_role_arns),
                    sid="PassTaskRoles",
                    condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                ),
            ),
            opts=child,
        )
        self.prune_schedule: aws.scheduler.Schedule = aws.scheduler.Schedule(
            f"{base}-audit-prune",
            name=f"{args.prefix}-audit-prune",
            description="Daily: cortiware audit prune --archive-to s3://<archive>/audit/",
            schedule_expression=PRUNE_SCHEDULE,
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "FLEXIBLE", "maximum_window_in_minutes": 30},
            target={
                "arn": args.cluster_arn,
                "role_arn": role.arn,
                "ecs_parameters": {
                    "task_definition_arn": args.prune_task_definition_arn,
                    "launch_type": "FARGATE",
                    "task_count": 1,
                    "network_configuration": {
                        "subnets": list(args.subnet_ids),
                        "security_groups": [args.security_group_id],
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
        self.register_outputs({"pruneSchedule": self.prune_schedule.name})
