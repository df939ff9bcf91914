"""The stack's ECR repository: immutable tags, scanned on push, the newest 50 images kept.

The image is built from the repository's ``Dockerfile`` and pushed here by the operator
(``docs/infra.md``); the service runs the tag in ``service.imageTag``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import MovedFrom, child_options, tags

__all__ = ["KEPT_IMAGES", "ImageRegistry", "ImageRegistryArgs"]

KEPT_IMAGES = 50
"""Images kept (rollback targets); older ones expire."""


@dataclass(frozen=True)
class ImageRegistryArgs:
    """Inputs of :class:`ImageRegistry`."""

    prefix: str
    """Physical name prefix; also the repository's name."""
    stack: str
    """Stack name, for tags."""
    moved_from: MovedFrom | None = None
    """The component these resources were first declared under (their URNs stay)."""


class ImageRegistry(pulumi.ComponentResource):
    """One ECR repository with its lifecycle policy."""

    def __init__(
        self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:ImageRegistry", name, None, opts)
        base, child = child_options(self, name, args.moved_from)
        self.repository: aws.ecr.Repository = aws.ecr.Repository(
            f"{base}-repository",
            name=args.prefix,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            tags=tags(args.stack, args.prefix),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{base}-repository-lifecycle",
            repository=self.repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": (
                                f"Keep the newest {KEPT_IMAGES} images (rollback targets)"
                            ),
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEPT_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        self.register_outputs({"repositoryUrl": self.repository.repository_url})
