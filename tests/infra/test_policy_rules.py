"""Each policy-pack rule passes a compliant resource and reports a violating one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pytest
from infra.offline import OfflineRun
from infra.plan import check_policies
from infra.policy import rules
from infra.policy.rules import validation_args
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

pytestmark = pytest.mark.infra

Validator = Callable[[ResourceValidationArgs, ReportViolation], None]

RDS = rules.RDS_INSTANCE
REDIS = rules.REDIS_GROUP
SG_RULE = rules.INGRESS_RULE
GOOD_RDS = {
    "storageEncrypted": True,
    "backupRetentionPeriod": 7.0,
    "publiclyAccessible": False,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "cortiware-prod-db-final-0a1b2c3d",
    "deletionProtection": True,
    "tags": {"Environment": "production"},
}
GOOD_REDIS = {
    "transitEncryptionEnabled": True,
    "atRestEncryptionEnabled": True,
    "authToken": "t" * 32,
}
LB_TAG = {"Exposure": "public-load-balancer"}


def _violations(
    validator: Validator,
    resource_type: str,
    props: Mapping[str, Any],
    *,
    stack: str = "staging",
    protect: bool = False,
) -> list[str]:
    found: list[str] = []
    args = validation_args(resource_type, props, name="subject", stack=stack, protect=protect)
    validator(args, lambda message, _urn: found.append(message))
    return found


CASES: list[tuple[Validator, str, dict[str, Any], dict[str, Any]]] = [
    (rules.rds_encrypted, RDS, GOOD_RDS, {**GOOD_RDS, "storageEncrypted": False}),
    (rules.rds_backups_retained, RDS, GOOD_RDS, {**GOOD_RDS, "backupRetentionPeriod": 1.0}),
    (rules.rds_not_public, RDS, GOOD_RDS, {**GOOD_RDS, "publiclyAccessible": True}),
    (rules.rds_final_snapshot, RDS, GOOD_RDS, {**GOOD_RDS, "skipFinalSnapshot": True}),
    (rules.redis_tls, REDIS, GOOD_REDIS, {**GOOD_REDIS, "transitEncryptionEnabled": False}),
    (
        rules.redis_encrypted_at_rest,
        REDIS,
        GOOD_REDIS,
        {**GOOD_REDIS, "atRestEncryptionEnabled": False},
    ),
    (
        rules.redis_auth_token,
        REDIS,
        GOOD_REDIS,
        {k: v for k, v in GOOD_REDIS.items() if k != "authToken"},
    ),
    (
        rules.s3_public_access_block_complete,
        rules.PUBLIC_ACCESS_BLOCK,
        dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True),
        {**dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True), "restrictPublicBuckets": False},
    ),
    (
        rules.no_world_open_ingress,
        SG_RULE,
        {
            "cidrIpv4": "0.0.0.0/0",
            "fromPort": 443.0,
            "toPort": 443.0,
            "ipProtocol": "tcp",
            "tags": LB_TAG,
        },
        {
            "cidrIpv4": "0.0.0.0/0",
            "fromPort": 22.0,
            "toPort": 22.0,
            "ipProtocol": "tcp",
            "tags": LB_TAG,
        },
    ),
]


@pytest.mark.parametrize(
    ("validator", "resource_type", "good", "bad"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
def test_rule_passes_compliant_and_reports_violating(
    validator: Validator, resource_type: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    """The rule is silent on the compliant resource and reports exactly the violating one."""
    assert _violations(validator, resource_type, good) == []
    assert len(_violations(validator, resource_type, bad)) == 1


def test_rules_ignore_other_resource_types() -> None:
    """An RDS rule does not judge a bucket, even one with RDS-looking properties."""
    assert _violations(rules.rds_encrypted, rules.BUCKET, {"storageEncrypted": False}) == []


def test_replicas_are_exempt_from_backup_and_final_snapshot_rules() -> None:
    """A read replica needs neither its own backups nor a final snapshot (AWS refuses one)."""
    replica = {
        **GOOD_RDS,
        "replicateSourceDb": "primary",
        "backupRetentionPeriod": 0.0,
        "skipFinalSnapshot": True,
    }
    assert _violations(rules.rds_backups_retained, RDS, replica) == []
    assert _violations(rules.rds_final_snapshot, RDS, replica) == []


@pytest.mark.parametrize(
    "props",
    [
        {"cidrIpv4": "0.0.0.0/0", "fromPort": 443.0, "toPort": 443.0, "ipProtocol": "tcp"},
        {
            "cidrIpv6": "::/0",
            "fromPort": 0.0,
            "toPort": 65535.0,
            "ipProtocol": "tcp",
            "tags": LB_TAG,
        },
        {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1", "tags": LB_TAG},
    ],
    ids=["untagged-443", "ipv6-all-ports", "all-traffic"],
)
def test_world_open_ingress_variants_are_reported(props: dict[str, Any]) -> None:
    """World-open ingress is reported without the LB tag, on other ports, or for all protocols."""
    assert len(_violations(rules.no_world_open_ingress, SG_RULE, props)) == 1


def test_inline_security_group_rules_are_checked() -> None:
    """Inline ingress blocks and legacy SecurityGroupRule resources are judged the same way."""
    inline = {
        "ingress": [
            {"cidrBlocks": ["0.0.0.0/0"], "fromPort": 5432.0, "toPort": 5432.0, "protocol": "tcp"}
        ]
    }
    assert len(_violations(rules.no_world_open_ingress, rules.SECURITY_GROUP, inline)) == 1
    legacy = {
        "type": "ingress",
        "cidrBlocks": ["10.0.0.0/8"],
        "fromPort": 22.0,
        "toPort": 22.0,
        "protocol": "tcp",
    }
    assert _violations(rules.no_world_open_ingress, rules.SECURITY_GROUP_RULE, legacy) == []


def test_prod_database_needs_deletion_protection_and_protect() -> None:
    """A prod primary without deletion protection or Pulumi protect is reported; staging is not."""
    assert (
        _violations(
            rules.prod_database_deletion_protected, RDS, GOOD_RDS, stack="prod", protect=True
        )
        == []
    )
    unprotected = {**GOOD_RDS, "deletionProtection": False}
    assert (
        len(
            _violations(
                rules.prod_database_deletion_protected, RDS, unprotected, stack="prod", protect=True
            )
        )
        == 1
    )
    assert (
        len(_violations(rules.prod_database_deletion_protected, RDS, GOOD_RDS, stack="prod")) == 1
    )
    staging = {**unprotected, "tags": {"Environment": "staging"}}
    assert _violations(rules.prod_database_deletion_protected, RDS, staging, stack="staging") == []


def _stack_resource(resource_type: str, props: Mapping[str, Any], name: str) -> PolicyResource:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    urn = f"urn:pulumi:staging::cortiware::{resource_type}::{name}"
    return PolicyResource(resource_type, props, urn, name, opts, None, None, [], {})


def test_every_bucket_needs_a_public_access_block() -> None:
    """The stack rule passes when each bucket has a complete block and reports the one without."""
    complete = dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)
    resources = [
        _stack_resource(rules.BUCKET, {"bucket": "covered"}, "covered"),
        _stack_resource(
            rules.PUBLIC_ACCESS_BLOCK, {"bucket": "covered", **complete}, "covered-pab"
        ),
    ]
    found: list[str] = []
    rules.s3_public_access_blocked(StackValidationArgs(resources), lambda m, _u: found.append(m))
    assert found == []
    resources.append(_stack_resource(rules.BUCKET, {"bucket": "naked"}, "naked"))
    rules.s3_public_access_blocked(StackValidationArgs(resources), lambda m, _u: found.append(m))
    assert found == ["naked: bucket has no complete public access block"]


def test_pack_lists_every_rule_as_mandatory() -> None:
    """The pack's policies are all mandatory and cover every rule of the issue."""
    from pulumi_policy import EnforcementLevel

    policies = [*rules.RESOURCE_POLICIES, *rules.STACK_POLICIES]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies)
    assert {p.name for p in policies} >= {
        "rds-storage-encrypted",
        "rds-backup-retention",
        "rds-not-public",
        "rds-final-snapshot",
        "redis-tls",
        "redis-at-rest-encryption",
        "redis-auth-token",
        "s3-public-access-blocked",
        "no-world-open-ingress",
        "prod-database-deletion-protected",
    }


