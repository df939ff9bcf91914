"""The policy pack's rules as plain validators, importable without starting a policy server.

Each validator has pulumi-policy's signature ``(args, report_violation) -> None`` and reads
the resource's inputs in the engine's camelCase. ``PolicyPack`` is only constructed in this
package's ``__main__.py`` (constructing it starts a gRPC server and blocks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

__all__ = [
    "DEPRECATED_SYNTHETICS_RUNTIMES",
    "RESOURCE_POLICIES",
    "STACK_POLICIES",
    "canary_runtime_supported",
    "no_world_open_ingress",
    "prod_database_deletion_protected",
    "rds_backups_retained",
    "rds_encrypted",
    "rds_final_snapshot",
    "rds_not_public",
    "redis_auth_token",
    "redis_encrypted_at_rest",
    "redis_tls",
    "s3_public_access_block_complete",
    "s3_public_access_blocked",
    "stack_of",
    "validation_args",
]

RDS_INSTANCE = "aws:rds/instance:Instance"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
CANARY = "aws:synthetics/canary:Canary"

MIN_BACKUP_DAYS = 7
WORLD = {"0.0.0.0/0", "::/0"}
PUBLIC_PORTS = {80, 443}
PUBLIC_INGRESS_TAG = ("Exposure", "public-load-balancer")
"""Only rules carrying this tag may accept the world, and only on 80 or 443."""
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


DEPRECATED_SYNTHETICS_RUNTIMES: Mapping[str, date] = {
    "syn-python-selenium-5.1": date(2026, 2, 3),
    "syn-python-selenium-5.0": date(2026, 2, 3),
    "syn-python-selenium-4.1": date(2026, 2, 3),
    "syn-python-selenium-4.0": date(2026, 2, 3),
    "syn-nodejs-puppeteer-7.0": date(2026, 1, 22),
    "syn-nodejs-puppeteer-6.2": date(2026, 1, 22),
    "syn-nodejs-puppeteer-5.2": date(2026, 1, 22),
    "syn-python-selenium-3.0": date(2026, 1, 22),
    "syn-python-selenium-2.1": date(2026, 1, 22),
    "syn-nodejs-puppeteer-6.1": date(2024, 3, 8),
    "syn-nodejs-puppeteer-6.0": date(2024, 3, 8),
    "syn-nodejs-puppeteer-5.1": date(2024, 3, 8),
    "syn-nodejs-puppeteer-5.0": date(2024, 3, 8),
    "syn-nodejs-puppeteer-4.0": date(2024, 3, 8),
    "syn-python-selenium-2.0": date(2024, 3, 8),
    "syn-python-selenium-1.3": date(2024, 3, 8),
    "syn-nodejs-puppeteer-3.9": date(2024, 1, 8),
    "syn-nodejs-puppeteer-3.8": date(2024, 1, 8),
}
"""AWS's deprecation date of each Synthetics runtime: from that day AWS refuses to create a
canary on it. Copied from "Runtime versions support policy" (CloudWatch user guide,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Synthetics_Runtime_Support_Policy.html)
as of 2026-12-06, when syn-python-selenium-14.0 was the newest Python runtime; add a row
when AWS announces a date (it e-mails 60 days ahead)."""
OLDEST_SUPPORTED_SYNTHETICS = {"syn-python-selenium": (6, 0), "syn-nodejs-puppeteer": (8, 0)}
"""Versions below these are all deprecated (older ones than the table lists included)."""
_RUNTIME = re.compile(r"^(syn-[a-z]+-[a-z]+)-(\d+)\.(\d+)$")


def canary_runtime_supported(
    args: ResourceValidationArgs, report_violation: ReportViolation, today: date | None = None
) -> None:
    """Canaries run on a Synthetics runtime AWS has not deprecated (a dated table)."""
    if args.resource_type != CANARY:
        return
    runtime = str(args.props.get("runtimeVersion") or "")
    today = today or datetime.now(UTC).date()
    deprecated = DEPRECATED_SYNTHETICS_RUNTIMES.get(runtime)
    if deprecated is not None and deprecated <= today:
        report_violation(
            f"{args.name}: runtime {runtime} was deprecated by AWS on {deprecated.isoformat()}; "
            "AWS refuses new canaries on it",
            None,
        )
        return
    match = _RUNTIME.match(runtime)
    if match is None:
        report_violation(f"{args.name}: {runtime!r} is not a Synthetics runtime version", None)
        return
    family, major, minor = match.group(1), int(match.group(2)), int(match.group(3))
    oldest = OLDEST_SUPPORTED_SYNTHETICS.get(family)
    if oldest is not None and (major, minor) < oldest and deprecated is None:
        report_violation(
            f"{args.name}: runtime {runtime} is older than every supported {family} runtime",
            None,
        )


def stack_of(urn: str) -> str:
    """The stack name in ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    return urn.split("::", 1)[0].rsplit(":", 1)[-1]


