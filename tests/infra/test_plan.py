"""``python -m infra.plan``: table and policy results, exit codes, clear unknown-stack error."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import pytest
from infra.offline import REPO_ROOT, OfflineRun
from infra.plan import check_policies, render

pytestmark = pytest.mark.infra


def test_plan_of_the_real_stacks_passes_every_policy(run: OfflineRun) -> None:
    """Both stacks' plans print the resources, outputs and policies, with no violation."""
    out = io.StringIO()
    assert render(run, out) == 0
    text = out.getvalue()
    assert f"Stack {run.stack}:" in text
    assert "aws:rds.Instance" in text
    assert "backups-days=" in text
    assert "pass  no-world-open-ingress" in text
    assert text.rstrip().endswith("no violations")


def test_a_violation_makes_the_plan_fail(prod: OfflineRun) -> None:
    """A database without encryption is reported by name and the plan exits 1."""
    resources = tuple(
        dataclasses.replace(r, inputs={**r.inputs, "storageEncrypted": False})
        if r.name == "database-instance"
        else r
        for r in prod.resources
    )
    broken = dataclasses.replace(prod, resources=resources)
    _, violations = check_policies(broken)
    assert violations == [
        ("rds-storage-encrypted", "database-instance: storageEncrypted must be true")
    ]
    out = io.StringIO()
    assert render(broken, out) == 1
    assert "FAIL  rds-storage-encrypted" in out.getvalue()


def test_unknown_stack_is_a_one_line_error() -> None:
    """An unknown stack prints one clear line naming the known stacks and exits 2."""
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--stack", "qa"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "infra.plan: unknown stack 'qa': no Pulumi.qa.yaml (known stacks: prod, staging)"
    ]
    assert result.stdout == ""
