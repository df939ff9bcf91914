"""S3: the audit archive and canary buckets are private, encrypted, TLS-only and expire."""

from __future__ import annotations

import json

import pytest
from infra.components.load_balancer import ALB_LOG_PREFIX
from infra.offline import ACCOUNT_ID, ELB_LOG_ACCOUNTS, OfflineRun

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
        statement, *grants = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # Anything else is a grant to one named principal, never to everyone.
        for grant in grants:
            assert grant["Effect"] == "Allow"
            assert grant["Principal"] != "*"


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


def test_load_balancer_access_logs_go_to_a_private_expiring_bucket(run: OfflineRun) -> None:
    """ALB access logs are on, into their own bucket, which only the region's ELB log
    delivery account may write to, under the load balancer's prefix, and which expires."""
    lb = one(run, "aws:lb/loadBalancer:LoadBalancer")
    logs = lb.inputs["accessLogs"]
    assert logs["enabled"] is True
    assert logs["prefix"] == ALB_LOG_PREFIX
    bucket = next(
        b for b in run.of_type("aws:s3/bucket:Bucket") if b.inputs["bucket"] == logs["bucket"]
    )
    assert "-alb-logs-" in bucket.inputs["bucket"]
    policy = next(
        p
        for p in run.of_type("aws:s3/bucketPolicy:BucketPolicy")
        if p.inputs["bucket"] == bucket.inputs["bucket"]
    )
    _, grant = json.loads(policy.inputs["policy"])["Statement"]
    assert grant["Principal"] == {"AWS": f"arn:aws:iam::{ELB_LOG_ACCOUNTS['eu-west-1']}:root"}
    assert grant["Action"] == ["s3:PutObject"]
    (resource,) = grant["Resource"]
    assert resource.endswith(f":::{bucket.inputs['bucket']}/alb/AWSLogs/{ACCOUNT_ID}/*")
    encryption = next(
        e
        for e in run.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if e.inputs["bucket"] == bucket.inputs["bucket"]
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    lifecycle = next(
        c
        for c in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if c.inputs["bucket"] == bucket.inputs["bucket"]
    )
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] > 0
