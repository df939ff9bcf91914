"""The program's component tree: every resource under a component, URNs of deployed stacks
kept across refactors (aliases), and component arguments built from their own sub-config."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator, Mapping

import infra.components
import pytest
from infra.config import StackConfig
from infra.offline import REPO_ROOT, OfflineRun, PlannedResource
from infra.program import ALARMS_COMPONENT, SERVICE_COMPONENT

pytestmark = pytest.mark.infra

URN_FILES = REPO_ROOT / "tests" / "infra" / "urns"
"""Per stack, the URNs (as the Pulumi engine forms them) of every resource deployed so far.
A resource that is deliberately removed leaves this list in the same change."""

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


class _Tree:
    """Engine URNs of a run: a resource's type is qualified by its parents' types, the root
    stack excluded, as in ``urn:pulumi:<stack>::<project>::<Parent>$<type>::<name>``."""

    def __init__(self, run: OfflineRun) -> None:
        self.run = run
        self.by_mock_urn = {r.urn: r for r in run.resources}

    def parent(self, resource: PlannedResource) -> PlannedResource | None:
        return self.by_mock_urn.get(resource.parent)

    def qualified_type(self, resource: PlannedResource) -> str:
        parent = self.parent(resource)
        return resource.type if parent is None else f"{self.qualified_type(parent)}${resource.type}"

    def urn(self, resource: PlannedResource) -> str:
        return self._urn(self.qualified_type(resource), resource.name)

    def _urn(self, qualified_type: str, name: str) -> str:
        return f"urn:pulumi:{self.run.stack}::cortiware::{qualified_type}::{name}"

    def names(self, resource: PlannedResource) -> Iterator[str]:
        """The resource's URN and every URN its aliases (own or inherited) stand for."""
        yield self.urn(resource)
        yield from self.aliases(resource)

    def aliases(self, resource: PlannedResource) -> Iterator[str]:
        """Alias URNs as the engine derives them: each alias spec resolved against the old
        parent it names, and the resource under every old URN of its parent (inherited)."""
        parent = self.parent(resource)
        for alias in resource.aliases:
            if alias.get("urn"):
                yield alias["urn"]
                continue
            name = alias["name"] or resource.name
            kind = alias["type"] or resource.type
            if alias["noParent"]:
                yield self._urn(kind, name)
            elif alias["parentUrn"]:
                yield self._urn(f"{_type_of(alias['parentUrn'])}${kind}", name)
            elif parent is not None:
                for parent_urn in self.names(parent):
                    yield self._urn(f"{_type_of(parent_urn)}${kind}", name)
        if parent is not None:
            for parent_alias in self.aliases(parent):
                yield self._urn(f"{_type_of(parent_alias)}${resource.type}", resource.name)


def _type_of(urn: str) -> str:
    """The qualified type of a URN, without the root stack the mocks put in front."""
    qualified = urn.split("::")[2]
    return qualified.removeprefix(f"{ROOT_STACK_TYPE}$")


def test_every_custom_resource_has_a_component_as_its_parent(run: OfflineRun) -> None:
    """No AWS (or provider) resource sits at the top of the stack: each belongs to a component."""
    components = {r.urn for r in run.resources if not r.custom}
    loose = [r.name for r in run.resources if r.custom and r.parent not in components]
    assert loose == []


def test_deployed_resources_keep_their_urns(run: OfflineRun) -> None:
    """Every URN of a deployed stack is still declared, directly or through an alias, so
    `pulumi up` after a refactor replaces nothing (no new database or load balancer)."""
    tree = _Tree(run)
    known = {urn for r in run.resources for urn in tree.names(r)}
    deployed = (URN_FILES / f"{run.stack}.txt").read_text().split()
    assert deployed
    missing = [urn for urn in deployed if urn not in known]
    assert missing == []


MOVED = {
    "cortiware:infra:ImageRegistry": SERVICE_COMPONENT,
    "cortiware:infra:LoadBalancer": SERVICE_COMPONENT,
    "cortiware:infra:Autoscaling": SERVICE_COMPONENT,
    "cortiware:infra:ScheduledJobs": SERVICE_COMPONENT,
    "cortiware:infra:Paging": ALARMS_COMPONENT,
}
"""Components whose first children were declared under another component."""


def test_moved_resources_alias_their_first_parent(run: OfflineRun) -> None:
    """Resources moved out of another component keep their names and name it as old parent;
    resources added to those components later carry no such alias."""
    tree = _Tree(run)
    moved = 0
    for resource in run.resources:
        parent = tree.parent(resource)
        if parent is None or parent.type not in MOVED:
            continue
        origin = MOVED[parent.type]
        # pulumi-aws adds aliases of its own (former type tokens), without a parent.
        parents = [a["parentUrn"] for a in resource.aliases if a.get("parentUrn")]
        if resource.name.startswith(f"{origin.name}-"):
            old_parent = f"urn:pulumi:{run.stack}::cortiware::{origin.type_}::{origin.name}"
            assert parents == [old_parent], resource.name
            moved += 1
        else:
            assert resource.name.startswith(f"{parent.name}-"), resource.name
            assert parents == [], resource.name
    assert moved >= 16


def _args_classes() -> Iterator[type]:
    for module_info in pkgutil.iter_modules(infra.components.__path__):
        module = importlib.import_module(f"infra.components.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and value.__name__.endswith("Args")
                and dataclasses.is_dataclass(value)
            ):
                yield value


def test_component_args_take_their_own_sub_config() -> None:
    """No component receives the whole stack configuration; a `config` field is a sub-config."""
    classes = list(_args_classes())
    assert len(classes) >= 10
    for cls in classes:
        # Annotations are strings (postponed evaluation); the names are the modules' imports.
        annotations: Mapping[str, str] = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        for field, annotation in annotations.items():
            assert StackConfig.__name__ not in annotation, f"{cls.__name__}.{field}"
        if "config" in annotations:
            module = importlib.import_module(cls.__module__)
            config_type = getattr(module, annotations["config"])
            assert config_type.__module__ == "infra.config", cls.__name__
            assert config_type.__name__.endswith("Config"), cls.__name__
