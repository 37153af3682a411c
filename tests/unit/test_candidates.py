from pathlib import Path

import pytest
import yaml

from lead_conversion_prediction.config import PROJ_ROOT, load_params
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.candidates import RandInt, Uniform, candidate_sections
from tests.unit.test_config import write_params


def test_the_candidate_sections_are_checked_into_typed_searches() -> None:
    sections = candidate_sections(load_params(PROJ_ROOT / "params.yaml").train)
    forest = sections["xgboost_rf"]
    assert forest.space["max_depth"] == RandInt(randint=(3, 9))
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
