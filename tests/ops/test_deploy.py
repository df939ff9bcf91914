"""The deploy procedure drilled against moto's server (Docker and Pulumi stood in for, the
smoke test real against a served release)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from moto.ecs import models as ecs_models
from ops.deploy import Deploy, main
from ops.stack import ProcedureError

from tests.ops.conftest import NEW, REGION, DrillStack, StandIn, load_outputs


def deploy(stack: DrillStack, runner: StandIn, tag: str = NEW, **kw: Any) -> Deploy:
    """The procedure with drill timings (no sleeping between polls)."""
    return Deploy(
        outputs=stack.outputs,
        tag=tag,
        clients=stack.clients,
        run_command=runner,
        poll_delay=0,
        sleep=lambda _: None,
        say=lambda _: None,
        **kw,
    )


def web_images(stack: DrillStack) -> set[str]:
    """The images of the web service's PRIMARY deployment."""
    ecs = stack.clients.ecs
    service = ecs.describe_services(
        cluster=stack.outputs.cluster_name, services=[stack.outputs.service_name]
    )["services"][0]
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    definition = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])
    return {c["image"] for c in definition["taskDefinition"]["containerDefinitions"]}


def test_deploy_runs_every_step_in_order(drill_stack: DrillStack) -> None:
    """Build for amd64, push, snapshot, migrate on the new image, then roll and smoke."""
    runner = StandIn(drill_stack)
    procedure = deploy(drill_stack, runner)
    procedure.run()
    image = f"{drill_stack.outputs.ecr_repository_url}:{NEW}"
    assert [c.split()[:2] for c in runner.calls] == [
        ["aws", "ecr"],
        ["docker", "login"],
        ["docker", "build"],
        ["docker", "push"],
        ["pulumi", "config"],
        ["pulumi", "up"],
        ["cortiware", "smoke"],
    ]
    assert runner.calls[-1].endswith(f"--expect-version {NEW}")
    # Backup first, and migrations from the new image done, before the service changed.
    assert runner.before_up["snapshots"] == [procedure.snapshot_id]
    assert runner.before_up["migrations"] == [image]
    assert web_images(drill_stack) == {image}


def test_migration_failure_stops_before_the_service_rolls(
    drill_stack: DrillStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration task exiting 1 fails the deploy; Pulumi never runs, the old release serves."""
    created = ecs_models.Container.__init__

    def exits_one(self: Any, task_def: Any) -> None:
        created(self, task_def)
        if self.name == "migrate":
            self.exitCode = 1

    monkeypatch.setattr(ecs_models.Container, "__init__", exits_one)
    runner = StandIn(drill_stack)
    before = web_images(drill_stack)
    with pytest.raises(ProcedureError, match="exit codes"):
        deploy(drill_stack, runner).run()
    assert not any(call.startswith("pulumi") for call in runner.calls)
    assert web_images(drill_stack) == before


def test_circuit_breaker_rollback_fails_the_deploy(drill_stack: DrillStack) -> None:
    """A rollout the circuit breaker rolled back is a failed deploy, and smoke is not run."""
    drill_stack.rollout = "rolled back"
    runner = StandIn(drill_stack)
    with pytest.raises(ProcedureError, match="rolled back"):
        deploy(drill_stack, runner).run()
    assert not any(call.startswith("cortiware") for call in runner.calls)


def test_an_unpushed_tag_stops_before_the_snapshot(drill_stack: DrillStack) -> None:
    """`--skip-build` with a tag ECR does not have fails first, touching nothing."""
    runner = StandIn(drill_stack)
    with pytest.raises(ProcedureError, match="not in ECR"):
        deploy(drill_stack, runner, tag="never-pushed", build=False).run()
    snapshots = drill_stack.clients.rds.describe_db_snapshots(
        DBInstanceIdentifier=drill_stack.outputs.database_identifier, SnapshotType="manual"
    )["DBSnapshots"]
    assert snapshots == []
    assert runner.calls == []


def test_a_service_answering_another_version_fails_the_smoke(drill_stack: DrillStack) -> None:
    """Deploying r3 while the URL still reports r2 fails at `cortiware smoke --expect-version`."""
    runner = StandIn(drill_stack)
    with pytest.raises(ProcedureError, match="expected 'r3'"):
        deploy(drill_stack, runner, tag="r3").run()


def test_the_command_line_reports_one_line(
    drill_stack: DrillStack, moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m ops.deploy` against moto with an unpushed tag exits 1 with one line."""
    outputs = tmp_path / "outputs.json"
    load_outputs(outputs, drill_stack.outputs)
    code = main(
        [
            "--stack",
            "drill",
            "--tag",
            "missing",
            "--skip-build",
            "--outputs",
            str(outputs),
            "--region",
            REGION,
            "--endpoint-url",
            moto_endpoint,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("deploy: ")
    assert "not in ECR" in err
