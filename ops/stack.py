"""A stack's outputs and the AWS clients of its region: what every procedure starts from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3

__all__ = ["Clients", "Outputs", "ProcedureError", "Runner", "run_command"]


class Runner(Protocol):
    """Runs an external command (docker, pulumi, cortiware) and returns its stdout; raises
    ProcedureError when it exits non-zero. Tests inject one to stand in for Docker and Pulumi."""

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> str: ...


class ProcedureError(Exception):
    """A step failed; the message is the one line an operator reads."""


def run_command(argv: Sequence[str], *, stdin: str | None = None) -> str:
    """Run `argv` (stderr passes through); its stdout, or ProcedureError naming the command."""
    result = subprocess.run(  # noqa: S603 - argv built by the procedures, never a shell
        list(argv), input=stdin, stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise ProcedureError(f"`{' '.join(argv[:3])} …` exited {result.returncode}")
    return result.stdout


@dataclass(frozen=True, slots=True)
class Outputs:
    """The stack outputs the procedures read (`pulumi stack output --json`)."""

    stack: str
    url: str
    ecr_repository_url: str
    cluster_name: str
    service_name: str
    migration_task_definition_arn: str
    migration_network_configuration: Mapping[str, Any]
    database_identifier: str

    @classmethod
    def from_json(cls, stack: str, raw: Mapping[str, Any]) -> Outputs:
        """Read the outputs; ProcedureError names any that is missing."""
        keys = (
            "url",
            "ecrRepositoryUrl",
            "clusterName",
            "serviceName",
            "migrationTaskDefinitionArn",
            "migrationNetworkConfiguration",
            "databaseIdentifier",
        )
        missing = [key for key in keys if not raw.get(key)]
        if missing:
            raise ProcedureError(f"stack {stack} has no output {', '.join(missing)}")
        network = raw["migrationNetworkConfiguration"]
        return cls(
            stack=stack,
            url=str(raw["url"]),
            ecr_repository_url=str(raw["ecrRepositoryUrl"]),
            cluster_name=str(raw["clusterName"]),
            service_name=str(raw["serviceName"]),
            migration_task_definition_arn=str(raw["migrationTaskDefinitionArn"]),
            migration_network_configuration=json.loads(network)
            if isinstance(network, str)
            else network,
            database_identifier=str(raw["databaseIdentifier"]),
        )

    @classmethod
    def load(cls, stack: str, run: Runner, path: Path | None = None) -> Outputs:
        """From a JSON file when given, else from `pulumi stack output --json -s STACK`."""
        text = (
            path.read_text() if path else run(["pulumi", "stack", "output", "--json", "-s", stack])
        )
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ProcedureError(f"stack outputs of {stack} are not JSON") from exc
        return cls.from_json(stack, raw)


@dataclass(frozen=True, slots=True)
class Clients:
    """boto3 clients of one region (and endpoint, for moto's server in tests)."""

    ecs: Any
    ecr: Any
    rds: Any

    @classmethod
    def create(cls, region: str | None = None, endpoint_url: str | None = None) -> Clients:
        """Clients from the default credential chain."""
        session: Any = boto3.session.Session(region_name=region)

        def make(name: str) -> Any:
            return session.client(name, endpoint_url=endpoint_url)

        return cls(ecs=make("ecs"), ecr=make("ecr"), rds=make("rds"))
