from pathlib import Path

from lead_conversion_prediction.modeling.model_code import model_modules, stage_model_code
from lead_conversion_prediction.utils.imports import PACKAGE, imported_modules


def test_the_loader_its_imports_and_the_models_types_are_carried_with_their_packages() -> None:
    modules = model_modules([f"{PACKAGE}.features.CategoryCoder", "sklearn.pipeline.Pipeline"])
    for needed in (
        PACKAGE,
        f"{PACKAGE}.scoring",
        f"{PACKAGE}.scoring.registered_model",
        f"{PACKAGE}.scoring.pyfunc",  # imported by the loader
        f"{PACKAGE}.schema",  # imported by pyfunc
        f"{PACKAGE}.features",  # a type the Pipeline holds
    ):
        assert needed in modules, needed
    assert not any(
        module.startswith((f"{PACKAGE}.cli", f"{PACKAGE}.stages")) for module in modules
    )


def test_imports_inside_functions_and_relative_ones_count(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\n"
        "from . import schema\n"
        "def later():\n"
        "    from lead_conversion_prediction.utils.files import reading\n"
        "    import lead_conversion_prediction.breaches\n"
    )
    found = imported_modules(source, f"{PACKAGE}.probe")
    assert {f"{PACKAGE}.schema", f"{PACKAGE}.utils.files", f"{PACKAGE}.breaches"} <= found
    assert "os" not in found


def test_the_staged_code_is_a_package_of_those_modules_only(tmp_path: Path) -> None:
    staged = stage_model_code([], tmp_path / "code")
    assert staged == tmp_path / "code" / PACKAGE
    files = {path.relative_to(tmp_path / "code").as_posix() for path in staged.rglob("*.py")}
    expected = {
        module.replace(".", "/")
        + ("/__init__.py" if (staged.parent / module.replace(".", "/")).is_dir() else ".py")
        for module in model_modules([])
    }
    assert files == expected
    assert not list(staged.rglob("__pycache__"))
