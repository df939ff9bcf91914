"""`make deploy STACK=… TAG=…`: one release, in the order that keeps a failure harmless.

1. build the image for linux/amd64 (the tasks are X86_64) and push `REPO:TAG`; confirm ECR has it
2. snapshot the database (`<db>-predeploy-<tag>-<time>`) and wait until it is available
3. register a migration revision on the new image and run `cortiware migrate` with it;
   stop unless it exits 0 (the old release still serves: nothing to roll back)
4. `pulumi config set service.imageTag TAG` and `pulumi up`: ECS rolls the service
5. wait for that deployment's rolloutState COMPLETED; a circuit-breaker rollback fails here
6. `cortiware smoke --base-url URL --expect-version TAG`

Steps 1 and 4 need Docker and the Pulumi CLI and go through the command runner; the rest are
boto3 calls. `--skip-build` deploys a tag already pushed (a retry, or prod after staging).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ops.ecs import (
    deployment_of_image,
    register_with_image,
    run_to_completion,
    wait_for_rollout,
)
from ops.stack import Clients, Outputs, ProcedureError, Runner, run_command

__all__ = ["Deploy", "main"]

PLATFORM = "linux/amd64"


@dataclass
class Deploy:
    """The procedure for one stack and tag; `run()` performs every step in order."""

    outputs: Outputs
    tag: str
    clients: Clients
    run_command: Runner = run_command
    build: bool = True
    smoke_args: Sequence[str] = ()
    """Extra `cortiware smoke` arguments, e.g. `--username` (password from SMOKE_PASSWORD)."""
    say: Callable[[str], None] = print
    rollout_timeout: float = 1800
    poll_delay: float = 15
    sleep: Callable[[float], None] = time.sleep
    snapshot_id: str | None = field(default=None, init=False)

    @property
    def image(self) -> str:
        """`REPO:TAG`."""
        return f"{self.outputs.ecr_repository_url}:{self.tag}"

    def run(self) -> None:
        """Every step; ProcedureError names the one that failed."""
        self.push_image()
        self.snapshot_database()
        self.migrate()
        self.roll_service()
        self.smoke()
        self.say(f"deployed {self.tag} to {self.outputs.stack}")

    def push_image(self) -> None:
        """Build for linux/amd64 and push, unless skipped; then ECR must list the tag."""
        if self.build:
            registry = self.outputs.ecr_repository_url.split("/", 1)[0]
            password = self.run_command(["aws", "ecr", "get-login-password"])
            self.run_command(
                ["docker", "login", "--username", "AWS", "--password-stdin", registry],
                stdin=password,
            )
            self.run_command(["docker", "build", "--platform", PLATFORM, "-t", self.image, "."])
            self.run_command(["docker", "push", self.image])
        repository = self.outputs.ecr_repository_url.split("/", 1)[1]
        try:
            self.clients.ecr.describe_images(
                repositoryName=repository, imageIds=[{"imageTag": self.tag}]
            )
        except self.clients.ecr.exceptions.ImageNotFoundException as exc:
            raise ProcedureError(f"{self.image} is not in ECR: build and push it first") from exc
        self.say(f"image {self.image} is in ECR")

    def snapshot_database(self) -> None:
        """A manual snapshot before any migration (backup first), waited for."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        safe_tag = "".join(c if c.isalnum() else "-" for c in self.tag).strip("-")
        self.snapshot_id = f"{self.outputs.database_identifier}-predeploy-{safe_tag}-{stamp}"[:255]
        self.clients.rds.create_db_snapshot(
            DBSnapshotIdentifier=self.snapshot_id,
            DBInstanceIdentifier=self.outputs.database_identifier,
            Tags=[{"Key": "Purpose", "Value": f"before deploying {self.tag}"}],
        )
        self.clients.rds.get_waiter("db_snapshot_available").wait(
            DBSnapshotIdentifier=self.snapshot_id,
            WaiterConfig={"Delay": self.poll_delay, "MaxAttempts": 240},
        )
        self.say(f"snapshot {self.snapshot_id} available")

    def migrate(self) -> None:
        """`cortiware migrate` from the new image, as a one-off task that must exit 0."""
        revision = register_with_image(
            self.clients.ecs, self.outputs.migration_task_definition_arn, self.image, self.tag
        )
        task = run_to_completion(
            self.clients.ecs,
            cluster=self.outputs.cluster_name,
            task_definition=revision,
            network=self.outputs.migration_network_configuration,
            started_by=f"deploy-{self.tag}"[:36],
            delay=min(self.poll_delay, 6),
        )
        self.say(f"migrations applied by {task}")

    def roll_service(self) -> None:
        """Point the stack at the tag, `pulumi up`, and wait for the rollout to complete."""
        stack = self.outputs.stack
        self.run_command(
            ["pulumi", "config", "set", "--path", "service.imageTag", self.tag, "-s", stack]
        )
        self.run_command(["pulumi", "up", "--yes", "-s", stack, "--policy-pack", "infra/policy"])
        ecs = self.clients.ecs
        cluster, service = self.outputs.cluster_name, self.outputs.service_name
        task_definition = deployment_of_image(ecs, cluster, service, self.image)
        wait_for_rollout(
            ecs,
            cluster=cluster,
            service=service,
            task_definition=task_definition,
            timeout=self.rollout_timeout,
            delay=self.poll_delay,
            sleep=self.sleep,
        )
        self.say(f"rollout of {task_definition} COMPLETED")

    def smoke(self) -> None:
        """`cortiware smoke` against the stack's URL, expecting this tag."""
        self.run_command(
            [
                "cortiware",
                "smoke",
                "--base-url",
                self.outputs.url,
                "--expect-version",
                self.tag,
                *self.smoke_args,
            ]
        )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ops.deploy --stack S --tag T`; one line on failure, exit 1."""
    parser = argparse.ArgumentParser(prog="python -m ops.deploy", description="Deploy a tag.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--tag", required=True, help="new, immutable image tag")
    parser.add_argument("--skip-build", action="store_true", help="the tag is already in ECR")
    parser.add_argument("--outputs", type=Path, help="stack outputs JSON instead of pulumi's")
    parser.add_argument("--region", help="default: the AWS CLI's")
    parser.add_argument("--endpoint-url", help="an AWS API endpoint (moto's server in drills)")
    parser.add_argument("--smoke-username", help="also log in (password from SMOKE_PASSWORD)")
    args = parser.parse_args(argv)
    try:
        outputs = Outputs.load(args.stack, run_command, args.outputs)
        Deploy(
            outputs=outputs,
            tag=args.tag,
            clients=Clients.create(args.region, args.endpoint_url),
            build=not args.skip_build,
            smoke_args=("--username", args.smoke_username) if args.smoke_username else (),
        ).run()
    except (ProcedureError, BotoCoreError, ClientError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
