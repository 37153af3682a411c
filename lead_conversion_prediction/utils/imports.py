"""The package's own imports, read from its source: what each module imports, at any depth.

Imports inside functions count (the package imports heavy libraries lazily), and importing
``a.b.c`` runs ``a`` and ``a.b`` first, so those count too. Used to find the code a logged
model needs (``modeling/model_code.py``) and, in the tests, the import graph and each stage's
code deps.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "lead_conversion_prediction"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def module_file(name: str) -> Path | None:
    """The source file of a module of the package, or None for anything else."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    base = PACKAGE_DIR.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str = "") -> set[str]:
    """The package modules a file imports: ``import a.b``, ``from a import b`` (b a module),
    and their enclosing packages. Relative imports count when the file's ``module`` is given."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not module:
                    continue
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found: set[str] = set()
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            prefix = ".".join(parts[:depth])
            if module_file(prefix) is not None:
                found.add(prefix)
    return found


def import_closure(modules: Iterable[str]) -> set[str]:
    """The package modules that importing ``modules`` can run, those included."""
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        pending.extend(imported_modules(path, name) - seen)
    return seen