def validation_args(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "resource",
    stack: str = "staging",
    protect: bool = False,
) -> ResourceValidationArgs:
    """The argument bag the engine would pass for one resource (used by the plan and tests)."""
    opts = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    urn = f"urn:pulumi:{stack}::cortiware::{resource_type}::{name}"
    return ResourceValidationArgs(resource_type, props, urn, name, opts, None)


def _is_replica(props: Mapping[str, Any]) -> bool:
    return bool(props.get("replicateSourceDb"))


def rds_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """RDS instances must encrypt their storage."""
    if args.resource_type == RDS_INSTANCE and args.props.get("storageEncrypted") is not True:
        report_violation(f"{args.name}: storageEncrypted must be true", None)


def rds_backups_retained(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """RDS primaries must keep automated backups (PITR) for at least 7 days."""
    if args.resource_type != RDS_INSTANCE or _is_replica(args.props):
        return
    days = args.props.get("backupRetentionPeriod") or 0
    if days < MIN_BACKUP_DAYS:
        report_violation(
            f"{args.name}: backupRetentionPeriod is {days:g}, at least {MIN_BACKUP_DAYS} required",
            None,
        )


def rds_not_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """RDS instances must not be publicly accessible."""
    if args.resource_type == RDS_INSTANCE and args.props.get("publiclyAccessible") is True:
        report_violation(f"{args.name}: publiclyAccessible must be false", None)


def rds_final_snapshot(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """RDS primaries must take a named final snapshot when deleted."""
    if args.resource_type != RDS_INSTANCE or _is_replica(args.props):
        return
    if args.props.get("skipFinalSnapshot") is True or not args.props.get("finalSnapshotIdentifier"):
        report_violation(
            f"{args.name}: skipFinalSnapshot must be false with a finalSnapshotIdentifier", None
        )


def redis_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Redis replication groups must require TLS in transit."""
    if args.resource_type == REDIS_GROUP and args.props.get("transitEncryptionEnabled") is not True:
        report_violation(f"{args.name}: transitEncryptionEnabled must be true", None)


def redis_encrypted_at_rest(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Redis replication groups must encrypt data at rest."""
    if args.resource_type == REDIS_GROUP and args.props.get("atRestEncryptionEnabled") is not True:
        report_violation(f"{args.name}: atRestEncryptionEnabled must be true", None)


def redis_auth_token(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Redis replication groups must require an AUTH token."""
    if args.resource_type == REDIS_GROUP and not args.props.get("authToken"):
        report_violation(f"{args.name}: an authToken is required", None)


def s3_public_access_block_complete(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """A bucket's public access block must set all four flags."""
    if args.resource_type != PUBLIC_ACCESS_BLOCK:
        return
    missing = [flag for flag in PUBLIC_ACCESS_FLAGS if args.props.get(flag) is not True]
    if missing:
        report_violation(f"{args.name}: {', '.join(missing)} must be true", None)


def s3_public_access_blocked(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every bucket of the stack must have a complete public access block."""
    blocked = {
        str(r.props.get("bucket"))
        for r in args.resources
        if r.resource_type == PUBLIC_ACCESS_BLOCK
        and all(r.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)
    }
    for r in args.resources:
        if r.resource_type not in (BUCKET, BUCKET_V2):
            continue
        names = {str(r.props.get("bucket")), str(r.props.get("id"))}
        if not names & blocked:
            report_violation(f"{r.name}: bucket has no complete public access block", r.urn)


def _ports(props: Mapping[str, Any]) -> tuple[int, int]:
    return int(props.get("fromPort") or 0), int(props.get("toPort") or 0)


def _world_open_violation(
    name: str, cidrs: set[str], ports: tuple[int, int], protocol: str, rule_tags: Mapping[str, Any]
) -> str | None:
    if not cidrs & WORLD:
        return None
    low, high = ports
    allowed = (
        rule_tags.get(PUBLIC_INGRESS_TAG[0]) == PUBLIC_INGRESS_TAG[1]
        and protocol == "tcp"
        and low == high
        and low in PUBLIC_PORTS
    )
    if allowed:
        return None
    return (
        f"{name}: ingress {protocol} {low}-{high} from {', '.join(sorted(cidrs & WORLD))}; only "
        "the load balancer's rules (tag Exposure=public-load-balancer) may open 80/443 to the world"
    )


def no_world_open_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No security group accepts 0.0.0.0/0 or ::/0 except the load balancer on 80 and 443."""
    props = args.props
    rule_tags: Mapping[str, Any] = props.get("tags") or {}
    candidates: list[tuple[set[str], tuple[int, int], str]] = []
    if args.resource_type == INGRESS_RULE:
        cidrs = {str(props.get("cidrIpv4") or ""), str(props.get("cidrIpv6") or "")}
        candidates.append((cidrs, _ports(props), str(props.get("ipProtocol"))))
    elif args.resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        cidrs = {*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])}
        candidates.append((cidrs, _ports(props), str(props.get("protocol"))))
    elif args.resource_type == SECURITY_GROUP:
        for rule in props.get("ingress") or []:
            cidrs = {*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])}
            candidates.append((cidrs, _ports(rule), str(rule.get("protocol"))))
    for cidrs, ports, protocol in candidates:
        # "-1" (all traffic) is never acceptable from the world, whatever the tag says.
        message = _world_open_violation(args.name, cidrs, ports, protocol, rule_tags)
        if message is not None:
            report_violation(message, None)


