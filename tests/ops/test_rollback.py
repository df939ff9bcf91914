"""The rollback procedure drilled against moto's server after a real drill deploy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from ops.deploy import Deploy
from ops.rollback import Rollback
from ops.stack import ProcedureError

from tests.ops.conftest import NEW, RELEASED, DrillStack, StandIn
from tests.support.servers import cortiware_serve


@pytest.fixture(scope="module")
def served_released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `cortiware serve` reporting the previous release, RELEASED."""
    with cortiware_serve(tmp_path_factory.mktemp("old"), {"APP_VERSION": RELEASED}) as base:
        yield base


QUIET: dict[str, Any] = {"poll_delay": 0, "sleep": lambda _: None, "say": lambda _: None}


def deployed(stack: DrillStack) -> StandIn:
    """Deploy NEW onto the drill stack (which ran RELEASED); the runner used."""
    runner = StandIn(stack)
    Deploy(outputs=stack.outputs, tag=NEW, clients=stack.clients, run_command=runner, **QUIET).run()
    return runner


def serving(stack: DrillStack) -> tuple[str, set[str]]:
    """The service's task definition and its images."""
    ecs = stack.clients.ecs
    arn = ecs.describe_services(
        cluster=stack.outputs.cluster_name, services=[stack.outputs.service_name]
    )["services"][0]["taskDefinition"]
    containers = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "containerDefinitions"
    ]
    return arn, {c["image"] for c in containers}


def test_fast_path_returns_to_the_kept_previous_revision(
    drill_stack: DrillStack, served_released: str
) -> None:
    """After a deploy, rollback points ECS at the previous kept revision, smokes the old
    tag, then makes the stack agree through config and `pulumi up`."""
    runner = deployed(drill_stack)
    runner.calls.clear()
    stack = dataclasses.replace(drill_stack, outputs=drill_stack.outputs)
    outputs = dataclasses.replace(drill_stack.outputs, url=served_released)
    tag = Rollback(outputs=outputs, clients=stack.clients, run_command=runner, **QUIET).run()
    assert tag == RELEASED
    assert [c.split()[:2] for c in runner.calls] == [
        ["cortiware", "smoke"],
        ["pulumi", "config"],
        ["pulumi", "up"],
    ]
    assert runner.config["service.imageTag"] == RELEASED
    assert serving(drill_stack)[1] == {f"{outputs.ecr_repository_url}:{RELEASED}"}


def test_a_deregistered_previous_revision_is_refused_by_name(drill_stack: DrillStack) -> None:
    """Without kept revisions (Pulumi deregistering them) the fast path stops with a
    message naming the pulumi path, before touching the service."""
    deployed(drill_stack)
    ecs = drill_stack.clients.ecs
    family = drill_stack.family
    for arn in ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]:
        if arn != serving(drill_stack)[0]:
            ecs.deregister_task_definition(taskDefinition=arn)
    before = serving(drill_stack)
    with pytest.raises(ProcedureError, match=r"no kept \(ACTIVE\) revision.*--via-pulumi"):
        Rollback(
            outputs=drill_stack.outputs,
            clients=drill_stack.clients,
            run_command=StandIn(drill_stack),
            **QUIET,
        ).run()
    assert serving(drill_stack) == before


def test_via_pulumi_rolls_through_the_stack(drill_stack: DrillStack, served_released: str) -> None:
    """`--via-pulumi --to TAG` sets the config, runs `pulumi up`, waits and smokes TAG."""
    runner = deployed(drill_stack)
    runner.calls.clear()
    outputs = dataclasses.replace(drill_stack.outputs, url=served_released)
    Rollback(
        outputs=outputs,
        clients=drill_stack.clients,
        run_command=runner,
        to_tag=RELEASED,
        via_pulumi=True,
        **QUIET,
    ).run()
    assert [c.split()[:2] for c in runner.calls] == [
        ["pulumi", "config"],
        ["pulumi", "up"],
        ["cortiware", "smoke"],
    ]
    assert serving(drill_stack)[1] == {f"{outputs.ecr_repository_url}:{RELEASED}"}
