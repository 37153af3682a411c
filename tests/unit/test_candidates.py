from pathlib import Path

import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT, load_params
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.candidates import (
    CANDIDATES,
    RandInt,
    Uniform,
    build_candidate,
    candidate_sections,
)
from lead_conversion_prediction.schema import MODEL_COLUMNS
from tests.unit.test_config import write_params


def test_the_candidate_sections_are_checked_into_typed_searches() -> None:
    sections = candidate_sections(load_params(PROJ_ROOT / "params.yaml").train)
    forest = sections["xgboost_rf"]
    assert forest.space["max_depth"] == RandInt(randint=(3, 14))
    assert forest.space["subsample"] == Uniform(uniform=(0.5, 1.0))
    assert sections["xgboost"].monotone_increasing == ("purchases", "n_visits")
    assert set(sections) == {
        "xgboost_rf",
        "logistic_regression",
        "xgboost",
        "hist_gradient_boosting",
    }


def test_a_listed_candidate_without_a_section_is_checked_with_none(tmp_path: Path) -> None:
    path = write_params(tmp_path, {})
    raw = yaml.safe_load(path.read_text())
    del raw["train"]["xgboost"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="train: xgboost: space: Field required"):
        candidate_sections(load_params(path).train, path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train.n_jobs_typo": 2}, "train: .*'n_jobs_typo' is neither a setting nor a candidate"),
        ({"train.candidates": ["svm"]}, "unknown candidate 'svm' \\(known: xgboost_rf, "),
        ({"train.xgboost_rf.n_iter": 0}, "train: .*xgboost_rf: n_iter: Input should be greater"),
        (
            {"train.xgboost_rf.space.subsample": {"uniform": [0.0, 1.0]}},
            r"xgboost_rf: .*space.subsample: must stay within \[0.5, 1\]",
        ),
        (
            {"train.xgboost.space.min_child_weight": [0.1, 5]},
            r"xgboost: .*space.min_child_weight: must stay within \[1, 20\]",
        ),
        (
            {"train.xgboost_rf.space.learning_rate": {"uniform": [0.01, 0.31]}},
            r"xgboost_rf: .*space.learning_rate: must stay within \[0.5, 1\]",
        ),
        (
            {"train.xgboost.space.objective": ["reg:squarederror"]},
            "xgboost: .*space.objective: only binary:logistic, reg:logistic give probabilities",
        ),
        (
            {"train.logistic_regression.penalties": {"l1": "lbfgs"}},
            "logistic_regression: .*penalties.l1: solver lbfgs does not support it",
        ),
        (
            {"train.logistic_regression.C": [1.0, 0.1, 1.0]},
            "logistic_regression: .*C: a strength listed twice repeats a model",
        ),
        (
            {"train.logistic_regression.penalties": {"l3": "saga"}},
            r"logistic_regression: penalties.l3.\[key\]: Input should be",
        ),
    ],
)
def test_invalid_candidate_sections_name_the_file_and_the_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = write_params(tmp_path, change)
    with pytest.raises(ConfigError, match=message) as caught:
        candidate_sections(load_params(path).train, path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_every_candidate_that_can_take_monotone_constraints_has_them() -> None:
    sections = candidate_sections(load_params(PROJ_ROOT / "params.yaml").train)
    unconstrained = []
    for name in CANDIDATES:
        candidate = build_candidate(name, sections[name], 42)
        if candidate.monotone_increasing is None:
            unconstrained.append(name)
            continue
        assert set(candidate.monotone_increasing) == {"purchases", "n_visits"}, name
        params = candidate.estimator.get_params()
        written = params.get("monotone_constraints") or params.get("monotonic_cst")
        flags = [int(flag) for flag in str(written).strip("()[]").split(",")]
        assert [c for c, f in zip(MODEL_COLUMNS, flags, strict=True) if f == 1] == [
            "purchases",
            "n_visits",
        ], name
    assert unconstrained == ["logistic_regression"]  # the model card says it cannot be


def test_histogram_boosting_never_lowers_the_probability_with_more_visits() -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((400, len(MODEL_COLUMNS))), columns=list(MODEL_COLUMNS))
    y = (X["n_visits"] < 0.5).astype(int)  # the data would have it fall with more visits
    section = candidate_sections(load_params(PROJ_ROOT / "params.yaml").train)
    model = build_candidate("hist_gradient_boosting", section["hist_gradient_boosting"], 42)
    fitted = model.estimator.set_params(max_iter=30).fit(X, y)
    grid = pd.concat([X.iloc[[0]]] * 11, ignore_index=True)
    grid["n_visits"] = np.linspace(0, 1, 11)
    assert (np.diff(fitted.predict_proba(grid)[:, 1]) >= 0).all()
