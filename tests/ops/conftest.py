"""Drills: the operator procedures' AWS calls against moto's server, a stack laid out like
the Pulumi program's (cluster, web service, migration task, database, ECR repository).

moto's server runs in this process (`ThreadedMotoServer`, the server `moto_server` runs), so
boto3 talks HTTP to it exactly as to AWS, and a drill can play the part of what moto does not
model: ECS rolling a deployment (moto keeps a service's first deployment forever) and a
container's exit code. Docker and the Pulumi CLI do not run here; `StandIn` takes their
commands, says which it stood in for, and does through the ECS API what `pulumi up` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs import models as ecs_models
from moto.ecs.models import ecs_backends
from moto.server import ThreadedMotoServer
from ops.stack import Clients, Outputs, ProcedureError

from tests.support.servers import cortiware_serve, free_port

REGION = "eu-west-1"
RELEASED = "r1"
"""The tag the drill stack runs before a deploy."""
NEW = "r2"
"""The tag the drills deploy; the served service reports it."""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port, for the whole run."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts; the real ones of a developer are never used."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="session")
def served_new_release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `cortiware serve` reporting APP_VERSION=NEW: what the stack's URL answers."""
    with cortiware_serve(tmp_path_factory.mktemp("drill"), {"APP_VERSION": NEW}) as base:
        yield base


def _container(name: str, image: str, command: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "essential": True,
        "memory": 1024,
        "command": command,
        "environment": [{"name": "APP_ENV", "value": "staging"}],
    }


@dataclass
class DrillStack:
    """The drill's AWS resources and helpers to act as ECS where moto does not."""

    clients: Clients
    outputs: Outputs
    family: str
    repository: str
    rollout: Literal["completed", "rolled back"] = "completed"
    """How ECS ends the next rollout an update-service starts."""

    def push(self, tag: str) -> None:
        """Put an image under `tag` in ECR, as `docker push` would."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{uuid.uuid4().hex * 2}", "size": 1},
                "layers": [],
            }
        )
        self.clients.ecr.put_image(
            repositoryName=self.repository, imageManifest=manifest, imageTag=tag
        )

    def register_web(self, tag: str) -> str:
        """A web revision on `REPO:tag`, as the Pulumi program registers on an image change."""
        image = f"{self.outputs.ecr_repository_url}:{tag}"
        registered = self.clients.ecs.register_task_definition(
            family=self.family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="512",
            memory="1024",
            containerDefinitions=[_container("web", image, ["serve"])],
        )
        return str(registered["taskDefinition"]["taskDefinitionArn"])

    def service_model(self) -> Any:
        """moto's own record of the web service (to roll it as ECS would)."""
        backend = ecs_backends[DEFAULT_ACCOUNT_ID][REGION]
        return backend.services[f"{self.outputs.cluster_name}:{self.outputs.service_name}"]

    def settle(self, new: str, previous: str, outcome: Literal["completed", "rolled back"]) -> None:
        """End the rollout of `new` as ECS would: COMPLETED, or FAILED with the circuit
        breaker's rollback to `previous` as the PRIMARY deployment."""
        service = self.service_model()
        template = dict(service.deployments[0])
        done = {
            **template,
            "id": f"ecs-svc/{uuid.uuid4().int % 10**12}",
            "taskDefinition": new,
            "status": "PRIMARY",
            "rolloutState": "COMPLETED",
            "rolloutStateReason": "ECS deployment completed.",
        }
        if outcome == "completed":
            service.deployments = [done]
            return
        failed = {
            **done,
            "status": "ACTIVE",
            "rolloutState": "FAILED",
            "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
        }
        back = {
            **done,
            "id": f"ecs-svc/{uuid.uuid4().int % 10**12}",
            "taskDefinition": previous,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment circuit breaker: rolling back.",
        }
        service.deployments = [back, failed]
        service.task_definition = previous


