"""Helpers for the tests: tiny lead frames, project roots, and the shared real data."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.config import PROJ_ROOT

SHARED_DIR = Path(os.environ.get("LCP_SHARED_DIR", PROJ_ROOT.parent / "shared")).resolve()
RAW_MD5 = "05663184eaf8f324162e4d1bc14be387"


def shared_file(*parts: str) -> Path:
    """Return a file of the shared data folder, failing the test clearly if it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the tests need the shared data folder beside the project "
            "(or LCP_SHARED_DIR pointing at it)"
        )
    return path


def md5_of(path: Path) -> str:
    """Return the md5 of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_project(root: Path, raw: Path | None = None) -> Path:
    """Lay out a project root with the real params and DVC pin, the raw file linked in."""
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJ_ROOT / "params.yaml", root / "params.yaml")
    shutil.copy(PROJ_ROOT / "data" / "raw" / "raw_data.csv.dvc", root / "data" / "raw")
    if raw is not None:
        (root / "data" / "raw" / "raw_data.csv").symlink_to(raw)
    return root


def make_raw_leads(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small raw lead frame in the raw file's schema, every level of each category present."""
    rng = np.random.default_rng(seed)
    groups = np.resize(np.arange(1, 10), n)
    return pd.DataFrame(
        {
            "lead_id": np.arange(n),
            "lead_indicator": np.resize([0.0, 1.0], n),
            "date_part": [f"2024-01-{1 + i % 31}" for i in range(n)],
            "is_active": 0,
            "source": np.resize(["signup", "signup", "organic", "li", "fb", "signup"], n),
            "purchases": rng.integers(0, 10, n),
            "time_spent": rng.uniform(10, 200, n).round(3),
            "customer_group": groups,
            "onboarding": np.resize([True, False, True], n),
            "customer_code": np.resize(["ABC", None], n),
            "n_visits": rng.integers(1, 20, n),
        }
    )


def fit_small_model(n: int = 200, seed: int = 1) -> Any:
    """A lead model Pipeline (the real preprocessing, a logistic regression) on a small frame."""
    from sklearn.linear_model import LogisticRegression

    from lead_conversion_prediction.config import FeatureParams
    from lead_conversion_prediction.features import build_preprocessor, features_and_target
    from lead_conversion_prediction.modeling.train import assemble_model
    from lead_conversion_prediction.schema import validate_leads

    X, y = features_and_target(validate_leads(make_raw_leads(n=n, seed=seed), "train.csv"))
    preprocessor = build_preprocessor(FeatureParams()).fit(X)
    classifier = LogisticRegression().fit(preprocessor.transform(X), y)
    return assemble_model(preprocessor, classifier)


def run_lcp(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `lcp` command line as a user would, with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "lead_conversion_prediction", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
