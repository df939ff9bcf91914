"""``python -m infra.plan --stack staging|prod``: the program under mocks, then the policy pack.

Prints every resource with its key settings, the stack outputs and each policy's result;
exits 1 on any violation. Offline: no Pulumi CLI, no AWS credentials, no network. This is
a plan of what the program declares, not a preview against real cloud state.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    StackValidationArgs,
)

from infra.config import ConfigError
from infra.offline import OfflineRun, PlannedResource, UnknownStackError, run_offline
from infra.policy.rules import RESOURCE_POLICIES, STACK_POLICIES, validation_args

__all__ = ["Violation", "check_policies", "main"]

Violation = tuple[str, str]
"""(policy name, message)."""


def _yes(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else str(value)


def _set(value: Any) -> str:
    return "set" if value else "MISSING"


def _count(value: Any) -> str:
    return str(len(value or []))


def _database_user(value: Any) -> str:
    """The user of a secret holding a PostgreSQL URL or RDS Proxy credentials; "" otherwise."""
    if isinstance(value, str) and value.startswith("postgresql://"):
        return unquote(urlsplit(value).username or "")
    if isinstance(value, str) and value.startswith("{"):
        user = json.loads(value).get("username")
        return user if isinstance(user, str) else ""
    return ""


def _database_secrets(value: Any) -> str:
    """A container's database variables and the secret each comes from, e.g.
    ``DATABASE_URL<migrate/DATABASE_URL``."""
    container = json.loads(value)[0]
    return ",".join(
        f"{s['name']}<{s['valueFrom'].split(':secret:cortiware/', 1)[-1].split('/', 1)[-1][:-7]}"
        for s in container.get("secrets", [])
        if s["name"].startswith("DATABASE_")
    )


KEY_SETTINGS: Mapping[str, Sequence[tuple[str, str, Callable[[Any], str]]]] = {
    "aws:ec2/vpc:Vpc": [("cidrBlock", "cidr", str)],
    "aws:ec2/subnet:Subnet": [("cidrBlock", "cidr", str)],
    "aws:ec2/natGateway:NatGateway": [("subnetId", "subnet", str)],
    "aws:ec2/flowLog:FlowLog": [("trafficType", "traffic", str)],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
        ("fromPort", "port", lambda v: f"{v:g}"),
        ("cidrIpv4", "from", str),
        ("referencedSecurityGroupId", "from-sg", str),
    ],
    "aws:rds/instance:Instance": [
        ("engineVersion", "pg", str),
        ("instanceClass", "class", str),
        ("multiAz", "multi-az", _yes),
        ("storageEncrypted", "encrypted", _yes),
        ("backupRetentionPeriod", "backups-days", lambda v: f"{v:g}"),
        ("deletionProtection", "deletion-protection", _yes),
        ("skipFinalSnapshot", "skip-final-snapshot", _yes),
        ("finalSnapshotIdentifier", "final-snapshot", str),
        ("maxAllocatedStorage", "max-gb", lambda v: f"{v:g}"),
        ("performanceInsightsEnabled", "pi", _yes),
        ("monitoringInterval", "monitoring-s", lambda v: f"{v:g}"),
        ("replicateSourceDb", "replica-of", str),
    ],
    "aws:rds/proxy:Proxy": [
        ("requireTls", "tls", _yes),
        ("engineFamily", "engine", str),
        ("auths", "auth-secrets", _count),
    ],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        ("nodeType", "node", str),
        ("numCacheClusters", "nodes", lambda v: f"{v:g}"),
        ("transitEncryptionEnabled", "tls", _yes),
        ("atRestEncryptionEnabled", "at-rest", _yes),
        ("authToken", "auth-token", _set),
        ("automaticFailoverEnabled", "failover", _yes),
        ("multiAzEnabled", "multi-az", _yes),
        ("snapshotRetentionLimit", "snapshot-days", lambda v: f"{v:g}"),
    ],
    "aws:secretsmanager/secret:Secret": [("name", "name", str)],
    "aws:secretsmanager/secretVersion:SecretVersion": [("secretString", "db-user", _database_user)],
    "aws:kms/key:Key": [("enableKeyRotation", "rotation", _yes)],
    "aws:s3/bucket:Bucket": [("bucket", "bucket", str)],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": [
        ("blockPublicAcls", "block-acls", _yes),
        ("restrictPublicBuckets", "restrict", _yes),
    ],
    "aws:cloudwatch/logGroup:LogGroup": [
        ("name", "name", str),
        ("retentionInDays", "retention-days", lambda v: f"{v:g}"),
        ("kmsKeyId", "cmk", _yes),
    ],
    "aws:ecs/service:Service": [
        ("desiredCount", "desired", lambda v: f"{v:g}"),
        ("launchType", "launch", str),
        ("enableExecuteCommand", "ecs-exec", _yes),
    ],
    "aws:ecs/cluster:Cluster": [
        (
            "configuration",
            "exec-log",
            lambda v: v["executeCommandConfiguration"]["logConfiguration"][
                "cloudWatchLogGroupName"
            ],
        ),
    ],
    "aws:ecs/taskDefinition:TaskDefinition": [
        ("family", "family", str),
        ("cpu", "cpu", str),
        ("memory", "memory", str),
        ("skipDestroy", "kept-revisions", _yes),
        ("containerDefinitions", "db", _database_secrets),
    ],
    "aws:lb/loadBalancer:LoadBalancer": [
        ("enableDeletionProtection", "deletion-protection", _yes),
        ("accessLogs", "access-logs", lambda v: f"{v['bucket']}/{v['prefix']}"),
    ],
    "aws:lb/listener:Listener": [
        ("port", "port", lambda v: f"{v:g}"),
        ("protocol", "protocol", str),
        ("sslPolicy", "tls-policy", str),
    ],
    "aws:lb/targetGroup:TargetGroup": [
        ("healthCheck", "health", lambda v: str((v or {}).get("path"))),
    ],
    "aws:appautoscaling/target:Target": [
        ("minCapacity", "min", lambda v: f"{v:g}"),
        ("maxCapacity", "max", lambda v: f"{v:g}"),
    ],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        ("name", "alarm", str),
        ("threshold", "threshold", lambda v: f"{v:g}"),
        ("tags", "runbook", lambda v: str((v or {}).get("Runbook"))),
    ],
    "aws:cloudwatch/dashboard:Dashboard": [("dashboardName", "dashboard", str)],
    "aws:cloudwatch/eventRule:EventRule": [("name", "rule", str)],
    "aws:rds/eventSubscription:EventSubscription": [
        ("eventCategories", "categories", lambda v: ",".join(v or [])),
    ],
    "aws:sns/topicSubscription:TopicSubscription": [
        ("protocol", "protocol", str),
        ("endpoint", "endpoint", str),
    ],
    "aws:scheduler/schedule:Schedule": [("scheduleExpression", "schedule", str)],
    "aws:synthetics/canary:Canary": [
        ("name", "name", str),
        ("runtimeVersion", "runtime", str),
        ("schedule", "schedule", lambda v: str((v or {}).get("expression"))),
    ],
    "aws:backup/plan:Plan": [
        ("rules", "copies", lambda v: _count((v or [{}])[0].get("copyActions"))),
    ],
}
"""Per resource type: (input, column label, formatter) shown in the plan table."""


def _settings(resource: PlannedResource) -> str:
    parts = []
    for key, label, render in KEY_SETTINGS.get(resource.type, ()):
        value = resource.inputs.get(key)
        rendered = "" if value is None or value == "" else render(value)
        if rendered:
            parts.append(f"{label}={rendered}")
    if resource.protect:
        parts.append("PROTECTED")
    return " ".join(parts)


def _short_type(type_token: str) -> str:
    package, module, kind = type_token.split(":")
    return f"{package}:{module.split('/')[0]}.{kind}"


def _collector(policy: str, violations: list[Violation]) -> ReportViolation:
    def report(message: str, _urn: str | None) -> None:
        violations.append((policy, message))

    return report


def check_policies(run: OfflineRun) -> tuple[dict[str, int], list[Violation]]:
    """Run every rule of the policy pack over the run's resources.

    Returns how many resources each rule saw and the violations found.
    """
    custom = [r for r in run.resources if r.custom]
    checked: dict[str, int] = {}
    violations: list[Violation] = []
    for policy in RESOURCE_POLICIES:
        checked[policy.name] = len(custom)
        for resource in custom:
            args = validation_args(
                resource.type,
                resource.inputs,
                name=resource.name,
                stack=run.stack,
                protect=resource.protect,
            )
            policy.validate(args, _collector(policy.name, violations))
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    stack_resources = [
        PolicyResource(r.type, r.inputs, r.urn, r.name, opts, None, None, [], {}) for r in custom
    ]
    for stack_policy in STACK_POLICIES:
        checked[stack_policy.name] = len(stack_resources)
        stack_policy.validate(
            StackValidationArgs(stack_resources), _collector(stack_policy.name, violations)
        )
    return checked, violations


def render(run: OfflineRun, out: TextIO) -> int:
    """Print the plan and policy results; return the process exit code."""
    custom = [r for r in run.resources if r.custom]
    print(f"Stack {run.stack}: {len(custom)} resources (offline, under Pulumi mocks)\n", file=out)
    width_type = max(len(_short_type(r.type)) for r in custom)
    width_name = max(len(r.name) for r in custom)
    print(f"{'TYPE':<{width_type}}  {'NAME':<{width_name}}  KEY SETTINGS", file=out)
    for resource in sorted(custom, key=lambda r: (r.type, r.name)):
        print(
            f"{_short_type(resource.type):<{width_type}}  {resource.name:<{width_name}}  "
            f"{_settings(resource)}".rstrip(),
            file=out,
        )
    print("\nResource counts:", file=out)
    for type_token, count in sorted(Counter(r.type for r in custom).items()):
        print(f"  {count:>3}  {_short_type(type_token)}", file=out)
    print("\nOutputs:", file=out)
    for key, value in run.outputs.items():
        shown = ", ".join(sorted(value)) if isinstance(value, Mapping) else value
        print(f"  {key}: {shown}", file=out)

    checked, violations = check_policies(run)
    print("\nPolicies:", file=out)
    failed = {name for name, _ in violations}
    for name, count in checked.items():
        print(f"  {'FAIL' if name in failed else 'pass'}  {name} ({count} resources)", file=out)
    for name, message in violations:
        print(f"    {name}: {message}", file=out)
    verdict = f"{len(violations)} violation(s)" if violations else "no violations"
    print(f"\n{verdict}", file=out)
    return 1 if violations else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m infra.plan``."""
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name: staging or prod")
    options = parser.parse_args(argv)
    try:
        run = run_offline(options.stack)
    except (UnknownStackError, ConfigError) as error:
        print(f"infra.plan: {error}", file=sys.stderr)
        return 2
    return render(run, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
