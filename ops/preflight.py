"""`make preflight STACK=…`: a stack's configuration against what AWS accepts, offline.

Before any `pulumi up`, with neither credentials nor the Pulumi CLI:

- the required secrets are set in `Pulumi.<stack>.yaml` (encrypted `secure:` values);
- the program accepts the config (`infra/config.py`'s validation: Fargate CPU/memory pairs,
  Performance Insights retention, major-only engine versions, …) and runs under mocks;
- engine versions, instance classes and the Synthetics runtime are ones AWS offers, from the
  tables below.

The tables are this repository's knowledge of AWS, not AWS's: a value AWS added since is
refused here until the table learns it (a one-line change with its source), and a value AWS
retired since passes here and fails at `up`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped]  # PyYAML comes with pulumi; no stubs in the deps
from infra.config import ConfigError
from infra.offline import PLACEHOLDER_SECRETS, REPO_ROOT, run_offline

__all__ = ["check_stack", "main"]

REQUIRED_SECRETS: Final = ("stripeSecretKey", "stripePublishableKey", "stripeWebhookSecret")

# RDS for PostgreSQL majors in standard support (RDS User Guide, "Supported PostgreSQL
# versions"; 13 left standard support in February 2026).
POSTGRES_MAJORS: Final = frozenset({"14", "15", "16", "17"})
# DB instance classes RDS offers for PostgreSQL 14-17 (RDS User Guide, "Supported DB engines
# for DB instance classes"): family → sizes.
_RDS_SIZES: Final = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
RDS_CLASSES: Final = frozenset(
    {f"db.{f}.{s}" for f in ("t3", "t4g") for s in ("micro", "small", "medium", "large")}
    | {f"db.{f}.xlarge" for f in ("t3", "t4g")}
    | {"db.t3.2xlarge", "db.t4g.2xlarge"}
    | {
        f"db.{f}.{s}"
        for f in ("m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g")
        for s in _RDS_SIZES
    }
)
# ElastiCache for Redis OSS engine versions (ElastiCache User Guide, "Supported engines").
REDIS_VERSIONS: Final = frozenset({"6.2", "7.0", "7.1"})
_CACHE_SIZES: Final = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")
CACHE_NODE_TYPES: Final = frozenset(
    {f"cache.{f}.{s}" for f in ("t3", "t4g") for s in ("micro", "small", "medium")}
    | {f"cache.{f}.{s}" for f in ("m5", "m6g", "m7g", "r5", "r6g", "r7g") for s in _CACHE_SIZES}
)
# CloudWatch Synthetics Python runtimes (Synthetics runtime versions page); 1.x and 2.x are
# deprecated and refused for new canaries.
SYNTHETICS_RUNTIME: Final = re.compile(r"syn-python-selenium-(?:[3-9]|\d{2,})\.\d+")


def _secure(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def check_stack(stack: str, path: Path | None = None) -> list[str]:
    """Every problem of the stack's config (empty: ready for `pulumi preview`)."""
    path = path or REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return [f"no {path.name}"]
    raw: dict[str, Any] = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    problems: list[str] = []
    for name in REQUIRED_SECRETS:
        value = raw.get(f"cortiware:{name}")
        if value is None:
            problems.append(
                f"cortiware:{name} is not set: pulumi config set --secret {name} … -s {stack}"
                + (" (a placeholder until Stripe gives the real one)" if "Webhook" in name else "")
            )
        elif not _secure(value):
            problems.append(f"cortiware:{name} is in clear text: set it with --secret")
    if not raw.get("aws:region"):
        problems.append("aws:region is not set")
    database = raw.get("cortiware:database") or {}
    if str(database.get("engineVersion")) not in POSTGRES_MAJORS:
        problems.append(
            f"database.engineVersion {database.get('engineVersion')!r}: RDS PostgreSQL "
            f"majors are {', '.join(sorted(POSTGRES_MAJORS))}"
        )
    if database.get("instanceClass") not in RDS_CLASSES:
        problems.append(
            f"database.instanceClass {database.get('instanceClass')!r} is not offered for "
            "RDS PostgreSQL"
        )
    cache = raw.get("cortiware:cache") or {}
    if str(cache.get("engineVersion")) not in REDIS_VERSIONS:
        problems.append(
            f"cache.engineVersion {cache.get('engineVersion')!r}: ElastiCache Redis versions "
            f"are {', '.join(sorted(REDIS_VERSIONS))}"
        )
    if cache.get("nodeType") not in CACHE_NODE_TYPES:
        problems.append(f"cache.nodeType {cache.get('nodeType')!r} is not an ElastiCache type")
    runtime = (raw.get("cortiware:canary") or {}).get("runtimeVersion")
    if not isinstance(runtime, str) or not SYNTHETICS_RUNTIME.fullmatch(runtime):
        problems.append(f"canary.runtimeVersion {runtime!r} is not a supported Python runtime")
    problems.extend(_program_problems(stack, path))
    return problems


def _program_problems(stack: str, path: Path) -> list[str]:
    """The program's own validation, run under mocks with this file's config (secrets as the
    offline placeholders `make plan` uses)."""
    document = yaml.safe_load(path.read_text()) or {}
    config = dict(PLACEHOLDER_SECRETS)
    for key, value in (document.get("config") or {}).items():
        if not _secure(value):
            config[key] = value if isinstance(value, str) else json.dumps(value)
    try:
        run_offline(stack, config)
    except ConfigError as exc:
        return [f"the program refuses the config: {exc}"]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"the program fails under mocks: {first}"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ops.preflight --stack S [--file PATH]`; exit 1 listing every problem."""
    parser = argparse.ArgumentParser(prog="python -m ops.preflight", description="Preflight.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--file", type=Path, help="default: Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    problems = check_stack(args.stack, args.file)
    if problems:
        print(f"preflight {args.stack}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"preflight {args.stack}: ready for pulumi preview")
    return 0


if __name__ == "__main__":
    sys.exit(main())
