"""Run the real program offline under Pulumi mocks and record every resource it declares.

No CLI, no credentials, no network: ``pulumi.runtime.set_mocks`` replaces the engine, the
mocks below answer like AWS would (ARNs, endpoints, generated passwords honouring their
character-set inputs), and a recording monitor keeps each registration with its resolved
inputs and resource options. ``make plan`` and ``tests/infra`` both use this module.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import hashlib
import importlib
import json
import random
import runpy
import string
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import PROJECT

__all__ = [
    "ACCOUNT_ID",
    "PLACEHOLDER_SECRETS",
    "REPO_ROOT",
    "AwsMocks",
    "OfflineRun",
    "PlannedResource",
    "UnknownStackError",
    "run_offline",
    "stack_config",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
"""The account the mocks pretend to be."""

PLACEHOLDER_SECRETS = {
    f"{PROJECT}:stripeSecretKey": "sk_test_offline_placeholder",
    f"{PROJECT}:stripePublishableKey": "pk_test_offline_placeholder",
    f"{PROJECT}:stripeWebhookSecret": "whsec_offline_placeholder",
}
"""Stand-ins for secrets an operator sets with ``pulumi config set --secret`` (never committed)."""


class UnknownStackError(LookupError):
    """No ``Pulumi.<stack>.yaml`` exists for the requested stack."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource as the engine would have received it."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    """Resolved inputs, camelCase as the engine and policy packs see them (secrets unwrapped)."""
    secret_inputs: frozenset[str]
    """Top-level inputs that were marked secret."""
    custom: bool
    """False for ``ComponentResource``s."""
    protect: bool
    ignore_changes: tuple[str, ...]
    parent: str
    provider: str
    dependencies: tuple[str, ...] = ()
    """URNs the resource waits for (``depends_on`` and the resources its inputs come from)."""
    aliases: tuple[Mapping[str, Any], ...] = ()
    """The ``aliases`` option as the engine receives it: ``{"urn": ...}`` or an alias spec
    (``name``, ``type``, ``stack``, ``project``, ``parentUrn``, ``noParent``; unset ones empty)."""


ELB_LOG_ACCOUNTS = {"eu-west-1": "156460612806", "us-east-1": "127311923021"}
"""Per-region ELB log-delivery accounts (docs.aws.amazon.com, "Enable access logs")."""


@dataclass(frozen=True)
class OfflineRun:
    """What one offline run of the program produced."""

    stack: str
    resources: tuple[PlannedResource, ...]
    outputs: Mapping[str, Any]

    def of_type(self, type_token: str) -> list[PlannedResource]:
        """Custom resources of one type token, e.g. ``aws:rds/instance:Instance``."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> PlannedResource:
        """The resource with this logical name.

        Raises:
            KeyError: no resource has that name.
        """
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)


def stack_config(stack: str) -> dict[str, str]:
    """``Pulumi.<stack>.yaml``'s config as the engine passes it (objects as JSON strings).

    Secure (encrypted) values and required secrets that are not in the file become
    offline placeholders.

    Raises:
        UnknownStackError: the stack file does not exist.
    """
    # PyYAML comes with pulumi; its stubs (types-PyYAML) are not among the project's deps.
    import yaml  # type: ignore[import-untyped]

    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in REPO_ROOT.glob("Pulumi.*.yaml")
        )
        raise UnknownStackError(
            f"unknown stack {stack!r}: no {path.name} (known stacks: {', '.join(known)})"
        )
    document = yaml.safe_load(path.read_text()) or {}
    config: dict[str, str] = dict(PLACEHOLDER_SECRETS)
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            config[key] = PLACEHOLDER_SECRETS.get(key, "offline-secret-placeholder")
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = json.dumps(value)
    return config


AWS_MODULES = (
    "acm",
    "appautoscaling",
    "backup",
    "cloudwatch",
    "ec2",
    "ecr",
    "ecs",
    "elasticache",
    "iam",
    "kms",
    "lambda_",
    "lb",
    "rds",
    "route53",
    "s3",
    "scheduler",
    "secretsmanager",
    "sns",
    "synthetics",
    "vpc",
)


def _load_provider_modules() -> None:
    """Import pulumi-aws's lazily loaded service modules now, on this thread.

    The mock engine registers resources from worker threads; a service module first touched
    there can be seen half-initialised (``importlib.util.LazyLoader`` is not thread-safe), and
    loading ``ec2`` announces pulumi-aws's own renamed resources with DeprecationWarnings
    about resources this program does not use.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".* has been deprecated in favor of ", category=DeprecationWarning
        )
        for module in AWS_MODULES:
            # Any non-introspection attribute makes the lazy module execute.
            getattr(importlib.import_module(f"pulumi_aws.{module}"), "__all__", None)