@pytest.fixture
def drill_stack(
    moto_endpoint: str, served_new_release: str, monkeypatch: pytest.MonkeyPatch
) -> DrillStack:
    """A fresh drill stack (own names) running RELEASED, its URL the served NEW release;
    every update-service of its web service ends its rollout as `stack.rollout` says."""
    clients = Clients.create(REGION, moto_endpoint)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"cw-{uuid.uuid4().hex[:8]}"
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the program
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="service", VpcId=vpc)
    network = {
        "awsvpcConfiguration": {
            "subnets": [subnet],
            "securityGroups": [group["GroupId"]],
            "assignPublicIp": "DISABLED",
        }
    }
    repository = clients.ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")[
        "repository"
    ]
    clients.ecs.create_cluster(clusterName=name)
    clients.rds.create_db_subnet_group(
        DBSubnetGroupName=f"{name}-db", DBSubnetGroupDescription="db", SubnetIds=[subnet]
    )
    clients.rds.create_db_parameter_group(
        DBParameterGroupName=f"{name}-postgres16",
        DBParameterGroupFamily="postgres16",
        Description="as the program's",
    )
    clients.rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-db",
        DBSubnetGroupName=f"{name}-db",
        DBParameterGroupName=f"{name}-postgres16",
        VpcSecurityGroupIds=[group["GroupId"]],
        DeletionProtection=False,
        DBInstanceClass="db.t4g.medium",
        Engine="postgres",
        EngineVersion="16.4",
        AllocatedStorage=20,
        MasterUsername="cortiware_admin",
        MasterUserPassword="drill-password-1234",
        BackupRetentionPeriod=7,
    )
    migrate = clients.ecs.register_task_definition(
        family=f"{name}-migrate",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        containerDefinitions=[
            _container("migrate", f"{repository['repositoryUri']}:{RELEASED}", ["migrate"])
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    outputs = Outputs.from_json(
        "drill",
        {
            "url": served_new_release,
            "ecrRepositoryUrl": repository["repositoryUri"],
            "clusterName": name,
            "serviceName": f"{name}-web",
            "migrationTaskDefinitionArn": migrate,
            "migrationNetworkConfiguration": network,
            "databaseIdentifier": f"{name}-db",
        },
    )
    stack = DrillStack(clients, outputs, f"{name}-web", name)
    stack.push(RELEASED)
    web = stack.register_web(RELEASED)
    clients.ecs.create_service(
        cluster=name,
        serviceName=f"{name}-web",
        taskDefinition=web,
        desiredCount=2,
        launchType="FARGATE",
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        networkConfiguration=network,
    )
    stack.settle(web, web, "completed")
    update = ecs_models.EC2ContainerServiceBackend.update_service

    def update_and_roll(backend: Any, properties: dict[str, Any]) -> Any:
        target = f"{properties.get('cluster')}:{properties.get('service')}"
        if target != f"{name}:{name}-web" or not properties.get("task_definition"):
            return update(backend, properties)
        previous = stack.service_model().task_definition
        service = update(backend, properties)
        stack.settle(service.task_definition, previous, stack.rollout)
        return service

    monkeypatch.setattr(ecs_models.EC2ContainerServiceBackend, "update_service", update_and_roll)
    return stack


@dataclass
class StandIn:
    """The command runner of a drill: Docker and Pulumi are stood in for (each recorded in
    `calls` with what was done instead); `cortiware` commands really run."""

    stack: DrillStack
    calls: list[str] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    before_up: dict[str, list[str]] = field(default_factory=dict)
    """What AWS held when `pulumi up` ran: snapshots and stopped migration tasks' images."""

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> str:  # noqa: PLR0911 - one branch per stood-in command
        command = list(argv)
        self.calls.append(" ".join(command))
        if command[:3] == ["aws", "ecr", "get-login-password"]:
            return "drill-registry-password"
        if command[:2] == ["docker", "login"]:
            assert "--password-stdin" in command, "the password goes through stdin"
            assert stdin
            return ""
        if command[:2] == ["docker", "build"]:
            assert command[2:4] == ["--platform", "linux/amd64"], command
            return ""
        if command[:2] == ["docker", "push"]:
            self.stack.push(command[2].rsplit(":", 1)[1])
            return ""
        if command[:3] == ["pulumi", "config", "set"]:
            assert command[3:5] == ["--path", "service.imageTag"], command
            self.config["service.imageTag"] = command[5]
            return ""
        if command[:2] == ["pulumi", "up"]:
            return self._pulumi_up()
        if command[0] == "cortiware":
            result = subprocess.run(
                [sys.executable, "-m", "cortiware.cli", *command[1:]],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={k: v for k, v in os.environ.items() if not k.startswith("APP_")},
            )
            if result.returncode != 0:
                raise ProcedureError(f"cortiware smoke failed: {result.stdout}{result.stderr}")
            return result.stdout
        raise AssertionError(f"the drill has no stand-in for {command}")

    def _pulumi_up(self) -> str:
        """What `pulumi up` does for an image change: a new web revision, update-service."""
        ecs = self.stack.clients.ecs
        outputs = self.stack.outputs
        snapshots = self.stack.clients.rds.describe_db_snapshots(
            DBInstanceIdentifier=outputs.database_identifier, SnapshotType="manual"
        )["DBSnapshots"]
        tasks = ecs.list_tasks(cluster=outputs.cluster_name)["taskArns"]
        described = (
            ecs.describe_tasks(cluster=outputs.cluster_name, tasks=tasks)["tasks"] if tasks else []
        )
        self.before_up = {
            "snapshots": [s["DBSnapshotIdentifier"] for s in snapshots],
            "migrations": [
                container["image"]
                for task in described
                if task["lastStatus"] == "STOPPED"
                for container in task["containers"]
            ],
        }
        new = self.stack.register_web(self.config["service.imageTag"])
        ecs.update_service(
            cluster=outputs.cluster_name, service=outputs.service_name, taskDefinition=new
        )
        return ""


def load_outputs(path: Path, outputs: Outputs) -> None:
    """Write `outputs` as `pulumi stack output --json` prints them."""
    path.write_text(
        json.dumps(
            {
                "url": outputs.url,
                "ecrRepositoryUrl": outputs.ecr_repository_url,
                "clusterName": outputs.cluster_name,
                "serviceName": outputs.service_name,
                "migrationTaskDefinitionArn": outputs.migration_task_definition_arn,
                "migrationNetworkConfiguration": json.dumps(
                    outputs.migration_network_configuration
                ),
                "databaseIdentifier": outputs.database_identifier,
            }
        )
    )
