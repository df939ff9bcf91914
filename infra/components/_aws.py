"""Small shared pieces: tags, IAM documents and the account identity (private to components)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws

__all__ = [
    "AwsAccount",
    "MovedFrom",
    "assume_role_policy",
    "child_options",
    "customer_managed_key",
    "managed_service_role",
    "policy_document",
    "statement",
    "tags",
]


@dataclass(frozen=True)
class AwsAccount:
    """The account and region ARNs are built from."""

    account_id: pulumi.Output[str]
    """The deploying account's id."""
    region: str
    """The stack's region."""

    @classmethod
    def current(cls, region: str) -> AwsAccount:
        """Look up the caller's account (an invoke the mocks answer offline)."""
        return cls(account_id=aws.get_caller_identity_output().account_id, region=region)

    def arn(self, service: str, resource: str) -> pulumi.Output[str]:
        """``arn:aws:<service>:<region>:<account>:<resource>``."""
        return pulumi.Output.concat(
            "arn:aws:", service, ":", self.region, ":", self.account_id, ":", resource
        )


@dataclass(frozen=True)
class MovedFrom:
    """The top-level component a component's children were first declared under.

    A resource's URN contains its parent's type, so moving it into another component reads
    to Pulumi as delete-and-create (a new database, a new load balancer). Children keep
    their logical names (``<name>-…``) and get an alias naming the old parent, which makes
    them the same resources; their own children inherit the alias.
    """

    type_: str
    """The old parent's type token, e.g. ``cortiware:infra:Service``."""
    name: str
    """The old parent's logical name, which also prefixed the children's names."""

    def child_options(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of a direct child of ``parent`` that used to be a child of this component."""
        return pulumi.ResourceOptions(
            parent=parent,
            aliases=[pulumi.Alias(parent=pulumi.create_urn(self.name, self.type_))],
        )


def child_options(
    parent: pulumi.Resource, name: str, moved_from: MovedFrom | None
) -> tuple[str, pulumi.ResourceOptions]:
    """The name prefix and options of ``parent``'s direct children, aliased if they moved."""
    if moved_from is None:
        return name, pulumi.ResourceOptions(parent=parent)
    return moved_from.name, moved_from.child_options(parent)


def tags(stack: str, name: str, **extra: str) -> dict[str, str]:
    """Tags set explicitly on a resource (policies cannot see provider default tags)."""
    return {"Name": name, "Project": "cortiware", "Stack": stack, **extra}


def statement(
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    *,
    sid: str | None = None,
    condition: Mapping[str, Mapping[str, Any]] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    """One IAM policy statement; ``resources`` may hold outputs."""
    result: dict[str, Any] = {
        "Effect": effect,
        "Action": list(actions),
        "Resource": list(resources),
    }
    if sid is not None:
        result["Sid"] = sid
    if condition is not None:
        result["Condition"] = condition
    return result


def policy_document(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    """A JSON IAM policy document whose outputs resolve before serialisation."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


SOURCE_ACCOUNT_DOCUMENTED: Final = {
    # Principals whose AWS documentation gives an `aws:SourceAccount` trust condition:
    "ecs-tasks.amazonaws.com": "Amazon ECS Developer Guide, 'Task IAM role' (confused deputy)",
    "scheduler.amazonaws.com": "EventBridge Scheduler User Guide, 'Set up the execution role'",
    "vpc-flow-logs.amazonaws.com": "Amazon VPC User Guide, 'IAM role for publishing flow logs'",
    "monitoring.rds.amazonaws.com": "Amazon RDS User Guide, 'Setting up and enabling Enhanced "
    "Monitoring', 'Protecting against the confused deputy problem'",
}
"""Where AWS documents the condition for a role's trust policy, and the page that says so. RDS
Proxy's role (`rds.amazonaws.com`) and AWS Backup's (`backup.amazonaws.com`) are documented
without one, so they get none: a condition the service does not send would stop it assuming
the role."""


def assume_role_policy(
    service: str, *, source_account: pulumi.Input[str] | None = None
) -> pulumi.Output[str]:
    """Trust policy letting one AWS service principal assume the role; `source_account` adds
    the confused-deputy condition (only for principals in SOURCE_ACCOUNT_DOCUMENTED)."""
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document(trust)


def managed_service_role(
    name: str,
    *,
    service: str,
    managed_policy_arn: str,
    attachment_name: str,
    account_id: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A role only `service` may assume (from this account, where AWS documents that
    condition for it), with one AWS-managed policy."""
    source = account_id if service in SOURCE_ACCOUNT_DOCUMENTED else None
    role = aws.iam.Role(
        name,
        assume_role_policy=assume_role_policy(service, source_account=source),
        tags=dict(tags),
        opts=opts,
    )
    aws.iam.RolePolicyAttachment(
        attachment_name, role=role.name, policy_arn=managed_policy_arn, opts=opts
    )
    return role


def customer_managed_key(
    name: str,
    *,
    description: str,
    stack: str,
    alias: str,
    parent: pulumi.Resource,
    policy: pulumi.Input[str] | None = None,
    moved_from: MovedFrom | None = None,
) -> aws.kms.Key:
    """A rotating customer-managed KMS key with an alias (the default key policy unless given)."""

    def options() -> pulumi.ResourceOptions:
        if moved_from is None:
            return pulumi.ResourceOptions(parent=parent)
        return moved_from.child_options(parent)

    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=tags(stack, alias),
        opts=options(),
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/{alias}",
        target_key_id=key.key_id,
        opts=options(),
    )
    return key
