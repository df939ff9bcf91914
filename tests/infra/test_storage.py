"""S3: the audit archive and canary buckets are private, encrypted, TLS-only and expire."""

from __future__ import annotations

import json

import pytest
from infra.offline import OfflineRun

from tests.infra.conftest import one

pytestmark = pytest.mark.infra


def test_every_bucket_blocks_public_access(run: OfflineRun) -> None:
    """Each bucket has a public access block with all four flags and owner-enforced objects."""
    buckets = {b.inputs["bucket"] for b in run.of_type("aws:s3/bucket:Bucket")}
    blocks = run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert {b.inputs["bucket"] for b in blocks} == buckets
    for block in blocks:
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.inputs[flag] is True
    ownership = run.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert {o.inputs["rule"]["objectOwnership"] for o in ownership} == {"BucketOwnerEnforced"}


def test_every_bucket_denies_plain_http(run: OfflineRun) -> None:
    """Each bucket policy denies any request without TLS."""
    policies = run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    assert len(policies) == len(run.of_type("aws:s3/bucket:Bucket"))
    for policy in policies:
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_archive_is_kms_encrypted_versioned_and_tiered(run: OfflineRun) -> None:
    """The audit archive uses its CMK, keeps versions, moves to Glacier, then expires."""
    encryption = run.named("archive-private-encryption").inputs["rules"][0]
    default = encryption["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"].startswith("arn:aws:kms:")
    versioning = one(run, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    rule = run.named("archive-private-lifecycle").inputs["rules"][0]
    glacier, expire = (30, 365) if run.stack == "staging" else (90, 2555)
    assert rule["transitions"] == [{"days": glacier, "storageClass": "GLACIER"}]
    assert rule["expiration"]["days"] == expire
    assert rule["filter"]["prefix"] == "audit/"
