"""Re-resolve the Dagger module's lock, dagger/uv.lock, with or without the Dagger CLI.

    python scripts/lock_dagger.py [--check | --upgrade | any other `uv lock` argument]

The module depends on the SDK that `dagger develop` generates into dagger/sdk/ (ignored by
git), and `uv lock` reads that folder's metadata. Where it exists, this runs `uv lock` in
dagger/. Where it does not (no Dagger CLI), the lock is resolved in a copy of the module
whose dagger/sdk/ is a stand-in carrying only the metadata that dagger/uv.lock records for the
SDK: the same resolution, so the engine's own `uv lock` finds nothing to change.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "dagger"
UV = Path(sys.executable).parent / "uv"
SDK = "dagger-io"


def requirement(entry: dict[str, Any]) -> str:
    """A uv.lock ``requires-dist`` entry as a PEP 508 requirement."""
    extras = f"[{','.join(entry['extras'])}]" if entry.get("extras") else ""
    marker = f" ; {entry['marker']}" if entry.get("marker") else ""
    return f"{entry['name']}{extras}{entry.get('specifier', '')}{marker}"


def quoted(items: list[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def stand_in(folder: Path, name: str, metadata: dict[str, Any]) -> None:
    """A metadata-only project: the dependencies and groups a uv.lock records for a package."""
    lines = [
        "[project]",
        f'name = "{name}"',
        'version = "0.0.0"',
        f"dependencies = {quoted([requirement(e) for e in metadata.get('requires-dist', [])])}",
    ]
    groups = metadata.get("requires-dev", {})
    sources: list[str] = []
    if groups:
        lines.append("[dependency-groups]")
        for group, entries in groups.items():
            lines.append(f"{group} = {quoted([requirement(entry) for entry in entries])}")
            for entry in entries:
                if "editable" in entry:
                    # A path inside the SDK (its code generator): a stand-in of its own.
                    relative = Path(entry["editable"]).relative_to("sdk")
                    stand_in(folder / relative, entry["name"], {})
                    sources.append(f'{entry["name"]} = {{ path = "{relative}", editable = true }}')
    if sources:
        lines += ["[tool.uv.sources]", *sources]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def lock(arguments: list[str]) -> int:
    command = [str(UV), "lock", "--quiet", *arguments]
    if (MODULE / "sdk" / "pyproject.toml").is_file():
        return subprocess.run(command, cwd=MODULE, check=False).returncode
    packages = tomllib.loads((MODULE / "uv.lock").read_text(encoding="utf-8"))["package"]
    (sdk,) = [package for package in packages if package["name"] == SDK]
    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary)
        for name in ("pyproject.toml", "uv.lock"):
            shutil.copy2(MODULE / name, copy / name)
        stand_in(copy / "sdk", SDK, sdk.get("metadata", {}))
        code = subprocess.run(command, cwd=copy, check=False).returncode
        if code == 0 and "--check" not in arguments:
            shutil.copy2(copy / "uv.lock", MODULE / "uv.lock")
    return code


if __name__ == "__main__":
    sys.exit(lock(sys.argv[1:]))
