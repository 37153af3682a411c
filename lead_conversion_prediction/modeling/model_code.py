"""The package's code a logged model carries: the modules it needs to load, and no other.

MLflow copies a model's ``code_paths`` into its ``code/`` folder, and a tracking server stores
(and later serves) each file with a request of its own. The model needs only what loads it:
``scoring/registered_model.py`` and the modules it imports, at the top or inside functions,
and the modules of the types its Pipeline holds (read by skops), with theirs. That set is
found by reading the package's imports, so a new import is carried without a list to update.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from lead_conversion_prediction.utils.imports import (
    PACKAGE,
    PACKAGE_DIR,
    import_closure,
    module_file,
)

LOADER = f"{PACKAGE}.scoring.registered_model"


def model_modules(type_names: Iterable[str]) -> list[str]:
    """Every module of the package that loading a model holding ``type_names`` may import."""
    starts = [LOADER]
    for name in type_names:  # "package.module.Class": the prefixes that are modules
        parts = name.split(".")
        starts += [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return sorted(import_closure(starts))


def stage_model_code(type_names: Iterable[str], folder: Path) -> Path:
    """Copy the modules a model needs into ``folder/<package>/``; return that package folder."""
    for module in model_modules(type_names):
        source = module_file(module)
        assert source is not None
        target = folder / source.relative_to(PACKAGE_DIR.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder / PACKAGE
