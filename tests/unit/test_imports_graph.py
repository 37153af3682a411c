"""The package's import graph, read from the source: no circle, and each layer where it belongs.

Imports inside functions count (``tests/imports.py``): a lazy import still makes DVC re-run a
stage when the imported module changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from lead_conversion_prediction.config import PROJ_ROOT
from tests.imports import PACKAGE, import_closure, imported_modules, module_file

EXCEPTIONS = f"{PACKAGE}.exceptions"
CANDIDATES = f"{PACKAGE}/modeling/candidates.py"


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name, packages by their own name."""
    modules = {}
    for path in sorted((PROJ_ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(PROJ_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """What each module imports from the package, its own enclosing packages left out (they
    run first, whatever imports the module)."""
    return {
        name: {
            imported
            for imported in imported_modules(path)
            if imported != name and not name.startswith(f"{imported}.")
        }
        for name, path in package_modules().items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path around each circle a depth-first walk of ``graph`` meets."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        for imported in sorted(graph.get(name, ())):
            if imported in path:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                walk(imported, [*path, imported])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            walk(name, [name])
    return found


def test_the_package_imports_form_no_circle() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.config" in graph and graph[f"{PACKAGE}.stages.train"]
    assert circles(graph) == []


def test_a_circle_is_found_at_any_depth() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert circles(graph) == [["a", "b", "c", "a"]]


def test_config_imports_nothing_from_the_package_but_exceptions() -> None:
    assert import_graph()[f"{PACKAGE}.config"] <= {PACKAGE, EXCEPTIONS}


def test_the_utilities_and_the_contract_know_no_stage_config_or_model() -> None:
    lower = [name for name in import_graph() if name.startswith(f"{PACKAGE}.utils")]
    for name in [*lower, f"{PACKAGE}.schema", f"{PACKAGE}.exceptions"]:
        closure = {str(path.relative_to(PROJ_ROOT)) for path in import_closure(name)}
        above = {path for path in closure if path.startswith((f"{PACKAGE}/stages", CANDIDATES))}
        assert f"{PACKAGE}/config.py" not in closure and not above, name


def test_the_contract_reads_and_writes_no_file() -> None:
    closure = {str(path.relative_to(PROJ_ROOT)) for path in import_closure(f"{PACKAGE}.schema")}
    for io in ("utils/files.py", "utils/storage.py", "csv_io.py"):
        assert f"{PACKAGE}/{io}" not in closure


def test_every_exception_class_lives_in_exceptions_py() -> None:
    defined = {
        node.name
        for node in ast.walk(ast.parse((PROJ_ROOT / PACKAGE / "exceptions.py").read_text()))
        if isinstance(node, ast.ClassDef)
    }
    elsewhere = []
    for name, path in package_modules().items():
        if name == EXCEPTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {base.id if isinstance(base, ast.Name) else "" for base in node.bases}
            bases |= {base.attr for base in node.bases if isinstance(base, ast.Attribute)}
            if bases & defined or any(base.endswith(("Error", "Exception")) for base in bases):
                elsewhere.append(f"{path.relative_to(PROJ_ROOT)}: {node.name}")
    assert elsewhere == []


def test_a_change_to_a_search_leaves_data_and_features_up_to_date() -> None:
    """Neither a search range in ``modeling/candidates.py`` nor one in ``params.yaml``'s
    ``train`` section is among what DVC hashes for the stages before training."""
    stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert module_file(f"{PACKAGE}.modeling.candidates") == PROJ_ROOT / CANDIDATES
    assert CANDIDATES in stages["train"]["deps"]
    for stage in ("data", "features"):
        closure = {
            str(path.relative_to(PROJ_ROOT))
            for path in import_closure(f"{PACKAGE}.stages.{stage}")
        }
        assert CANDIDATES not in closure
        assert CANDIDATES not in stages[stage]["deps"] and PACKAGE not in stages[stage]["deps"]
        params = [next(iter(p)) if isinstance(p, dict) else p for p in stages[stage]["params"]]
        assert not any(
            key in ("params.yaml", "train") or key.startswith("train.") for key in params
        )


def test_no_module_is_over_400_lines() -> None:
    """One job per module: a module that grows past this splits."""
    package = PROJ_ROOT / "lead_conversion_prediction"
    long = {
        str(path.relative_to(package)): lines
        for path in package.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}
