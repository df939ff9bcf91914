"""IAM: every inline policy names specific ARNs; "*" only where AWS accepts nothing else."""

from __future__ import annotations

import json

import pytest
from infra.components._aws import SOURCE_ACCOUNT_DOCUMENTED
from infra.components.service import METRICS_NAMESPACE
from infra.offline import OfflineRun

from tests.infra.conftest import container, policy_statements

pytestmark = pytest.mark.infra

WILDCARD_ALLOWED = {
    "EcrLoginRequiresWildcard": ["ecr:GetAuthorizationToken"],
    "PutOwnMetricsOnly": ["cloudwatch:PutMetricData"],
    "PutSyntheticsMetricsOnly": ["cloudwatch:PutMetricData"],
    "SyntheticsRuntimeListsBuckets": ["s3:ListAllMyBuckets"],
    "ListSecretsRequiresWildcard": ["secretsmanager:ListSecrets"],
    "EcsExecChannelRequiresWildcard": [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    ],
    "EcsExecFindsLogGroupRequiresWildcard": ["logs:DescribeLogGroups"],
}
"""Statements allowed a "*" resource, with the only actions they may carry."""


def _statements(run: OfflineRun, policy_name: str) -> dict[str, dict[str, object]]:
    return {s["Sid"]: s for s in policy_statements(run.named(policy_name))}


def test_no_wildcard_resources_except_documented_ones(run: OfflineRun) -> None:
    """A "*" resource appears only in statements AWS requires it for, with their single action."""
    for role_policy in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_statements(role_policy):
            resources = statement["Resource"]
            assert all(isinstance(r, str) and r for r in resources), role_policy.name
            if any(r == "*" for r in resources):
                assert WILDCARD_ALLOWED.get(statement.get("Sid", "")) == statement["Action"]
            assert not any(a.endswith(":*") or a == "*" for a in statement["Action"])


def test_wildcard_metric_permissions_are_namespace_bound(run: OfflineRun) -> None:
    """PutMetricData statements are limited by a cloudwatch:namespace condition."""
    task = _statements(run, "service-task-policy")["PutOwnMetricsOnly"]
    assert task["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}
    canary = _statements(run, "canary-policy")["PutSyntheticsMetricsOnly"]
    assert canary["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CloudWatchSynthetics"}}


def test_execution_role_reads_only_its_own_secrets(run: OfflineRun) -> None:
    """The execution role reads exactly the secrets its tasks inject, each once, and decrypts
    only via SM."""
    statements = _statements(run, "service-execution-policy")
    read = statements["ReadOwnSecrets"]
    assert read["Action"] == ["secretsmanager:GetSecretValue"]
    injected = {
        s["valueFrom"]
        for family in ("web", "migrate", "audit-prune")
        for s in container(run, family)["secrets"]
    }
    assert sorted(read["Resource"]) == sorted(injected)
    assert set(run.outputs["secretArns"].values()) <= injected
    decrypt = statements["DecryptOwnSecrets"]
    assert decrypt["Resource"] == [run.named("secrets-key").inputs and decrypt["Resource"][0]]
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")
    pull = statements["PullOwnRepository"]
    assert pull["Resource"] == [
        f"arn:aws:ecr:eu-west-1:123456789012:repository/cortiware-{run.stack}"
    ]


def test_task_role_writes_only_the_archive_prefix(run: OfflineRun) -> None:
    """The task role may put objects only under <archive bucket>/audit/ and nothing else in S3."""
    statements = _statements(run, "service-task-policy")
    bucket = run.outputs["archiveBucket"]
    write = statements["WriteAuditArchivePrefix"]
    assert write["Resource"] == [f"arn:aws:s3:::{bucket}/audit/*"]
    assert set(write["Action"]) == {"s3:PutObject", "s3:AbortMultipartUpload"}
    s3_actions = [a for s in statements.values() for a in s["Action"] if a.startswith("s3:")]
    assert set(s3_actions) == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert "secretsmanager:GetSecretValue" not in json.dumps(statements)


def test_scheduler_may_run_only_the_prune_task(run: OfflineRun) -> None:
    """The scheduler role runs only the prune task on its own cluster and passes only its roles."""
    statements = _statements(run, "service-scheduler-policy")
    run_task = statements["RunPruneTaskOnOwnCluster"]
    assert run_task["Resource"] == [
        f"arn:aws:ecs:eu-west-1:123456789012:task-definition/cortiware-{run.stack}-audit-prune:1"
    ]
    assert run_task["Condition"]["ArnEquals"]["ecs:cluster"].endswith(
        f"cluster/cortiware-{run.stack}"
    )
    assert statements["PassTaskRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_roles_trust_one_service_from_this_account(run: OfflineRun) -> None:
    """Every role is assumable by a single AWS service, guarded by aws:SourceAccount exactly
    where AWS documents that condition for the principal (no condition elsewhere)."""
    for role in run.of_type("aws:iam/role:Role"):
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert len(trust) == 1
        assert set(trust[0]["Principal"]) == {"Service"}
        service = trust[0]["Principal"]["Service"]
        if service in SOURCE_ACCOUNT_DOCUMENTED:
            assert trust[0]["Condition"] == {
                "StringEquals": {"aws:SourceAccount": "123456789012"}
            }, service
        else:
            assert "Condition" not in trust[0], service
