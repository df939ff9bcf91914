"""`make preflight` on the committed stack files and on edited copies of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ops.preflight import check_stack, main

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("stripeSecretKey", "stripePublishableKey", "stripeWebhookSecret")


def edited(tmp_path: Path, stack: str, **changes: Any) -> Path:
    """A copy of Pulumi.<stack>.yaml with the secrets set (encrypted form) and `changes`
    applied (`section__key=value`, or a top-level `cortiware:` key)."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = document["config"]
    for name in SECRETS:
        config[f"cortiware:{name}"] = {"secure": "v1:offline-ciphertext"}
    for key, value in changes.items():
        if "__" in key:
            section, field = key.split("__")
            config[f"cortiware:{section}"][field] = value
        else:
            config[f"cortiware:{key}"] = value
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_committed_stacks_lack_only_their_secrets(stack: str) -> None:
    """The committed files pass every check but the three secrets an operator sets."""
    problems = check_stack(stack)
    assert len(problems) == 3, problems
    assert all("is not set: pulumi config set --secret" in p for p in problems)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_complete_stack_passes(
    stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the secrets set the stack is ready, and the command exits 0."""
    path = edited(tmp_path, stack)
    assert main(["--stack", stack, "--file", str(path)]) == 0
    assert "ready for pulumi preview" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"database__instanceClass": "db.t2.nano"}, "database.instanceClass 'db.t2.nano'"),
        ({"database__engineVersion": "12"}, "database.engineVersion '12'"),
        ({"database__engineVersion": "16.6"}, "the program refuses the config"),
        ({"cache__engineVersion": "5.0"}, "cache.engineVersion '5.0'"),
        ({"cache__nodeType": "cache.t1.micro"}, "cache.nodeType 'cache.t1.micro'"),
        ({"canary__runtimeVersion": "syn-python-selenium-1.0"}, "canary.runtimeVersion"),
        ({"service__memoryMib": 300}, "the program refuses the config"),
        ({"stripeWebhookSecret": "whsec_in_clear"}, "stripeWebhookSecret is in clear text"),
    ],
)
def test_each_problem_is_named(change: dict[str, Any], expected: str, tmp_path: Path) -> None:
    """A value AWS would refuse at `up` is named before it, and nothing else is reported."""
    problems = check_stack("staging", edited(tmp_path, "staging", **change))
    assert any(expected in problem for problem in problems), problems
    field = next(iter(change)).replace("__", ".")
    assert all(field in problem for problem in problems), problems
