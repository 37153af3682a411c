"""Print the version constraints that `make lock` resolves requirements-dagger.txt under.

    python scripts/lock_constraints.py > constraints.txt

The Dagger SDK's own dependencies take the versions of dagger/uv.lock, the lock the Dagger
engine installs the module from; every other package takes its version in
requirements-dev.lock, so that the tools both environments share are the same release.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """A package name as the index compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def module_lock(path: Path) -> dict[str, str]:
    """Registry packages of a uv.lock (editable sources such as the generated SDK left out)."""
    packages = tomllib.loads(path.read_text(encoding="utf-8"))["package"]
    return {
        canonical(package["name"]): package["version"]
        for package in packages
        if "registry" in package.get("source", {})
    }


def pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a requirements lock."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            found[canonical(match[1])] = match[2]
    return found


def constraints() -> dict[str, str]:
    return {**pins(ROOT / "requirements-dev.lock"), **module_lock(ROOT / "dagger" / "uv.lock")}


def main() -> None:
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in constraints().items()))


if __name__ == "__main__":
    main()
