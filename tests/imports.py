"""The package's own import graph, read from the source: what each module imports, at any depth.

Imports inside functions count (the package imports heavy libraries lazily), and so do the
package ``__init__`` files that hold more than a docstring, since importing a module runs them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lead_conversion_prediction.config import PROJ_ROOT

PACKAGE = "lead_conversion_prediction"


def module_file(name: str) -> Path | None:
    """The file of a module of the package, or None for anything else."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    base = PROJ_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """The package modules a file imports: ``import a.b``, ``from a import b`` (b a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found: set[str] = set()
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            prefix = ".".join(parts[:depth])
            if module_file(prefix) is not None:
                found.add(prefix)
    return found


def runs_code(path: Path) -> bool:
    """False for a package ``__init__`` that holds only its docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body
    )


def import_closure(module: str) -> set[Path]:
    """Every file of the package that importing ``module`` can run, itself included."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is not None:
            pending.extend(imported_modules(path) - seen)
    files = {module_file(name) for name in seen}
    return {path for path in files if path is not None and runs_code(path)}
