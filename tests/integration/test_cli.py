import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import lcp_here, run_lcp

pytestmark = pytest.mark.long(seconds=8)

COMMANDS = [
    "fetch",
    "data",
    "features",
    "train",
    "evaluate",
    "register",
    "package",
    "validate",
    "pipeline",
]


def lcp(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """An lcp command in this process (the commands' checks and messages); what depends on
    the process itself (start-up imports, another process holding the checkout) runs
    ``run_lcp``."""
    return lcp_here(*args, env={"LCP_ROOT": str(root)} if root else None)


def test_help_lists_one_command_per_stage() -> None:
    result = lcp("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout


def test_the_cli_imports_no_heavy_library_before_a_command_runs() -> None:
    code = (
        "import sys, lead_conversion_prediction.cli;"
        "print([m for m in ('pandas', 'sklearn', 'xgboost', 'mlflow') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def bad_raw_file(root: Path, make_leads: Callable[..., pd.DataFrame]) -> Path:
    leads = make_leads(n=40).astype({"time_spent": "object"})
    leads.loc[6, "time_spent"] = "12 min"
    path = root / "incoming.csv"
    leads.to_csv(path, index=False)
    return path


def test_bad_input_is_one_line_exit_2_and_no_partial_output(
    project: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    raw = bad_raw_file(project, make_leads)
    before = raw.read_bytes()
    result = lcp("data", "--raw", str(raw), "--accept-changed-raw", root=project)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert (
        message == f"error: {raw}: column 'time_spent': value '12 min' is not a number at line 8"
    )
    assert "Traceback" not in result.stderr
    assert not (project / "data" / "interim").exists()
    assert raw.read_bytes() == before


def test_a_failed_run_keeps_the_previous_outputs(
    project: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    good = project / "good.csv"
    make_leads(n=40).to_csv(good, index=False)
    assert lcp("data", "--raw", str(good), "--accept-changed-raw", root=project).returncode == 0
    leads = project / "data" / "interim" / "leads.csv"
    previous = leads.read_bytes()

    result = lcp(
        "data",
        "--raw",
        str(bad_raw_file(project, make_leads)),
        "--accept-changed-raw",
        root=project,
    )
    assert result.returncode == 2
    assert leads.read_bytes() == previous
    assert sorted(p.name for p in leads.parent.iterdir()) == ["data_summary.json", "leads.csv"]


def test_a_raw_file_other_than_the_pinned_one_is_refused_unless_accepted(
    project: Path, make_leads: Callable[..., pd.DataFrame]
) -> None:
    raw = project / "other.csv"
    make_leads(n=40).to_csv(raw, index=False)
    refused = lcp("data", "--raw", str(raw), root=project)
    assert refused.returncode == 2
    assert "is not the pinned 05663184eaf8f324162e4d1bc14be387" in refused.stderr
    accepted = lcp("data", "--raw", str(raw), "--accept-changed-raw", root=project)
    assert accepted.returncode == 0
    assert "accepted" in accepted.stderr


def test_debug_shows_the_traceback(project: Path) -> None:
    result = lcp("--debug", "data", "--raw", str(project / "absent.csv"), root=project)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "InputNotFoundError" in result.stderr


@pytest.mark.parametrize(
    ("stage", "missing", "writer"),
    [
        ("data", "data/raw/raw_data.csv", "fetch it with 'make fetch' (lcp fetch)"),
        ("features", "data/interim/leads.csv", "run 'lcp data' first"),
        ("train", "data/processed/preprocessor.joblib", "run 'lcp features' first"),
        ("evaluate", "models/candidates/summary.json", "run 'lcp train' first"),
        ("register", "models/candidates/summary.json", "run 'lcp train' first"),
        ("package", "models/model.pkl", "run 'lcp train' first"),
        ("validate", "data/processed/X_test.csv", "run 'lcp features' first"),
    ],
)
def test_a_stage_run_before_its_inputs_exist_says_what_to_run(
    project: Path, stage: str, missing: str, writer: str
) -> None:
    arguments = ["validate", "--model", str(project / "models" / "model.pkl")]
    result = lcp(*(arguments if stage == "validate" else [stage]), root=project)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {project / missing}: not found; {writer}"
        + (" (or 'dvc repro')" if writer.startswith("run") else "")
    )


def test_the_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    result = lcp("--version")
    assert (result.returncode, result.stdout.strip()) == (
        0,
        f"lcp {version('lead-conversion-prediction')}",
    )


def test_the_help_fits_in_80_columns_with_choices_and_defaults() -> None:
    result = run_lcp("predict", "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "--on-error <fail|skip>" in result.stdout
    assert "--output-format <csv|parquet>" in result.stdout
    assert "[default: 100000; x>=1000]" in result.stdout
    assert "<bool>" not in result.stdout
    overview = run_lcp("--help", env={"COLUMNS": "80"}).stdout
    commands = overview.split("Commands:")[1].splitlines()
    assert not [line for line in commands if line.endswith("...")], "every summary is whole"


def test_invalid_parameters_stop_every_command(project: Path) -> None:
    (project / "params.yaml").write_text("data:\n  min_date: not-a-date\n")
    result = lcp("data", root=project)
    assert result.returncode == 2
    assert f"error: {project / 'params.yaml'}: data.min_date" in result.stderr


@pytest.mark.parametrize(
    ("promotion", "problem"),
    [
        (
            {"tolerance": {"roc_auc": 0.005, "log_loss": -0.01}},
            "promotion.tolerance.log_loss: Input should be greater than or equal to 0",
        ),
        ({"margin": 1.0}, "promotion.margin: Input should be less than 1"),
    ],
)
@pytest.mark.parametrize("command", ["promote", "train"])
def test_a_promotion_rule_that_cannot_be_met_stops_lcp_promote_and_lcp_train(
    project: Path, command: str, promotion: dict[str, object], problem: str
) -> None:
    params = project / "params.yaml"
    settings = yaml.safe_load(params.read_text())
    settings["promotion"].update(promotion)
    params.write_text(yaml.safe_dump(settings))
    result = lcp(command, root=project)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {params}: {problem}"] and "Traceback" not in result.stderr
    assert not (project / "models").exists()


def test_lcp_verify_names_every_problem_on_its_own_line(project: Path) -> None:
    from lead_conversion_prediction.utils.storage import artifact_set

    models, manifest = project / "models", project / "models" / "SHA256SUMS"
    with artifact_set(models) as written:  # a whole model set, as the stages write it
        for name in ("lead_model.joblib", "model.pkl", "columns_list.json"):
            written.save({"a": name}, name)
        written.write_json({}, "reference_profile.json")
    assert lcp("verify", root=project).returncode == 0
    (models / "lead_model.joblib").write_bytes(b"changed")
    (models / "model.pkl").unlink()
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if "columns_list.json" not in line))
    result = lcp("verify", root=project)
    assert result.returncode == 2
    assert sorted(result.stderr.strip().splitlines()[-3:]) == sorted(
        [
            f"error: {manifest}: does not list columns_list.json, which every model set holds",
            f"error: {models / 'lead_model.joblib'}: checksum differs from {manifest}",
            f"error: {models / 'model.pkl'}: listed in {manifest} but missing",
        ]
    )


def test_a_writing_command_refuses_while_another_holds_the_checkout(project: Path) -> None:
    import os

    from lead_conversion_prediction.utils.locking import checkout_lock

    with checkout_lock(project, "pipeline"):
        result = lcp("features", root=project)
        waited = run_lcp("--wait", "0.5", "data", env={"LCP_ROOT": str(project)})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {project}: lcp pipeline (pid {os.getpid()}, since ")
    )
    assert waited.returncode == 2 and "waiting up to 0.5 s" in waited.stderr
    assert lcp("features", root=project).returncode == 2  # now free: fails on its own input
    assert "is running" not in lcp("features", root=project).stderr
