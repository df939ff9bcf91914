"""Run the real Pulumi program once per stack under mocks and share what it declared."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from infra.offline import OfflineRun, PlannedResource, close_event_loop, run_offline

STACKS = ("staging", "prod")

_RUNS: dict[str, OfflineRun] = {}


def offline_run(stack: str) -> OfflineRun:
    """The program's resources for ``stack``, computed once per session (about 5-10 s each)."""
    if stack not in _RUNS:
        _RUNS[stack] = run_offline(stack)
    return _RUNS[stack]


@pytest.fixture(scope="session", params=STACKS)
def run(request: pytest.FixtureRequest) -> OfflineRun:
    """Each stack's offline run in turn."""
    return offline_run(request.param)


@pytest.fixture(scope="session")
def staging() -> OfflineRun:
    """The staging stack's offline run."""
    return offline_run("staging")


@pytest.fixture(scope="session")
def prod() -> OfflineRun:
    """The prod stack's offline run."""
    return offline_run("prod")


def one(run: OfflineRun, type_token: str) -> PlannedResource:
    """The only resource of a type; fails when there are zero or several."""
    found = run.of_type(type_token)
    assert len(found) == 1, f"{len(found)} resources of {type_token}"
    return found[0]


def policy_statements(resource: PlannedResource) -> list[dict[str, Any]]:
    """Statements of an ``aws:iam/rolePolicy`` resource's JSON policy."""
    document = json.loads(resource.inputs["policy"])
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def container(run: OfflineRun, family_suffix: str) -> dict[str, Any]:
    """The single container definition of the task definition ``<prefix>-<family_suffix>``."""
    for task in run.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        if task.inputs["family"].endswith(f"-{family_suffix}"):
            definitions: list[dict[str, Any]] = json.loads(task.inputs["containerDefinitions"])
            assert len(definitions) == 1
            return definitions[0]
    raise AssertionError(f"no task definition {family_suffix}")


def walk(value: Any) -> Iterator[Any]:
    """Every nested value of a JSON-like structure."""
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


@pytest.fixture(scope="session", autouse=True)
def _close_offline_loop() -> Iterator[None]:
    """Close the event loop the offline runs may have installed, before pytest's leak check."""
    yield
    close_event_loop()
