"""ECS steps shared by deploy and rollback: task revisions, one-off tasks, rollouts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from ops.stack import ProcedureError

__all__ = [
    "deployment_of_image",
    "image_tag",
    "primary_task_definition",
    "register_with_image",
    "run_to_completion",
    "wait_for_rollout",
]

# describe-task-definition returns these read-only fields; register-task-definition refuses them.
_READ_ONLY: Final = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
    }
)


def image_tag(task_definition: Mapping[str, Any]) -> str:
    """The tag of the first container's image (`repo:TAG`)."""
    image = str(task_definition["containerDefinitions"][0]["image"])
    return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"


def register_with_image(ecs: Any, arn: str, image: str, version: str) -> str:
    """A new revision of `arn`'s family with every container on `image` and
    `APP_VERSION=version`; returns its ARN."""
    described = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    definition = {k: v for k, v in described["taskDefinition"].items() if k not in _READ_ONLY}
    for container in definition["containerDefinitions"]:
        container["image"] = image
        env = [e for e in container.get("environment", []) if e["name"] != "APP_VERSION"]
        container["environment"] = [*env, {"name": "APP_VERSION", "value": version}]
    if described.get("tags"):
        definition["tags"] = described["tags"]
    registered = ecs.register_task_definition(**definition)
    return str(registered["taskDefinition"]["taskDefinitionArn"])


def run_to_completion(
    ecs: Any,
    *,
    cluster: str,
    task_definition: str,
    network: Mapping[str, Any],
    started_by: str,
    delay: float = 6.0,
    max_attempts: int = 100,
) -> str:
    """Run one Fargate task, wait until it stops, and return its ARN; ProcedureError unless
    every container exited 0."""
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        launchType="FARGATE",
        networkConfiguration=network,
        startedBy=started_by,
        count=1,
    )
    if started.get("failures") or not started.get("tasks"):
        raise ProcedureError(f"run-task refused: {started.get('failures')}")
    arn = str(started["tasks"][0]["taskArn"])
    ecs.get_waiter("tasks_stopped").wait(
        cluster=cluster,
        tasks=[arn],
        WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts},
    )
    task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    if any(code != 0 for code in codes.values()):
        reason = task.get("stoppedReason") or "no reason given"
        raise ProcedureError(f"task {arn} stopped with exit codes {codes} ({reason})")
    return arn


def primary_task_definition(ecs: Any, cluster: str, service: str) -> str:
    """The task definition of the service's PRIMARY deployment."""
    described = ecs.describe_services(cluster=cluster, services=[service])
    if not described["services"]:
        raise ProcedureError(f"no service {service} in cluster {cluster}")
    for deployment in described["services"][0]["deployments"]:
        if deployment["status"] == "PRIMARY":
            return str(deployment["taskDefinition"])
    return str(described["services"][0]["taskDefinition"])


def deployment_of_image(ecs: Any, cluster: str, service: str, image: str) -> str:
    """The task definition of the service's newest deployment running `image` (PRIMARY, or
    already replaced by a circuit-breaker rollback); ProcedureError when none does."""
    described = ecs.describe_services(cluster=cluster, services=[service])
    if not described["services"]:
        raise ProcedureError(f"no service {service} in cluster {cluster}")
    deployments = sorted(
        described["services"][0]["deployments"], key=lambda d: d["createdAt"], reverse=True
    )
    for deployment in deployments:
        definition = ecs.describe_task_definition(taskDefinition=deployment["taskDefinition"])
        images = {c["image"] for c in definition["taskDefinition"]["containerDefinitions"]}
        if images == {image}:
            return str(deployment["taskDefinition"])
    running = ", ".join(d["taskDefinition"] for d in deployments)
    raise ProcedureError(f"no deployment of {image}: the service runs {running}")


def wait_for_rollout(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    task_definition: str,
    timeout: float = 1800,
    delay: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until the deployment of `task_definition` is PRIMARY with rolloutState COMPLETED.

    `aws ecs wait services-stable` is not enough: it also succeeds after the circuit breaker
    rolled back to the previous revision. Raises ProcedureError on FAILED, on a rollback (the
    PRIMARY deployment is another revision) and on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        primary = next(d for d in described["deployments"] if d["status"] == "PRIMARY")
        state = primary.get("rolloutState")
        if primary["taskDefinition"] != task_definition:
            raise ProcedureError(
                f"rolled back: PRIMARY is {primary['taskDefinition']}, not {task_definition} "
                f"({primary.get('rolloutStateReason', '')})"
            )
        if state == "COMPLETED":
            return
        if state == "FAILED":
            raise ProcedureError(f"rollout FAILED: {primary.get('rolloutStateReason', '')}")
        if time.monotonic() > deadline:
            raise ProcedureError(f"rollout still {state} after {timeout:.0f} s")
        sleep(delay)
