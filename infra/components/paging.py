"""Where alarms go: the CMK-encrypted SNS topic, its e-mail subscribers and an optional HTTPS
paging endpoint (PagerDuty- or Opsgenie-style), which the AWS services that notify may use.

``runbooks/paging.md`` proves delivery end to end with ``aws cloudwatch set-alarm-state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import (
    AwsAccount,
    MovedFrom,
    child_options,
    customer_managed_key,
    policy_document,
    tags,
)
from infra.config import AlertsConfig

__all__ = ["PUBLISHERS", "Paging", "PagingArgs"]

PUBLISHERS = (
    "cloudwatch.amazonaws.com",
    "events.rds.amazonaws.com",
    "elasticache.amazonaws.com",
)
"""Service principals that publish to the topic: alarms, RDS events, ElastiCache events."""


@dataclass(frozen=True)
class PagingArgs:
    """Inputs of :class:`Paging`."""

    config: AlertsConfig
    """E-mail recipients and the paging URL."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account, for the key and topic policies."""
    moved_from: MovedFrom | None = None
    """The component these resources were first declared under (their URNs stay)."""


class Paging(pulumi.ComponentResource):
    """The alarm topic and its subscribers."""

    def __init__(
        self, name: str, args: PagingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Paging", name, None, opts)
        cfg = args.config
        base, child = child_options(self, name, args.moved_from)
        own_account = {"StringEquals": {"aws:SourceAccount": args.account.account_id}}
        key = customer_managed_key(
            f"{base}-topic-key",
            description="Cortiware alarm topic",
            stack=args.stack,
            alias=f"{args.prefix}-alarms",
            parent=self,
            moved_from=args.moved_from,
            # Every publisher must be able to encrypt what it sends to the topic.
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
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": own_account,
                },
            ),
        )
        self.topic: aws.sns.Topic = aws.sns.Topic(
            f"{base}-topic",
            name=f"{args.prefix}-alarms",
            kms_master_key_id=key.arn,
            tags=tags(args.stack, f"{args.prefix}-alarms"),
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=policy_document(
                {
                    "Sid": "AccountManages",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": pulumi.Output.concat(
                            "arn:aws:iam::", args.account.account_id, ":root"
                        )
                    },
                    "Action": [
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:Subscribe",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Publish",
                    ],
                    "Resource": self.topic.arn,
                },
                {
                    "Sid": "ServicesPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": self.topic.arn,
                    "Condition": own_account,
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for i, email in enumerate(cfg.emails):
            aws.sns.TopicSubscription(
                f"{base}-email-{i}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child_options(self, name, args.moved_from)[1],
            )
        if cfg.pager_url is not None:
            aws.sns.TopicSubscription(
                f"{name}-pager",
                topic=self.topic.arn,
                protocol="https",
                endpoint=cfg.pager_url,
                # PagerDuty's and Opsgenie's CloudWatch integrations confirm the subscription
                # themselves and read the SNS envelope (the alarm's JSON in `Message`).
                endpoint_auto_confirms=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"topicArn": self.topic.arn})
