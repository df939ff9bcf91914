"""Policy pack entry point (``pulumi preview --policy-pack infra/policy``).

Constructing ``PolicyPack`` starts the analyzer server and blocks, so it happens here only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file by path; make the repository root importable for ``infra.policy``.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import PolicyPack  # noqa: E402

from infra.policy.rules import RESOURCE_POLICIES, STACK_POLICIES  # noqa: E402

PolicyPack(name="cortiware", policies=[*RESOURCE_POLICIES, *STACK_POLICIES])
