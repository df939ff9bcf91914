"""Print the requirements a wheel directory is missing, judged by the interpreter running this.

    python wheel-closure.py WHEEL_DIR ROOT_PROJECT

Walks the Requires-Dist metadata of the wheels in WHEEL_DIR, starting from ROOT_PROJECT, and
evaluates every environment marker (python_full_version, platform, extras...) for the
interpreter that runs this script. Prints one requirement per line that no wheel in the
directory satisfies; prints nothing when the directory is complete.

Why: CI builds the service's wheels on the host (which reaches the package index), but the
image's Python can differ in patch version from the host's (Debian's 3.11.2 vs 3.11.7), and
markers such as `python_full_version < "3.11.3"` then call for packages the host never
fetched. .ci/image-leg.sh runs this inside the base image and fetches what it prints.

Needs only `packaging`: installed, or pip's vendored copy (the official python images have
pip; Debian's python3-venv ships pip as a wheel under /usr/share/python-wheels).
"""

from __future__ import annotations

import glob
import re
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # no standalone packaging: pip's vendored copy
    sys.path[:0] = sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))[-1:]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]


def read_wheels(wheel_dir: Path) -> dict[str, list[tuple[Version, list[str]]]]:
    """name -> [(version, Requires-Dist lines)] for every wheel in the directory."""
    found: dict[str, list[tuple[Version, list[str]]]] = {}
    for whl in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(whl) as zf:
            meta_name = next(
                n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)
            )
            meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
        name = canonicalize_name(meta["Name"])
        found.setdefault(name, []).append(
            (Version(meta["Version"]), meta.get_all("Requires-Dist") or [])
        )
    return found


def missing(wheel_dir: Path, root: str) -> list[str]:
    wheels = read_wheels(wheel_dir)
    out: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    queue: list[Requirement] = [Requirement(root)]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        candidates = [
            (v, deps)
            for v, deps in wheels.get(name, [])
            if req.specifier.contains(v, prereleases=True)
        ]
        if not candidates:
            # Without its marker: the host's pip would evaluate it for the host and skip it.
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            out.append(f"{req.name}{extras}{req.specifier}")
            continue
        _, deps = max(candidates, key=lambda c: c[0])
        for line in deps:
            dep = Requirement(line)
            if dep.marker is None or any(
                dep.marker.evaluate({"extra": extra}) for extra in ({""} | set(req.extras))
            ):
                queue.append(dep)
    return sorted(set(out))


if __name__ == "__main__":
    for line in missing(Path(sys.argv[1]), sys.argv[2]):
        print(line)
