"""What the operator procedures rely on in the program: kept task revisions, ECS Exec with
logged sessions, the readiness health check and the deployed tag as APP_VERSION."""

from __future__ import annotations

import json
import re

import pytest
from infra.config import ConfigError
from infra.offline import REPO_ROOT, OfflineRun, run_offline, stack_config

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


def test_the_service_outwaits_the_load_balancer_on_idle_connections(run: OfflineRun) -> None:
    """The ALB's idle timeout (as planned) is shorter than the service's keep-alive, so the
    ALB closes idle connections first and never reuses one the service is closing (a 502)."""
    from cortiware.cli import KEEP_ALIVE_TIMEOUT

    (alb,) = run.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["idleTimeout"] < KEEP_ALIVE_TIMEOUT


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


def _restored(**restore: str) -> OfflineRun:
    """Prod with `database.restore` set (and a replica, to see it follow)."""
    config = stack_config("prod")
    database = json.loads(config["cortiware:database"])
    config["cortiware:database"] = json.dumps({**database, "readReplica": True, "restore": restore})
    return run_offline("prod", config)


def test_a_restore_through_config_switches_everything_to_the_new_instance() -> None:
    """`database.restore` makes the primary a new instance restored from the old one, and the
    proxy target, replica, backup selection, alarms, log groups and outputs follow it."""
    run = _restored(
        generation="r1", sourceIdentifier="cortiware-prod-db", time="2026-01-31T09:55:00Z"
    )
    new = "cortiware-prod-db-r1"
    primary = run.named("database-instance-r1")
    assert primary.inputs["identifier"] == new
    assert primary.inputs["restoreToPointInTime"] == {
        "sourceDbInstanceIdentifier": "cortiware-prod-db",
        "restoreTime": "2026-01-31T09:55:00Z",
    }
    assert "dbName" not in primary.inputs
    assert "username" not in primary.inputs
    assert primary.protect is True
    with pytest.raises(KeyError):
        run.named("database-instance")  # the old instance is no longer declared (kept in AWS)
    assert one(run, "aws:rds/proxyTarget:ProxyTarget").inputs["dbInstanceIdentifier"] == new
    assert run.named("database-replica").inputs["replicateSourceDb"] == new
    selection = one(run, "aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [f"arn:aws:rds:eu-west-1:123456789012:db:{new}"]
    dimensions = [
        alarm.inputs["dimensions"]["DBInstanceIdentifier"]
        for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if "DBInstanceIdentifier" in (alarm.inputs.get("dimensions") or {})
    ]
    assert new in dimensions
    assert "cortiware-prod-db" not in dimensions  # the replica's own alarms name the replica
    groups = {g.inputs["name"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert f"/aws/rds/instance/{new}/postgresql" in groups
    assert "/aws/rds/instance/cortiware-prod-db/postgresql" not in groups
    assert run.outputs["databaseIdentifier"] == new


def test_a_restore_to_the_latest_time_asks_for_it() -> None:
    """`time: latest` restores to the latest restorable time."""
    run = _restored(generation="r2", sourceIdentifier="cortiware-prod-db-r1", time="latest")
    primary = run.named("database-instance-r2")
    assert primary.inputs["restoreToPointInTime"] == {
        "sourceDbInstanceIdentifier": "cortiware-prod-db-r1",
        "useLatestRestorableTime": True,
    }


@pytest.mark.parametrize(
    ("restore", "message"),
    [
        ({"generation": "R 1", "sourceIdentifier": "x", "time": "latest"}, "generation"),
        ({"generation": "r1", "sourceIdentifier": "x", "time": "yesterday"}, "restore.time"),
        ({"generation": "r1", "time": "latest"}, "sourceIdentifier is required"),
    ],
)
def test_a_malformed_restore_is_refused_by_name(restore: dict[str, str], message: str) -> None:
    """A restore block AWS could not act on is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=message):
        _restored(**restore)
