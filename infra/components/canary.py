"""A CloudWatch Synthetics canary calling ``GET /api/health`` every 5 minutes, and its alarm.

It has its own artifact bucket and a least-privilege role; the alarm on its success percent
points at ``runbooks/canary-success.md`` like every other alarm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import (
    AwsAccount,
    assume_role_policy,
    policy_document,
    statement,
    tags,
)
from infra.components.alarms import AlarmSpec, Metric, metric_alarm
from infra.components.load_balancer import HEALTH_PATH
from infra.components.storage import PrivateBucket, PrivateBucketArgs

__all__ = ["CANARY_SCRIPT", "Canary", "CanaryArgs"]

SCHEDULE = "rate(5 minutes)"
RUNS_PREFIX = "runs/"
"""Key prefix of the run artifacts (screenshots, logs, reports); the code lives under ``code/``."""

CANARY_SCRIPT = f'''\
"""Synthetics canary: GET {HEALTH_PATH} must answer 200 with status healthy or degraded.

A failure raises with one line saying what the service answered (status code, health
status and the checks that are not ok), which is what the run's log shows on-call.
"""
import json
import os
import urllib.error
import urllib.request

from aws_synthetics.common import synthetics_logger as logger


def _describe(body):
    try:
        health = json.loads(body)
    except ValueError:
        return "a body that is not JSON"
    if not isinstance(health, dict):
        return "a body that is not a JSON object"
    checks = health.get("checks") or {{}}
    failing = sorted(f"{{name}}={{state}}" for name, state in checks.items() if state != "ok")
    described = f"status {{health.get('status')!r}}"
    return described + (f", checks {{', '.join(failing)}}" if failing else "")


def check_health():
    url = os.environ["BASE_URL"].rstrip("/") + "{HEALTH_PATH}"
    request = urllib.request.Request(url, headers={{"User-Agent": "cortiware-canary"}})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        described = _describe(error.read())
        raise RuntimeError(f"{{url}} answered {{error.code}} with {{described}}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RuntimeError(f"{{url}} unreachable: {{reason}}") from None
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        status = None
    if code != 200 or status not in ("healthy", "degraded"):
        raise RuntimeError(f"{{url}} answered {{code}} with {{_describe(body)}}")
    logger.info("health ok: %s", status)
    return status


def handler(event, context):
    return check_health()
'''
"""The canary's code; Synthetics Python runtimes load ``python/<module>.py``."""


@dataclass(frozen=True)
class CanaryArgs:
    """Inputs of :class:`Canary`."""

    name: str
    """Canary name (lowercase, at most 21 characters)."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account and region, for ARNs."""
    base_url: pulumi.Input[str]
    """The public origin the canary calls."""
    runtime_version: str
    """Synthetics runtime."""
    artifact_retention_days: int
    """Expiry of artifacts in the bucket."""
    topic_arn: pulumi.Input[str]
    """The alarm topic."""


class Canary(pulumi.ComponentResource):
    """Health canary with its bucket, role and success-percent alarm."""

    def __init__(
        self, name: str, args: CanaryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Canary", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if len(args.name) > 21 or args.name != args.name.lower():
            raise ValueError(f"canary name {args.name!r} must be lowercase, at most 21 chars")
        self.bucket: aws.s3.Bucket = PrivateBucket(
            f"{name}-artifacts",
            PrivateBucketArgs(
                bucket_name=pulumi.Output.concat(
                    args.prefix, "-canary-artifacts-", args.account.account_id
                ),
                label=f"{args.prefix}-canary-artifacts",
                stack=args.stack,
                kms_key_arn=None,
                versioned=False,
                lifecycle_rules=[
                    {
                        # Run artifacts only: the canary's code object must never expire,
                        # or the next deployment or restart cannot load the script.
                        "id": "expire-run-artifacts",
                        "status": "Enabled",
                        "filter": {"prefix": RUNS_PREFIX},
                        "expiration": {"days": args.artifact_retention_days},
                    }
                ],
            ),
            opts=child,
        ).bucket
        digest = hashlib.sha256(CANARY_SCRIPT.encode()).hexdigest()[:16]
        code = aws.s3.BucketObjectv2(
            f"{name}-code",
            bucket=self.bucket.id,
            # The key changes with the script, so an edited script redeploys the canary.
            key=f"code/health-check-{digest}.zip",
            source=pulumi.AssetArchive(
                {"python/health_check.py": pulumi.StringAsset(CANARY_SCRIPT)}
            ),
            opts=child,
        )
        self.role: aws.iam.Role = self._role(name, args)
        self.canary: aws.synthetics.Canary = aws.synthetics.Canary(
            f"{name}-canary",
            name=args.name,
            runtime_version=args.runtime_version,
            handler="health_check.handler",
            execution_role_arn=self.role.arn,
            artifact_s3_location=pulumi.Output.concat(
                "s3://", self.bucket.bucket, "/", RUNS_PREFIX
            ),
            artifact_config={"s3_encryption": {"encryption_mode": "SSE_S3"}},
            s3_bucket=code.bucket,
            s3_key=code.key,
            schedule={"expression": SCHEDULE},
            run_config={
                "timeout_in_seconds": 60,
                "environment_variables": {"BASE_URL": args.base_url},
            },
            start_canary=True,
            success_retention_period=args.artifact_retention_days,
            failure_retention_period=args.artifact_retention_days,
            tags=tags(args.stack, args.name),
            opts=child,
        )
        self.alarm: aws.cloudwatch.MetricAlarm = metric_alarm(
            f"{name}-success",
            AlarmSpec(
                "canary-success",
                f"The {HEALTH_PATH} canary succeeded in less than 90% of runs.",
                Metric(
                    "CloudWatchSynthetics",
                    "SuccessPercent",
                    "Average",
                    {"CanaryName": self.canary.name},
                ),
                "<",
                90,
                periods=2,
                datapoints=2,
                # A canary that stops reporting is as bad as one that fails.
                missing="breaching",
            ),
            prefix=args.prefix,
            stack=args.stack,
            topic_arn=args.topic_arn,
            parent=self,
        )
        self.register_outputs({"canaryName": self.canary.name})

    def _role(self, name: str, args: CanaryArgs) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(
                "lambda.amazonaws.com", source_account=args.account.account_id
            ),
            tags=tags(args.stack, f"{args.prefix}-canary"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    ["s3:PutObject", "s3:GetObject"],
                    [pulumi.Output.concat(self.bucket.arn, "/", RUNS_PREFIX, "*")],
                    sid="WriteOwnArtifacts",
                ),
                statement(["s3:GetBucketLocation"], [self.bucket.arn], sid="LocateOwnBucket"),
                statement(
                    # The Synthetics runtime lists buckets at start-up; ListAllMyBuckets has
                    # no resource-level permissions, so AWS accepts only "*".
                    ["s3:ListAllMyBuckets"],
                    ["*"],
                    sid="SyntheticsRuntimeListsBuckets",
                ),
                statement(
                    ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    [args.account.arn("logs", f"log-group:/aws/lambda/cwsyn-{args.name}-*")],
                    sid="WriteOwnLambdaLogs",
                ),
                statement(
                    # PutMetricData has no resource-level permissions: AWS accepts only "*";
                    # the namespace condition scopes it to Synthetics' own metrics.
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    sid="PutSyntheticsMetricsOnly",
                    condition={"StringEquals": {"cloudwatch:namespace": "CloudWatchSynthetics"}},
                ),
            ),
            opts=child,
        )
        return role