def prod_database_deletion_protected(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Every prod RDS instance has deletion protection and Pulumi ``protect``."""
    if args.resource_type != RDS_INSTANCE:
        return
    tags: Mapping[str, Any] = args.props.get("tags") or {}
    if stack_of(args.urn) != "prod" and tags.get("Environment") != "production":
        return
    if args.props.get("deletionProtection") is not True:
        report_violation(f"{args.name}: deletionProtection must be true in prod", None)
    # Replicas can be re-created from the primary; the primary must also be Pulumi-protected.
    if not _is_replica(args.props) and not args.opts.protect:
        report_violation(f"{args.name}: the prod primary must be created with protect=True", None)


_MANDATORY = EnforcementLevel.MANDATORY

RESOURCE_POLICIES = [
    ResourceValidationPolicy(
        "rds-storage-encrypted", "RDS storage is encrypted.", rds_encrypted, _MANDATORY
    ),
    ResourceValidationPolicy(
        "rds-backup-retention",
        "RDS keeps automated backups (point-in-time recovery) for 7 days or more.",
        rds_backups_retained,
        _MANDATORY,
    ),
    ResourceValidationPolicy(
        "rds-not-public", "RDS is not publicly accessible.", rds_not_public, _MANDATORY
    ),
    ResourceValidationPolicy(
        "rds-final-snapshot",
        "RDS takes a named final snapshot on deletion.",
        rds_final_snapshot,
        _MANDATORY,
    ),
    ResourceValidationPolicy("redis-tls", "Redis requires TLS in transit.", redis_tls, _MANDATORY),
    ResourceValidationPolicy(
        "redis-at-rest-encryption",
        "Redis encrypts data at rest.",
        redis_encrypted_at_rest,
        _MANDATORY,
    ),
    ResourceValidationPolicy(
        "redis-auth-token", "Redis requires an AUTH token.", redis_auth_token, _MANDATORY
    ),
    ResourceValidationPolicy(
        "s3-public-access-block-complete",
        "S3 public access blocks set all four flags.",
        s3_public_access_block_complete,
        _MANDATORY,
    ),
    ResourceValidationPolicy(
        "no-world-open-ingress",
        "No security group is open to the world except the load balancer on 80/443.",
        no_world_open_ingress,
        _MANDATORY,
    ),
    ResourceValidationPolicy(
        "canary-runtime-supported",
        "Synthetics canaries use a runtime AWS has not deprecated.",
        canary_runtime_supported,
        _MANDATORY,
    ),
    ResourceValidationPolicy(
        "prod-database-deletion-protected",
        "Every prod database has deletion protection and Pulumi protect.",
        prod_database_deletion_protected,
        _MANDATORY,
    ),
]
"""Per-resource rules, in the order the plan prints them."""

STACK_POLICIES = [
    StackValidationPolicy(
        "s3-public-access-blocked",
        "Every S3 bucket has a complete public access block.",
        s3_public_access_blocked,
        _MANDATORY,
    ),
]
"""Rules that need to see several resources at once."""