def _physical_name(args: pulumi.runtime.MockResourceArgs) -> str:
    for key in ("name", "identifier", "replicationGroupId", "bucket", "family"):
        value = args.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return args.name


class AwsMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way AWS would, deterministically."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.last = threading.local()

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        self.last.args = args
        if not args.custom:
            return args.name, {}
        state = dict(args.inputs)
        state.update(self._computed(args))
        return str(state.pop("__id", f"{args.name}-id")), state

    # One case per mocked resource type reads best as a single match statement.
    def _computed(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:  # noqa: PLR0912, PLR0915
        region, account = self.region, ACCOUNT_ID
        name = _physical_name(args)
        _, module, kind = args.typ.split(":")
        service = module.split("/")[0]
        out: dict[str, Any] = {
            "arn": f"arn:aws:{service}:{region}:{account}:{kind.lower()}/{name}",
            # AWS auto-names what the program leaves unnamed.
            "name": args.inputs.get("name") or name,
        }
        match args.typ:
            case "aws:rds/instance:Instance":
                address = f"{name}.c0ffee00.{region}.rds.amazonaws.com"
                out |= {
                    "address": address,
                    "endpoint": f"{address}:5432",
                    "identifier": name,
                    "arn": f"arn:aws:rds:{region}:{account}:db:{name}",
                    "__id": name,
                }
            case "aws:rds/proxy:Proxy":
                out["endpoint"] = f"{name}.proxy-c0ffee00.{region}.rds.amazonaws.com"
            case "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
                out["name"] = "default"
            case "aws:elasticache/replicationGroup:ReplicationGroup":
                out |= {
                    "primaryEndpointAddress": f"master.{name}.c0ffee.cache.amazonaws.com",
                    "memberClusters": [
                        f"{name}-{i:03d}"
                        for i in range(1, int(args.inputs["numCacheClusters"]) + 1)
                    ],
                    "__id": name,
                }
            case "aws:lb/loadBalancer:LoadBalancer":
                out |= {
                    "dnsName": f"{name}-1234567890.{region}.elb.amazonaws.com",
                    "arnSuffix": f"app/{name}/0123456789abcdef",
                    "zoneId": "Z32O12XQLNTSW2",
                }
            case "aws:lb/targetGroup:TargetGroup":
                out["arnSuffix"] = f"targetgroup/{name}/fedcba9876543210"
            case "aws:ecr/repository:Repository":
                out["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{name}"
            case "aws:ecs/taskDefinition:TaskDefinition":
                base = f"arn:aws:ecs:{region}:{account}:task-definition/{name}"
                out |= {"arn": f"{base}:1", "arnWithoutRevision": base, "revision": 1}
            case "aws:ecs/cluster:Cluster":
                out["arn"] = f"arn:aws:ecs:{region}:{account}:cluster/{name}"
            case "aws:secretsmanager/secret:Secret":
                out["arn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"
            case "aws:kms/key:Key":
                key_id = hashlib.sha256(args.name.encode()).hexdigest()[:32]
                out |= {"arn": f"arn:aws:kms:{region}:{account}:key/{key_id}", "keyId": key_id}
            case "aws:cloudwatch/logGroup:LogGroup":
                out["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
            case "aws:iam/role:Role":
                out |= {"arn": f"arn:aws:iam::{account}:role/{name}", "name": name}
            case "aws:sns/topic:Topic":
                out["arn"] = f"arn:aws:sns:{region}:{account}:{name}"
            case "aws:s3/bucket:Bucket":
                out |= {"arn": f"arn:aws:s3:::{name}", "bucket": name, "__id": name}
            case "aws:backup/vault:Vault":
                out["arn"] = f"arn:aws:backup:{region}:{account}:backup-vault:{name}"
            case "aws:acm/certificate:Certificate":
                domain = args.inputs["domainName"]
                out["domainValidationOptions"] = [
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_c0ffee.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_c0ffee.acm-validations.aws.",
                    }
                ]
            case "aws:route53/record:Record":
                out["fqdn"] = args.inputs.get("name")
            case "random:index/randomPassword:RandomPassword":
                out["result"] = _password(args.name, args.inputs)
            case "random:index/randomId:RandomId":
                raw = random.Random(args.name).randbytes(int(args.inputs["byteLength"]))  # noqa: S311 - mock value, never a secret
                out |= {"hex": raw.hex(), "dec": str(int.from_bytes(raw, "big"))}
            case "random:index/randomBytes:RandomBytes":
                raw = random.Random(args.name).randbytes(int(args.inputs["length"]))  # noqa: S311 - mock value, never a secret
                out |= {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
            case _:
                pass
        return out

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":  # noqa: S105 - invoke token
            names = [f"{self.region}{suffix}" for suffix in "abcd"]
            return {"names": names, "zoneIds": [f"z-{n}" for n in names], "id": self.region}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":  # noqa: S105 - invoke token
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                "userId": "OFFLINE",
                "id": ACCOUNT_ID,
            }, []
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":  # noqa: S105 - invoke token
            # The Elastic Load Balancing account that delivers access logs in the region
            # (AWS's published table; only the regions the stacks use are listed).
            account = ELB_LOG_ACCOUNTS[self.region]
            return {"arn": f"arn:aws:iam::{account}:root", "id": account}, []
        raise NotImplementedError(f"the offline mocks do not answer {args.token}")


# The engine's wire envelope of a secret value ({sig: secret-sig, "value": v}).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a wire-format marker


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG


def _reveal(value: Any) -> Any:
    """The value with every secret envelope replaced by its plaintext."""
    if _is_secret(value):
        return _reveal(value["value"])
    if isinstance(value, Mapping):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _password(seed: str, inputs: Mapping[str, Any]) -> str:
    """What pulumi-random would generate: the same length and character classes."""
    rng = random.Random(seed)  # noqa: S311 - mock value, never a secret
    classes: list[tuple[str, int]] = []
    if inputs.get("lower", True):
        classes.append((string.ascii_lowercase, int(inputs.get("minLower", 0))))
    if inputs.get("upper", True):
        classes.append((string.ascii_uppercase, int(inputs.get("minUpper", 0))))
    if inputs.get("numeric", True):
        classes.append((string.digits, int(inputs.get("minNumeric", 0))))
    if inputs.get("special", True):
        specials = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        classes.append((specials, max(int(inputs.get("minSpecial", 0)), 1)))
    length = int(inputs["length"])
    chars = [rng.choice(alphabet) for alphabet, minimum in classes for _ in range(minimum)]
    pool = "".join(alphabet for alphabet, _ in classes)
    chars += [rng.choice(pool) for _ in range(length - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


def _alias(alias: Any) -> Mapping[str, Any]:
    """One ``pulumirpc.Alias`` message as a plain mapping."""
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    return {
        "name": spec.name,
        "type": spec.type,
        "stack": spec.stack,
        "project": spec.project,
        "parentUrn": spec.parentUrn,
        "noParent": spec.noParent,
    }


class _RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping each registration's options (protect, ignoreChanges)."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self._aws_mocks = mocks
        self.registrations: list[PlannedResource] = []
        self._lock = threading.Lock()

    # Pulumi calls the monitor from its loop's executor threads, and MockMonitor's Invoke,
    # ReadResource and RegisterResource give each such thread an event loop
    # (`sync_await._ensure_event_loop`) that nothing closes: they reach the garbage
    # collector, tests later, as `unclosed event loop` warnings. Here each call on such a
    # thread gets a loop that is closed when the call returns.

    def Invoke(self, request: Any) -> Any:
        with _thread_loop():
            return super().Invoke(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:
        with _thread_loop():
            return super().ReadResource(request)  # type: ignore[no-untyped-call]

    def RegisterResource(self, request: Any) -> Any:
        # MockMonitor's gRPC-style methods carry no annotations.
        with _thread_loop():
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        args: pulumi.runtime.MockResourceArgs = self._aws_mocks.last.args
        with self._lock:
            self.registrations.append(
                PlannedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=_reveal(dict(args.inputs)),
                    secret_inputs=frozenset(k for k, v in args.inputs.items() if _is_secret(v)),
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    ignore_changes=tuple(request.ignoreChanges),
                    parent=request.parent,
                    provider=request.provider,
                    dependencies=tuple(request.dependencies),
                    aliases=tuple(_alias(a) for a in request.aliases),
                )
            )
        return response


@contextlib.contextmanager
def _thread_loop() -> Iterator[None]:
    """On a thread without an event loop: one for the block, closed after it."""
    policy = asyncio.get_event_loop_policy()
    try:
        policy.get_event_loop()  # off the main thread, raises rather than making one
    except RuntimeError:
        pass
    else:
        yield  # the thread has its loop (the main thread): leave it alone
        return
    loop = asyncio.new_event_loop()
    policy.set_event_loop(loop)
    try:
        yield
    finally:
        policy.set_event_loop(None)
        loop.close()


_OWN_LOOP: asyncio.AbstractEventLoop | None = None


def _ensure_event_loop() -> None:
    # Pulumi's runtime creates futures on the thread's current loop. A closed or missing one
    # (left behind by asyncio.run() or pytest-asyncio in the same process) makes it fail with
    # "There is no current event loop", so install one loop of our own, closed at exit.
    global _OWN_LOOP  # noqa: PLW0603 - one loop per process, created lazily
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        if _OWN_LOOP is None or _OWN_LOOP.is_closed():
            _OWN_LOOP = asyncio.new_event_loop()
            atexit.register(_OWN_LOOP.close)
        asyncio.set_event_loop(_OWN_LOOP)


def close_event_loop() -> None:
    """Close the loop `run_offline` may have installed (test sessions call this at the end)."""
    if _OWN_LOOP is not None and not _OWN_LOOP.is_closed():
        _OWN_LOOP.close()


def run_offline(stack: str, config: Mapping[str, str] | None = None) -> OfflineRun:
    """Run ``infra/__main__.py`` for ``stack`` under mocks and return what it declared.

    ``config`` defaults to the stack file's (:func:`stack_config`).

    Raises:
        UnknownStackError: no stack file and no ``config`` given.
        infra.config.ConfigError: the configuration is invalid.
    """
    values = dict(stack_config(stack) if config is None else config)
    _load_provider_modules()
    _ensure_event_loop()
    region = values.get("aws:region", "eu-west-1")
    mocks = AwsMocks(region)
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.reset_options(project=PROJECT, stack=stack)
    pulumi.runtime.set_all_config(values, secret_keys=sorted(PLACEHOLDER_SECRETS))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    def program() -> None:
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program))
    root = pulumi.runtime.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs = {
        key: _sync_await(pulumi.Output.from_input(value).future())
        for key, value in exported.items()
    }
    return OfflineRun(stack=stack, resources=tuple(monitor.registrations), outputs=outputs)
