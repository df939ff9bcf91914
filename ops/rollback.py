"""`make rollback STACK=… [TO=TAG]`: back to the previous release, fast path first.

1. the service's current task definition; the newest kept (ACTIVE) revision of its family
   before it, or the newest one running `TO` (the program keeps old revisions with
   `skip_destroy`; ECS refuses an INACTIVE one)
2. `update-service` to it and wait for rolloutState COMPLETED (minutes, no Pulumi)
3. `cortiware smoke --expect-version <its tag>`
4. make the stack agree: `pulumi config set service.imageTag <tag>` and `pulumi up`, or the
   next `up` redeploys the bad tag (`--skip-reconcile` leaves that to the operator)

`--via-pulumi` skips steps 1-2: config and `pulumi up` only, then the same wait and smoke.
The schema is not rolled back: migrations are backwards compatible with the previous release.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.ecs import deployment_of_image, image_tag, primary_task_definition, wait_for_rollout
from ops.stack import Clients, Outputs, ProcedureError, Runner, run_command

__all__ = ["Rollback", "main"]


@dataclass
class Rollback:
    """The procedure for one stack; `run()` performs it."""

    outputs: Outputs
    clients: Clients
    to_tag: str | None = None
    via_pulumi: bool = False
    reconcile: bool = True
    run_command: Runner = run_command
    say: Callable[[str], None] = print
    rollout_timeout: float = 1800
    poll_delay: float = 15
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> str:
        """Every step; returns the tag now serving. ProcedureError names a failed step."""
        ecs = self.clients.ecs
        cluster, service = self.outputs.cluster_name, self.outputs.service_name
        if self.via_pulumi:
            if self.to_tag is None:
                raise ProcedureError("--via-pulumi needs the tag to return to (--to)")
            tag = self.to_tag
            self.pulumi_to(tag)
            image = f"{self.outputs.ecr_repository_url}:{tag}"
            arn = deployment_of_image(ecs, cluster, service, image)
        else:
            target = self.target_revision(primary_task_definition(ecs, cluster, service))
            tag, arn = image_tag(target), str(target["taskDefinitionArn"])
            ecs.update_service(cluster=cluster, service=service, taskDefinition=arn)
            self.say(f"service pointed at {arn}")
        wait_for_rollout(
            ecs,
            cluster=cluster,
            service=service,
            task_definition=arn,
            timeout=self.rollout_timeout,
            delay=self.poll_delay,
            sleep=self.sleep,
        )
        self.run_command(
            ["cortiware", "smoke", "--base-url", self.outputs.url, "--expect-version", tag]
        )
        if not self.via_pulumi:
            if self.reconcile:
                self.pulumi_to(tag)
            else:
                self.say(
                    f"now: pulumi config set --path service.imageTag {tag} "
                    f"-s {self.outputs.stack} && pulumi up -s {self.outputs.stack}"
                )
        self.say(f"rolled back {self.outputs.stack} to {tag}")
        return tag

    def target_revision(self, current: str) -> dict[str, Any]:
        """The kept revision to return to; ProcedureError when there is none."""
        ecs = self.clients.ecs
        described = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
        family, revision = described["family"], int(described["revision"])
        pages = ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE", sort="DESC"
        )
        for page in pages:
            for arn in page["taskDefinitionArns"]:
                if int(arn.rsplit(":", 1)[1]) >= revision:
                    continue
                candidate: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)[
                    "taskDefinition"
                ]
                if candidate.get("family") != family or candidate.get("status") != "ACTIVE":
                    continue  # a family whose name merely starts with ours
                if self.to_tag is None or image_tag(candidate) == self.to_tag:
                    return candidate
        wanted = f"running {self.to_tag}" if self.to_tag else "before the current one"
        raise ProcedureError(
            f"no kept (ACTIVE) revision of {family} {wanted}: roll back through the stack "
            "with --via-pulumi --to TAG"
        )

    def pulumi_to(self, tag: str) -> None:
        """Point the stack at `tag` and `pulumi up`."""
        stack = self.outputs.stack
        self.run_command(
            ["pulumi", "config", "set", "--path", "service.imageTag", tag, "-s", stack]
        )
        self.run_command(["pulumi", "up", "--yes", "-s", stack, "--policy-pack", "infra/policy"])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ops.rollback --stack S [--to TAG]`; one line on failure, exit 1."""
    parser = argparse.ArgumentParser(prog="python -m ops.rollback", description="Roll back.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--to", dest="to_tag", help="the tag to return to (default: previous)")
    parser.add_argument("--via-pulumi", action="store_true", help="config + pulumi up only")
    parser.add_argument("--skip-reconcile", action="store_true", help="no pulumi afterwards")
    parser.add_argument("--outputs", type=Path, help="stack outputs JSON instead of pulumi's")
    parser.add_argument("--region", help="default: the AWS CLI's")
    parser.add_argument("--endpoint-url", help="an AWS API endpoint (moto's server in drills)")
    args = parser.parse_args(argv)
    if args.via_pulumi and not args.to_tag:
        parser.error("--via-pulumi needs --to TAG")
    try:
        Rollback(
            outputs=Outputs.load(args.stack, run_command, args.outputs),
            clients=Clients.create(args.region, args.endpoint_url),
            to_tag=args.to_tag,
            via_pulumi=args.via_pulumi,
            reconcile=not args.skip_reconcile,
        ).run()
    except (ProcedureError, BotoCoreError, ClientError) as exc:
        print(f"rollback: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
