"""CloudWatch Synthetics canaries on the four endpoints the requirements name, every 5
minutes, each with a success-percent alarm.

One script holds the four checks; each canary runs it with ``CHECK`` naming its check.
They share an artifact bucket and a least-privilege role; every alarm points at
``runbooks/canary-success.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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
from infra.config import CanaryConfig

__all__ = ["CANARY_SCRIPT", "CHECKS", "Canary", "CanaryArgs"]

SCHEDULE = "rate(5 minutes)"
RUNS_PREFIX = "runs/"
"""Key prefix of the run artifacts (screenshots, logs, reports); the code lives under ``code/``."""
VERIFY_PATH = "/api/onboarding/verify"

CHECKS: Mapping[str, str] = {
    "health": HEALTH_PATH,
    "verify": VERIFY_PATH,
    "provider": "/provider",
    "owner": "/owner",
}
"""Check name (also the canary's name suffix) → the endpoint it calls."""

CANARY_SCRIPT = f'''\
"""Synthetics canary: one check per endpoint, chosen by the CHECK environment variable.

- health: GET {HEALTH_PATH} answers 200 with status healthy or degraded (degraded: Redis is
  down and the service serves from memory, which is still serving).
- verify: GET {VERIFY_PATH} without a token is refused with 400 problem+json.
- provider, owner: GET /provider or /owner without a session redirects to /login?next=...,
  and that login page renders (200, HTML, a password field).

A failure raises with one line saying what the service answered, which is what the run's
log shows on-call.
"""
import json
import os
import urllib.error
import urllib.request

from aws_synthetics.common import synthetics_logger as logger

TIMEOUT = 10
HEADERS = {{"User-Agent": "cortiware-canary"}}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _base():
    return os.environ["BASE_URL"].rstrip("/")


def _get(path, *, follow=True):
    """(status, headers, body) of GET base+path; HTTP errors are answers, not exceptions."""
    url = _base() + path
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=HEADERS), timeout=TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RuntimeError(f"{{url}} unreachable: {{reason}}") from None


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
    url = _base() + "{HEALTH_PATH}"
    code, _, body = _get("{HEALTH_PATH}")
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        status = None
    if code != 200 or status not in ("healthy", "degraded"):
        raise RuntimeError(f"{{url}} answered {{code}} with {{_describe(body)}}")
    logger.info("health ok: %s", status)
    return status


def check_verify():
    url = _base() + "{VERIFY_PATH}"
    code, headers, body = _get("{VERIFY_PATH}")
    content_type = headers.get("Content-Type", "")
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if (
        code != 400
        or not content_type.startswith("application/problem+json")
        or not isinstance(problem, dict)
        or problem.get("status") != 400
    ):
        raise RuntimeError(
            f"{{url}} without a token answered {{code}} {{content_type!r}}, not 400 problem+json"
        )
    logger.info("verify ok: refused a missing token with %s", problem.get("title"))
    return "refused"


def check_login_redirect(path):
    url = _base() + path
    code, headers, _ = _get(path, follow=False)
    location = headers.get("Location", "")
    expected = f"/login?next={{path}}"
    if code not in (302, 303, 307) or not location.endswith(expected):
        raise RuntimeError(
            f"{{url}} answered {{code}} to {{location!r}}, not a redirect to {{expected}}"
        )
    login_code, login_headers, page = _get(expected)
    if (
        login_code != 200
        or not login_headers.get("Content-Type", "").startswith("text/html")
        or b'name="password"' not in page
    ):
        raise RuntimeError(
            f"{{url}} led to {{expected}}, which answered {{login_code}} without a login form"
        )
    logger.info("%s ok: redirects to the login page", path)
    return "login"


CHECKS = {{
    "health": check_health,
    "verify": check_verify,
    "provider": lambda: check_login_redirect("/provider"),
    "owner": lambda: check_login_redirect("/owner"),
}}


def handler(event, context):
    return CHECKS[os.environ.get("CHECK", "health")]()
'''
"""The canaries' code; Synthetics Python runtimes load ``python/<module>.py``."""
SCRIPT_MODULE = "endpoint_checks"


@dataclass(frozen=True)
class CanaryArgs:
    """Inputs of :class:`Canary`."""

    config: CanaryConfig
    """Runtime version and artifact retention."""
    name_prefix: str
    """Canary names are ``<name_prefix>-<check>`` (lowercase, at most 21 characters)."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account and region, for ARNs."""
    base_url: pulumi.Input[str]
    """The public origin the canaries call."""
    topic_arn: pulumi.Input[str]
    """The alarm topic."""


class Canary(pulumi.ComponentResource):
    """One canary and success-percent alarm per check, sharing a bucket and a role."""

    def __init__(
        self, name: str, args: CanaryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Canary", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        names = {check: f"{args.name_prefix}-{check}" for check in CHECKS}
        for canary_name in names.values():
            if len(canary_name) > 21 or canary_name != canary_name.lower():
                raise ValueError(f"canary name {canary_name!r} must be lowercase, at most 21 chars")
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
                        "expiration": {"days": cfg.artifact_retention_days},
                    }
                ],
            ),
            opts=child,
        ).bucket
        digest = hashlib.sha256(CANARY_SCRIPT.encode()).hexdigest()[:16]
        code = aws.s3.BucketObjectv2(
            f"{name}-code",
            bucket=self.bucket.id,
            # The key changes with the script, so an edited script redeploys the canaries.
            key=f"code/{SCRIPT_MODULE}-{digest}.zip",
            source=pulumi.AssetArchive(
                {f"python/{SCRIPT_MODULE}.py": pulumi.StringAsset(CANARY_SCRIPT)}
            ),
            opts=child,
        )
        self.role: aws.iam.Role = self._role(name, args, list(names.values()))
        self.canaries: dict[str, aws.synthetics.Canary] = {}
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for check, path in CHECKS.items():
            # The health canary came first: its resources keep their names.
            label = name if check == "health" else f"{name}-{check}"
            canary = aws.synthetics.Canary(
                f"{label}-canary",
                name=names[check],
                runtime_version=cfg.runtime_version,
                handler=f"{SCRIPT_MODULE}.handler",
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
                    "environment_variables": {"BASE_URL": args.base_url, "CHECK": check},
                },
                start_canary=True,
                success_retention_period=cfg.artifact_retention_days,
                failure_retention_period=cfg.artifact_retention_days,
                tags=tags(args.stack, names[check]),
                opts=child,
            )
            self.canaries[check] = canary
            self.alarms[check] = metric_alarm(
                f"{label}-success",
                AlarmSpec(
                    "canary-success" if check == "health" else f"canary-{check}-success",
                    f"The {path} canary succeeded in less than 90% of runs.",
                    Metric(
                        "CloudWatchSynthetics",
                        "SuccessPercent",
                        "Average",
                        {"CanaryName": canary.name},
                    ),
                    "<",
                    90,
                    periods=2,
                    datapoints=2,
                    # A canary that stops reporting is as bad as one that fails.
                    missing="breaching",
                    shared_runbook="canary-success",
                ),
                prefix=args.prefix,
                stack=args.stack,
                topic_arn=args.topic_arn,
                parent=self,
            )
        self.canary: aws.synthetics.Canary = self.canaries["health"]
        self.register_outputs({"canaryNames": [c.name for c in self.canaries.values()]})

    def _role(self, name: str, args: CanaryArgs, canary_names: list[str]) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            # No aws:SourceAccount: neither the Lambda nor the Synthetics documentation gives
            # that condition for an execution role's trust policy (see SOURCE_ACCOUNT_DOCUMENTED).
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
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
                    [
                        args.account.arn("logs", f"log-group:/aws/lambda/cwsyn-{canary}-*")
                        for canary in canary_names
                    ],
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
