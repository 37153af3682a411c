"""The package's own import graph for the tests: the files that importing a module can run.

What each module imports is read by the package itself (``utils/imports.py``, which also finds
the code a logged model carries); package ``__init__`` files that hold only a docstring run
nothing, so they are left out of a closure's files.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lead_conversion_prediction.utils.imports import (
    PACKAGE,
    imported_modules,
    module_file,
)
from lead_conversion_prediction.utils.imports import (
    import_closure as module_closure,
)

__all__ = ["PACKAGE", "import_closure", "imported_modules", "module_file", "runs_code"]


def runs_code(path: Path) -> bool:
    """False for a package ``__init__`` that holds only its docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body
    )


def import_closure(module: str) -> set[Path]:
    """Every file of the package that importing ``module`` can run, itself included."""
    files = {module_file(name) for name in module_closure([module])}
    return {path for path in files if path is not None and runs_code(path)}
