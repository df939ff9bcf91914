"""S3 buckets: KMS or SSE encryption, versioning, public access blocked, TLS only, lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import customer_managed_key, policy_document, statement, tags
from infra.config import ArchiveConfig

__all__ = ["ArchiveBucket", "ArchiveBucketArgs", "PrivateBucket", "PrivateBucketArgs"]

ARCHIVE_PREFIX = "audit/"
"""Where ``cortiware audit prune --archive-to`` writes; the task role may write nowhere else."""


@dataclass(frozen=True)
class PrivateBucketArgs:
    """Inputs of :class:`PrivateBucket`."""

    bucket_name: pulumi.Input[str]
    """Physical bucket name (globally unique: callers append the account id)."""
    label: str
    """Human name for tags, e.g. ``cortiware-prod-audit-archive``."""
    stack: str
    """Stack name, for tags."""
    kms_key_arn: pulumi.Input[str] | None
    """CMK for SSE-KMS; ``None`` uses SSE-S3 (Synthetics artifacts)."""
    versioned: bool
    """Keep object versions."""
    lifecycle_rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]
    """Lifecycle rules of the bucket."""
    allow_statements: Sequence[Callable[[pulumi.Output[str]], Mapping[str, Any]]] = ()
    """Extra policy statements, each built from the bucket ARN (S3 takes one policy per
    bucket, so grants such as ALB log delivery join the TLS-only statement)."""


class PrivateBucket(pulumi.ComponentResource):
    """A private bucket: public access blocked, owner-enforced, TLS-only."""

    def __init__(
        self, name: str, args: PrivateBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:PrivateBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket: aws.s3.Bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            tags=tags(args.stack, args.label),
            opts=child,
        )
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": (
                        {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn}
                        if args.kms_key_arn is not None
                        else {"sse_algorithm": "AES256"}
                    ),
                    "bucket_key_enabled": args.kms_key_arn is not None,
                }
            ],
            opts=child,
        )
        if args.versioned:
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=self.bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=child,
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id, rules=args.lifecycle_rules, opts=child
        )
        self.policy: aws.s3.BucketPolicy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=policy_document(
                statement(
                    ["s3:*"],
                    [self.bucket.arn, pulumi.Output.concat(self.bucket.arn, "/*")],
                    sid="DenyInsecureTransport",
                    effect="Deny",
                    condition={"Bool": {"aws:SecureTransport": "false"}},
                )
                | {"Principal": "*"},
                *(build(self.bucket.arn) for build in args.allow_statements),
            ),
            # The public-access block must exist first, or S3 may judge the policy "public".
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )
        self.register_outputs({"bucket": self.bucket.bucket})


@dataclass(frozen=True)
class ArchiveBucketArgs:
    """Inputs of :class:`ArchiveBucket`."""

    config: ArchiveConfig
    """Lifecycle choices."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account_id: pulumi.Input[str]
    """Appended to the bucket name: S3 names are global."""


class ArchiveBucket(pulumi.ComponentResource):
    """The audit archive: CMK-encrypted, versioned, to Glacier and then expired."""

    def __init__(
        self, name: str, args: ArchiveBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:ArchiveBucket", name, None, opts)
        cfg = args.config
        self.key: aws.kms.Key = customer_managed_key(
            f"{name}-key",
            description="Cortiware audit archive bucket",
            stack=args.stack,
            alias=f"{args.prefix}-audit-archive",
            parent=self,
        )
        private = PrivateBucket(
            f"{name}-private",
            PrivateBucketArgs(
                bucket_name=pulumi.Output.concat(args.prefix, "-audit-archive-", args.account_id),
                label=f"{args.prefix}-audit-archive",
                stack=args.stack,
                kms_key_arn=self.key.arn,
                versioned=True,
                lifecycle_rules=[
                    {
                        "id": "glacier-then-expire",
                        "status": "Enabled",
                        "filter": {"prefix": ARCHIVE_PREFIX},
                        "transitions": [
                            {"days": cfg.glacier_after_days, "storage_class": "GLACIER"}
                        ],
                        "expiration": {"days": cfg.expire_after_days},
                        "noncurrent_version_expiration": {"noncurrent_days": 30},
                        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                    }
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bucket = private.bucket
        self.archive_url: pulumi.Output[str] = pulumi.Output.concat(
            "s3://", self.bucket.bucket, "/", ARCHIVE_PREFIX
        )
        self.prefix_arn: pulumi.Output[str] = pulumi.Output.concat(
            self.bucket.arn, "/", ARCHIVE_PREFIX, "*"
        )
        self.register_outputs({"bucket": self.bucket.bucket, "archiveUrl": self.archive_url})
