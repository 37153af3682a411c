"""The package's code a logged model carries: the modules it needs to load, and no other.

MLflow copies a model's ``code_paths`` into its ``code/`` folder, and a tracking server stores
(and later serves) each file with a request of its own. The model needs only what loads it:
``scoring/registered_model.py`` and the modules it imports, at the top or inside functions,
and the modules of the types its Pipeline holds (read by skops), with theirs. That set is
found by reading the package's imports, so a new import is carried without a list to update.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "lead_conversion_prediction"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
LOADER = f"{PACKAGE}.scoring.registered_model"


def module_file(module: str) -> Path | None:
    """The source file of a module of the package, or None when it is not one."""
    if module != PACKAGE and not module.startswith(f"{PACKAGE}."):
        return None
    path = PACKAGE_DIR.parent.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """The package's modules (and names that may be modules) a source file imports."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if module_file(name) is not None}


def model_modules(type_names: Iterable[str]) -> list[str]:
    """Every module of the package that loading a model holding ``type_names`` may import."""
    todo = [LOADER]
    for name in type_names:  # "package.module.Class": its longest prefix that is a module
        parts = name.split(".")
        todo += [".".join(parts[:end]) for end in range(len(parts), 0, -1)]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        path = module_file(module)
        if path is None or module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:end]) for end in range(1, len(parts))]  # its packages
        todo += imported_modules(path, module)
    return sorted(seen)


def stage_model_code(type_names: Iterable[str], folder: Path) -> Path:
    """Copy the modules a model needs into ``folder/<package>/``; return that package folder."""
    for module in model_modules(type_names):
        source = module_file(module)
        assert source is not None
        target = folder / source.relative_to(PACKAGE_DIR.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder / PACKAGE
