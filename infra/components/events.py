"""Operational events that alarms watch: EventBridge rules for a failed audit-prune task and a
failed AWS Backup job (each kept in a log group for diagnosis), and the RDS event subscription.

A rule's ``MatchedEvents`` metric is what the ``prune-task-failed`` and ``backup-job-failed``
alarms count, so they carry a runbook and recover to OK like every other alarm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import tags
from infra.components.logs import log_group_prefix

__all__ = [
    "BACKUP_FAILED_STATES",
    "RDS_EVENT_CATEGORIES",
    "OperationalEvents",
    "OperationalEventsArgs",
]

BACKUP_FAILED_STATES = ("FAILED", "ABORTED", "EXPIRED")
RDS_EVENT_CATEGORIES = (
    "availability",
    "failover",
    "failure",
    "low storage",
    "maintenance",
    "notification",
    "recovery",
)
"""RDS instance events sent to the paging topic (not backup or configuration chatter)."""


@dataclass(frozen=True)
class OperationalEventsArgs:
    """Inputs of :class:`OperationalEvents`."""

    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    log_retention_days: int
    """Retention of the matched-events log group."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the stack's log groups."""
    cluster_arn: pulumi.Input[str]
    """The ECS cluster the prune task runs on."""
    prune_task_family_arn: pulumi.Input[str]
    """The prune task definition's ARN without revision (every revision matches)."""
    backup_vault: aws.backup.Vault
    """The database's backup vault (its backup jobs, and copies out of it)."""
    db_instance_identifiers: Sequence[pulumi.Input[str]]
    """Primary and replica, whose RDS events go to the topic."""
    topic_arn: pulumi.Input[str]
    """The paging topic."""


class OperationalEvents(pulumi.ComponentResource):
    """Failure rules for scheduled work and AWS Backup, plus RDS event notifications."""

    def __init__(
        self, name: str, args: OperationalEventsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:OperationalEvents", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group: aws.cloudwatch.LogGroup = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{log_group_prefix(args.prefix)}/events",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(args.stack, f"{args.prefix}-events"),
            opts=child,
        )
        aws.cloudwatch.LogResourcePolicy(
            f"{name}-logs-policy",
            policy_name=f"{args.prefix}-events-to-logs",
            policy_document=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgeWritesMatchedEvents",
                            "Effect": "Allow",
                            "Principal": {
                                "Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
                            },
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": pulumi.Output.concat(self.log_group.arn, ":*"),
                        }
                    ],
                }
            ),
            opts=child,
        )
        self.prune_failed: aws.cloudwatch.EventRule = self._rule(
            name,
            args,
            "prune-failed",
            "The audit-prune task stopped with a non-zero exit code or failed to start",
            {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {
                    "clusterArn": [args.cluster_arn],
                    "lastStatus": ["STOPPED"],
                    "taskDefinitionArn": [
                        {"prefix": pulumi.Output.concat(args.prune_task_family_arn, ":")}
                    ],
                    "$or": [
                        {"containers": {"exitCode": [{"anything-but": 0}]}},
                        {"stopCode": ["TaskFailedToStart"]},
                    ],
                },
            },
        )
        self.backup_failed: aws.cloudwatch.EventRule = self._rule(
            name,
            args,
            "backup-failed",
            "An AWS Backup or copy job of the database failed, aborted or expired",
            {
                "source": ["aws.backup"],
                "detail-type": ["Backup Job State Change", "Copy Job State Change"],
                "detail": {
                    "state": list(BACKUP_FAILED_STATES),
                    "$or": [
                        {"backupVaultName": [args.backup_vault.name]},
                        {"sourceBackupVaultArn": [args.backup_vault.arn]},
                    ],
                },
            },
        )
        aws.rds.EventSubscription(
            f"{name}-rds",
            name=f"{args.prefix}-rds-events",
            sns_topic=args.topic_arn,
            source_type="db-instance",
            source_ids=list(args.db_instance_identifiers),
            event_categories=list(RDS_EVENT_CATEGORIES),
            tags=tags(args.stack, f"{args.prefix}-rds-events"),
            opts=child,
        )
        self.register_outputs({})

    def _rule(
        self,
        name: str,
        args: OperationalEventsArgs,
        short: str,
        description: str,
        pattern: dict[str, Any],
    ) -> aws.cloudwatch.EventRule:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{short}",
            name=f"{args.prefix}-{short}",
            description=description,
            event_pattern=pulumi.Output.from_input(pattern).apply(json.dumps),
            tags=tags(args.stack, f"{args.prefix}-{short}"),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{short}-to-logs",
            rule=rule.name,
            arn=self.log_group.arn,
            opts=child,
        )
        return rule
