"""What the operator procedures rely on in the program: kept task revisions, ECS Exec with
logged sessions, the readiness health check and the deployed tag as APP_VERSION."""

from __future__ import annotations

import re

import pytest
from infra.offline import REPO_ROOT, OfflineRun

from cortiware.app import create_app
from cortiware.settings import Settings
from tests.infra.conftest import container, one

pytestmark = pytest.mark.infra

FAMILIES = ("web", "migrate", "audit-prune")


def test_task_definitions_are_kept_when_replaced(run: OfflineRun) -> None:
    """Every task definition keeps its revisions registered (the fast rollback needs them)."""
    definitions = run.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert {d.inputs["family"].removeprefix(f"cortiware-{run.stack}-") for d in definitions} == set(
        FAMILIES
    )
    for definition in definitions:
        assert definition.inputs["skipDestroy"] is True, definition.inputs["family"]


def test_every_container_reports_the_image_tag_as_its_version(run: OfflineRun) -> None:
    """APP_VERSION of every container is the tag of the image it runs."""
    for family in FAMILIES:
        spec = container(run, family)
        tag = spec["image"].rsplit(":", 1)[1]
        env = {e["name"]: e["value"] for e in spec["environment"]}
        assert env["APP_VERSION"] == tag == run.outputs["imageTag"], family


def test_ecs_exec_is_on_and_its_sessions_are_logged(run: OfflineRun) -> None:
    """The service allows ECS Exec; the cluster logs sessions to an encrypted group of the
    stack, which the task role may write and nothing else."""
    service = one(run, "aws:ecs/service:Service")
    assert service.inputs["enableExecuteCommand"] is True
    exec_config = one(run, "aws:ecs/cluster:Cluster").inputs["configuration"][
        "executeCommandConfiguration"
    ]
    assert exec_config["logging"] == "OVERRIDE"
    log_config = exec_config["logConfiguration"]
    assert log_config["cloudWatchEncryptionEnabled"] is True
    group = log_config["cloudWatchLogGroupName"]
    assert group == f"/cortiware/{run.stack}/ecs-exec"
    groups = {g.inputs["name"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups[group].inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_the_load_balancer_asks_the_service_s_readiness_route() -> None:
    """The target group's path is a route of the app that checks no dependency."""
    from infra.components.load_balancer import READINESS_PATH

    app = create_app(Settings.from_env({"APP_ENV": "test"}))
    paths = {route.path for route in app.routes}
    assert READINESS_PATH in paths
    handler = app.route_handler_method_map[READINESS_PATH]["GET"]
    assert handler.handler_name == "ready"


def test_first_deploy_targets_a_resource_the_program_declares(run: OfflineRun) -> None:
    """The `--target` URN of docs/infra.md's first `up` is the ECR repository's URN."""
    text = (REPO_ROOT / "docs" / "infra.md").read_text()
    match = re.search(r'--target "([^"]+)"', text)
    assert match is not None
    urn = match.group(1).replace("\\$", "$")
    assert urn.startswith("urn:pulumi:$STACK::cortiware::")
    repository = one(run, "aws:ecr/repository:Repository")
    # The mock engine names stack and project "stack::project"; the rest is the program's.
    assert urn.split("::", 2)[2] == repository.urn.split("::", 2)[2]
