"""Pulumi entry point (``main: infra/`` in ``Pulumi.yaml``): read the config, build, export."""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file by path, which puts infra/ (not the repository root) on sys.path;
# the program imports itself as the ``infra`` package, so make the root importable.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pulumi  # noqa: E402

from infra.config import load  # noqa: E402
from infra.program import build  # noqa: E402

for _name, _value in build(load()).items():
    pulumi.export(_name, _value)