def _runtime_violations(runtime: str, today: date) -> list[str]:
    found: list[str] = []
    rules.canary_runtime_supported(
        validation_args(rules.CANARY, {"runtimeVersion": runtime}, name="canary"),
        lambda message, _urn: found.append(message),
        today,
    )
    return found


def test_canary_on_a_deprecated_runtime_is_refused() -> None:
    """syn-python-selenium-5.1, deprecated on 2026-02-03, is a violation from that day on."""
    (message,) = _runtime_violations("syn-python-selenium-5.1", date(2026, 2, 3))
    assert "deprecated by AWS on 2026-02-03" in message
    assert _runtime_violations("syn-python-selenium-5.1", date(2026, 2, 2)) == []


def test_canary_on_a_current_runtime_passes() -> None:
    """The runtime the stacks use is not deprecated today."""
    assert _runtime_violations("syn-python-selenium-14.0", date.today()) == []
    assert _runtime_violations("syn-nodejs-puppeteer-9.1", date.today()) == []


@pytest.mark.parametrize("runtime", ["syn-python-selenium-1.0", "syn-1.0", "python3.12", ""])
def test_canary_on_an_ancient_or_unknown_runtime_is_refused(runtime: str) -> None:
    """Runtimes older than every supported one, or not runtime names at all, are refused."""
    assert len(_runtime_violations(runtime, date.today())) == 1


def test_stacks_canaries_use_a_supported_runtime(run: OfflineRun) -> None:
    """Both stacks' canaries pass the runtime rule, and the plan fails once one is put on a
    deprecated runtime."""
    _, violations = check_policies(run)
    assert [v for v in violations if v[0] == "canary-runtime-supported"] == []
    broken = dataclasses.replace(
        run,
        resources=tuple(
            dataclasses.replace(r, inputs={**r.inputs, "runtimeVersion": "syn-python-selenium-5.1"})
            if r.type == rules.CANARY
            else r
            for r in run.resources
        ),
    )
    _, violations = check_policies(broken)
    runtime_violations = [v for v in violations if v[0] == "canary-runtime-supported"]
    assert len(runtime_violations) == len(run.of_type(rules.CANARY)) == 4
