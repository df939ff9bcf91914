"""The customer-managed KMS key every CloudWatch log group of the stack is encrypted with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, customer_managed_key, policy_document

__all__ = ["LogsKey", "LogsKeyArgs", "log_group_prefix"]


def log_group_prefix(prefix: str) -> str:
    """Where every log group of the stack lives: ``cortiware-prod`` → ``/cortiware/prod``."""
    return "/" + prefix.replace("-", "/")


@dataclass(frozen=True)
class LogsKeyArgs:
    """Inputs of :class:`LogsKey`."""

    prefix: str
    """Physical name prefix, e.g. ``cortiware-prod``."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account and region: the key policy names both."""
    rds_log_groups: Sequence[str] = ()
    """Log groups outside the stack's path that the key may also encrypt, by exact name:
    the RDS log exports, whose path AWS fixes (``/aws/rds/instance/<identifier>/<log>``)."""


class LogsKey(pulumi.ComponentResource):
    """A rotating CMK that CloudWatch Logs may use only for this stack's log groups.

    The writers (ECS, VPC flow logs, ElastiCache) need no KMS permission: CloudWatch Logs
    encrypts on their behalf, and the key policy lets it do so only for log groups under
    ``log_group_prefix(prefix)`` and for the RDS log-export groups named in the args (the
    encryption context names the log group's ARN).
    """

    def __init__(
        self, name: str, args: LogsKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:LogsKey", name, None, opts)
        account = args.account
        self.key: aws.kms.Key = customer_managed_key(
            f"{name}-key",
            description=f"CloudWatch log groups of {args.prefix}",
            stack=args.stack,
            alias=f"{args.prefix}-logs",
            parent=self,
            policy=policy_document(
                {
                    "Sid": "AccountAdministersTheKey",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": pulumi.Output.concat("arn:aws:iam::", account.account_id, ":root")
                    },
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsForThisStackOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{account.region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": [
                                account.arn("logs", f"log-group:{group}")
                                for group in (
                                    f"{log_group_prefix(args.prefix)}/*",
                                    *args.rds_log_groups,
                                )
                            ]
                        }
                    },
                },
            ),
        )
        self.register_outputs({"keyArn": self.key.arn})
