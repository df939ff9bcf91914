"""Secret age: a daily Lambda measures how long ago each of the stack's Secrets Manager
secrets last changed and publishes the oldest age in days as a metric, which the
``secret-age`` alarm compares with ``alerts.secretMaxAgeDays`` (90 by default): the
quarterly rotation reminder, linked to ``runbooks/secret-age.md``.

AWS has no built-in age metric for secrets (AWS Config's periodic-rotation rule needs a
configuration recorder and only covers managed rotation), hence this small function.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, assume_role_policy, policy_document, statement, tags
from infra.components.alarms import EMF_NAMESPACE, Metric
from infra.components.logs import log_group_prefix

__all__ = ["SECRET_AGE_METRIC", "SECRET_AGE_SCRIPT", "SecretAge", "SecretAgeArgs"]

SECRET_AGE_METRIC = "secrets.max_age_days"  # noqa: S105 - a metric name
SCHEDULE = "cron(0 6 * * ? *)"
"""Daily at 06:00 UTC."""

SECRET_AGE_SCRIPT = '''\
"""Publish the age in days of the oldest secret named <SECRET_PREFIX>* as a CloudWatch metric."""
import datetime
import os

import boto3


def secret_ages(secrets, now):
    """Name -> whole days since the secret last changed (created, if never changed)."""
    ages = {}
    for page in secrets.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [os.environ["SECRET_PREFIX"]]}]
    ):
        for secret in page["SecretList"]:
            changed = secret.get("LastChangedDate") or secret["CreatedDate"]
            ages[secret["Name"]] = (now - changed).days
    return ages


def publish(cloudwatch, ages):
    oldest = max(ages.values(), default=0)
    cloudwatch.put_metric_data(
        Namespace=os.environ["METRIC_NAMESPACE"],
        MetricData=[
            {
                "MetricName": os.environ["METRIC_NAME"],
                "Dimensions": [{"Name": "Environment", "Value": os.environ["ENVIRONMENT"]}],
                "Value": oldest,
                "Unit": "Count",
            }
        ],
    )
    return oldest


def handler(event, context, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ages = secret_ages(boto3.client("secretsmanager"), now)
    for name, days in sorted(ages.items(), key=lambda item: -item[1]):
        print(f"{name}: {days} days")
    return publish(boto3.client("cloudwatch"), ages)
'''  # noqa: S105 - the function's source, not a password
"""The function's code (``secret_age.py``, Python 3.12 runtime)."""


@dataclass(frozen=True)
class SecretAgeArgs:
    """Inputs of :class:`SecretAge`."""

    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name: the secrets measured are ``cortiware/<stack>/*``."""
    account: AwsAccount
    """Account and region, for ARNs."""
    metrics_environment: str
    """``Environment`` dimension of the metric (the service's ``APP_ENV``)."""
    log_retention_days: int
    """Retention of the function's log group."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the stack's log groups."""


class SecretAge(pulumi.ComponentResource):
    """The measuring function, its role, log group and daily schedule."""

    def __init__(
        self, name: str, args: SecretAgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:SecretAge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret_prefix = f"cortiware/{args.stack}/"
        self.metric = Metric(
            EMF_NAMESPACE,
            SECRET_AGE_METRIC,
            "Maximum",
            {"Environment": args.metrics_environment},
            period=86400,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{log_group_prefix(args.prefix)}/secret-age",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(args.stack, f"{args.prefix}-secret-age"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            tags=tags(args.stack, f"{args.prefix}-secret-age"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    # ListSecrets has no resource-level permissions: AWS accepts only "*"; it
                    # returns names and dates, never values.
                    ["secretsmanager:ListSecrets"],
                    ["*"],
                    sid="ListSecretsRequiresWildcard",
                ),
                statement(
                    # PutMetricData has no resource-level permissions: AWS accepts only "*";
                    # the namespace condition is what scopes it.
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    sid="PutOwnMetricsOnly",
                    condition={"StringEquals": {"cloudwatch:namespace": EMF_NAMESPACE}},
                ),
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(log_group.arn, ":*")],
                    sid="WriteOwnLogGroup",
                ),
            ),
            opts=child,
        )
        digest = hashlib.sha256(SECRET_AGE_SCRIPT.encode()).hexdigest()[:16]
        self.function: aws.lambda_.Function = aws.lambda_.Function(
            f"{name}-function",
            name=f"{args.prefix}-secret-age",
            description=f"Daily: age of the oldest {secret_prefix}* secret ({digest})",
            runtime="python3.12",
            handler="secret_age.handler",
            code=pulumi.AssetArchive({"secret_age.py": pulumi.StringAsset(SECRET_AGE_SCRIPT)}),
            role=role.arn,
            timeout=60,
            memory_size=128,
            environment={
                "variables": {
                    "SECRET_PREFIX": secret_prefix,
                    "METRIC_NAMESPACE": EMF_NAMESPACE,
                    "METRIC_NAME": SECRET_AGE_METRIC,
                    "ENVIRONMENT": args.metrics_environment,
                }
            },
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags(args.stack, f"{args.prefix}-secret-age"),
            opts=child,
        )
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=assume_role_policy(
                "scheduler.amazonaws.com", source_account=args.account.account_id
            ),
            tags=tags(args.stack, f"{args.prefix}-secret-age-scheduler"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=scheduler_role.id,
            policy=policy_document(
                statement(
                    ["lambda:InvokeFunction"], [self.function.arn], sid="InvokeSecretAgeOnly"
                ),
            ),
            opts=child,
        )
        aws.scheduler.Schedule(
            f"{name}-schedule",
            name=f"{args.prefix}-secret-age",
            description="Daily: publish the age of the oldest secret",
            schedule_expression=SCHEDULE,
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "OFF"},
            target={"arn": self.function.arn, "role_arn": scheduler_role.arn},
            opts=child,
        )
        self.register_outputs({"functionName": self.function.name})
