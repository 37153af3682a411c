from pathlib import Path

import pytest
import yaml

from lead_conversion_prediction.config import (
    PROJ_ROOT,
    Paths,
    default_tracking_uri,
    load_params,
    run_root,
)
from lead_conversion_prediction.exceptions import ConfigError, InputNotFoundError


def test_the_project_parameters_load_into_typed_sections() -> None:
    params = load_params(PROJ_ROOT / "params.yaml")
    assert params.split.test_size == 0.15 and params.split.random_state == 42
    assert params.train.candidates == ["xgboost_rf", "logistic_regression", "xgboost"]
    assert params.train.sections()["xgboost_rf"]["n_iter"] == 10  # as written: checked by train
    assert params.train.metric == "neg_log_loss"
    assert params.train.calibration.methods == ["sigmoid"]
    assert params.threshold == 0.5
    assert params.registry.model_name == "lead_model"


def write_params(tmp_path: Path, change: dict[str, object]) -> Path:
    raw = yaml.safe_load((PROJ_ROOT / "params.yaml").read_text())
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        section = raw
        for parent in parents:
            section = section[parent]
        section[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split.test_size": 1.5}, "split.test_size: Input should be less than 1"),
        ({"threshold": 1.5}, "threshold: Input should be less than or equal to 1"),
        ({"data.max_date": "2023-12-31"}, "max_date 2023-12-31 is before min_date"),
        ({"train.calibration.methods": ["platt"]}, "train.calibration.methods.0: Input should"),
    ],
)
def test_invalid_parameters_name_the_file_and_the_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = write_params(tmp_path, change)
    with pytest.raises(ConfigError, match=message) as caught:
        load_params(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_bad_search_section_does_not_stop_the_stages_that_do_not_train(tmp_path: Path) -> None:
    path = write_params(tmp_path, {"train.xgboost_rf.n_iter": 0, "train.n_jobs_typo": 2})
    assert load_params(path).data.source == "signup"  # train checks it (modeling/candidates.py)


def test_a_missing_or_broken_parameter_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"params\.yaml: not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_every_path_follows_one_root(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    for name in ("raw_data", "leads", "X_test", "lead_model", "validator_model", "metrics"):
        assert getattr(paths, name).is_relative_to(tmp_path)
    assert paths.candidate_model("x").parent == paths.candidates_dir


def test_the_run_root_comes_from_lcp_root_then_dvc_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LCP_ROOT", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert run_root() == PROJ_ROOT
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "dvc"))
    assert run_root() == tmp_path / "dvc"
    monkeypatch.setenv("LCP_ROOT", str(tmp_path / "lcp"))
    assert run_root() == tmp_path / "lcp"


def test_the_tracking_store_is_an_absolute_sqlite_file_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("LCP_ROOT", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # an experiment's copy logs to the same store
    assert default_tracking_uri() == f"sqlite:///{PROJ_ROOT / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert default_tracking_uri() == "http://tracking:5000"


def test_dvc_s_keeps_every_comment_of_params_yaml(tmp_path: Path) -> None:
    """`dvc exp run -S` rewrites params.yaml: a comment where DVC's writer drops it (after a
    list item) would be lost from the user's file. Only the changed line may differ."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    from lead_conversion_prediction.config import PROJ_ROOT

    copy = tmp_path / "params.yaml"
    shutil.copy(PROJ_ROOT / "params.yaml", copy)
    apply_overrides(str(copy), ["split.random_state=7"])
    before = (PROJ_ROOT / "params.yaml").read_text().splitlines()
    after = copy.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=False) if old != new]
    assert len(before) == len(after), "lines were dropped or added"
    assert changed == [("  random_state: 42", "  random_state: 7")]
