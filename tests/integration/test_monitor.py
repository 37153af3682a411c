"""`lcp monitor` and `lcp predict --monitor` on the real leads and the model trained on them.

The batches are the real leads resampled and shifted as a campaign would shift them. The
commands run in the test's process (``lcp_here``) against a copy of the pipeline's project
and store, so the monitoring runs they log stay here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.schema import MODEL_INPUT_COLUMNS
from tests.support import lcp_here
from tests.trained import PipelineRun

pytestmark = pytest.mark.long(seconds=30)


@dataclass(frozen=True)
class Project:
    root: Path
    tracking_uri: str

    def lcp(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        environment = {"LCP_ROOT": str(self.root), "MLFLOW_TRACKING_URI": self.tracking_uri}
        return lcp_here(*args, env=environment, stdin=stdin)

    @property
    def leads(self) -> pd.DataFrame:
        return read_raw_leads(self.root / "data" / "interim" / "leads.csv")


@pytest.fixture(scope="module")
def project(pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the pipeline's project and store: the monitoring runs are logged there."""
    folder = tmp_path_factory.mktemp("monitored")
    shutil.copytree(pipeline_run.root, folder / "project", symlinks=True)
    database = pipeline_run.tracking_uri.removeprefix("sqlite:///")
    shutil.copy2(database, folder / "mlflow.db")
    return Project(folder / "project", f"sqlite:///{folder / 'mlflow.db'}")


def write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def drift_of(folder: Path) -> dict[str, Any]:
    drift: dict[str, Any] = json.loads((folder / "drift.json").read_text())
    return drift


def test_twenty_resamples_of_the_real_leads_raise_at_most_one_false_alarm(
    project: Project,
) -> None:
    """Each resample is the size of the training rows, scored by the model: its counts
    against the model's own profile."""
    from lead_conversion_prediction.config import Paths, load_params
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.monitoring.counts import count_batch
    from lead_conversion_prediction.monitoring.drift import drift_report
    from lead_conversion_prediction.scoring.model import load_scoring_model

    paths = Paths(project.root)
    params = load_params(paths.params_file)
    loaded = load_scoring_model(str(paths.lead_model), paths.lead_model, with_profile=True)
    assert loaded.profile is not None
    leads = project.leads
    statuses = []
    for seed in range(20):
        batch = leads.sample(loaded.profile.rows, replace=True, random_state=seed)
        probability = positive_probability(
            loaded.model, batch[list(MODEL_INPUT_COLUMNS)].astype("float64")
        )
        counts = count_batch(loaded.profile, batch, probability)
        report = drift_report(loaded.profile, counts, params.monitor, "m", "resample", "-")
        statuses.append(report.status)
    assert statuses.count("alert") <= 1, statuses


def test_visits_scaled_by_half_again_alert_on_visits_and_the_prediction(
    project: Project, tmp_path: Path
) -> None:
    batch = write(project.leads.assign(n_visits=lambda f: f["n_visits"] * 1.5), tmp_path / "b.csv")
    result = project.lcp("monitor", "--input", batch, "--output", str(tmp_path / "report"))
    assert result.returncode == 3, result.stderr
    alerts = [line for line in result.stderr.splitlines() if line.startswith("drift alert:")]
    assert [line.split(":")[1].strip() for line in alerts] == ["n_visits", "prediction"]
    drift = drift_of(tmp_path / "report")
    assert drift["status"] == "alert" and drift["model"].startswith("models:/lead_model/")
    assert drift["inputs"][0]["name"] == "n_visits"  # the worst first
    html = (tmp_path / "report" / "report.html").read_text()
    assert "n_visits" in html and "data:image/png;base64," in html


def test_the_monitoring_run_is_logged_with_its_statistics_as_metrics(
    project: Project, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    batch = write(project.leads, tmp_path / "b.csv")
    result = project.lcp("monitor", "--input", batch, "--output", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    client = MlflowClient(project.tracking_uri)
    experiment = client.get_experiment_by_name("lead-conversion-monitoring")
    assert experiment is not None
    (run,) = client.search_runs(
        [experiment.experiment_id], f"tags.batch = '{batch}'", max_results=5
    )
    drift = drift_of(tmp_path / "report")
    assert run.data.tags["model"] == drift["model"] and run.data.tags["status"] == "ok"
    assert run.data.tags["batch_md5"] == drift["batch_md5"]
    visits = next(item for item in drift["inputs"] if item["name"] == "n_visits")
    psi = next(s for s in visits["statistics"] if s["name"] == "psi")["value"]
    assert run.data.metrics["n_visits.psi"] == pytest.approx(psi)
    assert run.data.metrics["rows"] == drift["rows"]
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"drift.json", "report.html"}


def test_a_customer_group_mix_tilted_to_the_low_groups_alerts_on_it(
    project: Project, tmp_path: Path
) -> None:
    """The real mix is nearly flat (298 to 348 leads per group), so reversing it moves no
    share by two points: the batch's mix falls from group 1 to group 9 instead."""
    leads = project.leads
    weights = 10 - leads["customer_group"].astype("float64")
    batch = leads.sample(len(leads), replace=True, weights=weights, random_state=1)
    result = project.lcp(
        "monitor", "-i", write(batch, tmp_path / "b.csv"), "--output", str(tmp_path / "r")
    )
    assert result.returncode == 3, result.stderr
    assert "drift alert: customer_group: js " in result.stderr
    assert "drift alert: n_visits" not in result.stderr


def test_leads_from_another_source_alert_on_the_source(
    project: Project, tmp_path: Path, real_raw_data: Path
) -> None:
    raw = pd.read_csv(real_raw_data)
    batch = write(raw[raw["source"] == "fb"], tmp_path / "fb.csv")
    result = project.lcp("monitor", "--input", batch, "--output", str(tmp_path / "r"))
    assert result.returncode == 3, result.stderr
    assert "drift alert: source: js 1 (alert at 0.1), unseen_share 1" in result.stderr
    assert drift_of(tmp_path / "r")["inputs"][0]["unseen_levels"] == ["fb"]


def test_predict_monitor_reports_what_lcp_monitor_does_and_scores_as_predict(
    project: Project, tmp_path: Path
) -> None:
    leads = write(project.leads.sample(1000, random_state=3), tmp_path / "leads.csv")
    plain = project.lcp("predict", "-i", leads, "-o", str(tmp_path / "plain.csv"))
    watched = project.lcp("predict", "-i", leads, "-o", str(tmp_path / "s.csv"), "--monitor")
    alone = project.lcp("monitor", "-i", leads, "--output", str(tmp_path / "alone"))
    of_scores = project.lcp(
        "monitor", "-i", str(tmp_path / "s.csv"), "--output", str(tmp_path / "sc")
    )
    for result in (plain, watched, alone, of_scores):
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "plain.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    beside, alone_drift = drift_of(tmp_path / "s.monitoring"), drift_of(tmp_path / "alone")
    assert beside["inputs"] == alone_drift["inputs"]
    assert beside["prediction"] == alone_drift["prediction"]
    scored = drift_of(tmp_path / "sc")  # the scores alone: the prediction, same model
    assert scored["inputs"] == [] and scored["model"] == beside["model"]
    # The scores file holds 6 significant digits: its bins' counts are the same, so the
    # statistics of the counts are too; the mean is that of the rounded probabilities.
    for mine, theirs in zip(
        scored["prediction"]["statistics"], beside["prediction"]["statistics"], strict=True
    ):
        exact = mine["name"] != "mean"
        assert mine["value"] == pytest.approx(theirs["value"], rel=1e-12 if exact else 1e-6), mine[
            "name"
        ]


def test_a_small_batch_is_monitored_and_called_weak(project: Project, tmp_path: Path) -> None:
    batch = write(project.leads.head(40), tmp_path / "small.csv")
    result = project.lcp("monitor", "--input", batch, "--output", str(tmp_path / "r"))
    assert result.returncode in (0, 3), result.stderr
    drift = drift_of(tmp_path / "r")
    assert drift["weak"] and drift["rows"] == 40
    assert all(
        s["status"] == "ok"
        for item in drift["inputs"]
        for s in item["statistics"]
        if s["name"] == "ks"
    )
    assert "the statistics are weak" in result.stderr


@pytest.mark.parametrize(
    ("make_batch", "options", "message"),
    [
        (
            lambda leads: leads.assign(purchases=-1.0),
            ("--on-error", "skip"),
            "no row was scored: nothing to monitor",
        ),
        (lambda leads: leads.drop(columns=["n_visits"]), (), "n_visits"),
        (lambda leads: leads.head(0), (), "no data rows"),
    ],
    ids=["every-row-rejected", "a-contract-column-missing", "no-rows"],
)
def test_a_batch_with_nothing_to_monitor_is_one_line_and_no_report(
    project: Project,
    tmp_path: Path,
    make_batch: Callable[[pd.DataFrame], pd.DataFrame],
    options: tuple[str, ...],
    message: str,
) -> None:
    batch = write(make_batch(project.leads.head(200)), tmp_path / "bad.csv")
    report = tmp_path / "r"
    result = project.lcp("monitor", "--input", batch, "--output", str(report), *options)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {batch}") and message in last
    assert not (report / "drift.json").exists() and not (report / "report.html").exists()


def test_scores_that_are_not_probabilities_are_named_by_line(
    project: Project, tmp_path: Path
) -> None:
    scores = pd.DataFrame({"lead_id": [1, 2, 3], "conversion_probability": [0.2, 1.5, 0.1]})
    batch = write(scores.assign(model="models:/lead_model/1"), tmp_path / "s.csv")
    result = project.lcp("monitor", "--input", batch, "--output", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {batch}: column 'conversion_probability': not a probability from 0 to 1 at line 3"
    )


def test_scores_of_two_models_need_model_even_when_the_second_starts_late(
    project: Project, tmp_path: Path
) -> None:
    probability = np.linspace(0.05, 0.95, 2500)
    named = ["models:/lead_model/1"] * 2000 + ["models:/lead_model/2"] * 500
    scores = pd.DataFrame({"lead_id": range(2500), "conversion_probability": probability})
    batch = write(scores.assign(model=named), tmp_path / "s.csv")
    report = tmp_path / "r"
    result = project.lcp(
        "monitor", "--input", batch, "--output", str(report), "--chunk-rows", "1000"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {batch}: the scores name 2 models; give --model"
    )
    assert not report.exists()


def test_a_model_without_a_reference_profile_is_one_line_and_exit_2(
    project: Project, tmp_path: Path
) -> None:
    """A version registered before monitoring: logged with its Pipeline only."""
    import mlflow

    from lead_conversion_prediction.modeling.tracking import log_lead_model
    from lead_conversion_prediction.utils.storage import load_artifact

    model = load_artifact(project.root / "models" / "lead_model.joblib")
    mlflow.set_tracking_uri(project.tracking_uri)
    with mlflow.start_run():
        uri, _ = log_lead_model(model, project.leads[list(MODEL_INPUT_COLUMNS)].head(2))
    version = mlflow.register_model(uri, "earlier_model").version
    batch = write(project.leads.head(200), tmp_path / "b.csv")
    result = project.lcp(
        "monitor",
        "-i",
        batch,
        "--model",
        f"models:/earlier_model/{version}",
        "--output",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"error: models:/earlier_model/{version}: has no reference profile")
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def holdout_scores(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion's scores of the holdout rows, and the rows' real outcomes beside them."""
    folder = tmp_path_factory.mktemp("holdout")
    holdout = read_raw_leads(project.root / "data" / "processed" / "test.csv")
    leads = write(holdout.drop(columns=["lead_indicator"]), folder / "leads.csv")
    result = project.lcp("predict", "-i", leads, "-o", str(folder / "scores.csv"))
    assert result.returncode == 0, result.stderr
    outcomes = holdout[["lead_id", "lead_indicator", "date_part"]].rename(
        columns={"lead_indicator": "converted", "date_part": "date"}
    )
    write(outcomes.astype({"converted": "int64"}), folder / "outcomes.csv")
    return folder


def monitoring_runs(project: Project, kind: str) -> list[Any]:
    """The runs of one kind in the monitoring experiment, the latest first."""
    from mlflow import MlflowClient

    client = MlflowClient(project.tracking_uri)
    experiment = client.get_experiment_by_name("lead-conversion-monitoring")
    assert experiment is not None
    return list(
        client.search_runs(
            [experiment.experiment_id],
            f"tags.`lcp.monitoring` = '{kind}'",
            order_by=["attributes.start_time DESC"],
        )
    )


def test_the_holdout_with_its_outcomes_raises_no_alert_and_flipped_outcomes_do(
    project: Project, holdout_scores: Path, tmp_path: Path
) -> None:
    scores, outcomes = str(holdout_scores / "scores.csv"), holdout_scores / "outcomes.csv"
    honest = project.lcp(
        "backtest",
        "--scores",
        scores,
        "--outcomes",
        str(outcomes),
        "--output",
        str(tmp_path / "a"),
    )
    assert honest.returncode == 0, honest.stderr
    report = json.loads((tmp_path / "a" / "backtest.json").read_text())
    assert report["model"].startswith("models:/lead_model/") and report["holdout"] is not None
    assert report["join"]["matched"] == len(pd.read_csv(outcomes))
    assert (tmp_path / "a" / "report.html").is_file()
    logged = monitoring_runs(project, "backtest")
    assert logged and logged[0].data.tags["status"] == "ok"
    assert (
        logged[0].data.metrics["all.roc_auc"]
        == report["cohorts"][0]["metrics"]["roc_auc"]["value"]
    )

    flipped = pd.read_csv(outcomes)
    rows = np.random.default_rng(0).random(len(flipped)) < 0.3
    flipped.loc[rows, "converted"] = 1 - flipped.loc[rows, "converted"]
    result = project.lcp(
        "backtest", "--scores", scores, "--outcomes", write(flipped, tmp_path / "flipped.csv"),
        "--by", "month", "--output", str(tmp_path / "b"),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    alerts = [line for line in result.stderr.splitlines() if line.startswith("backtest alert:")]
    assert alerts and all(line.startswith("backtest alert: 2024-01: ") for line in alerts)
    assert any("roc_auc" in line or "log_loss" in line for line in alerts)


def test_what_does_not_join_is_counted_and_named(
    project: Project, holdout_scores: Path, tmp_path: Path
) -> None:
    outcomes = pd.read_csv(holdout_scores / "outcomes.csv")
    extra = pd.DataFrame({"lead_id": [10**9], "converted": [1], "date": ["2024-01-02"]})
    changed = pd.concat([outcomes.iloc[10:], outcomes.iloc[[20]], extra], ignore_index=True)
    result = project.lcp(
        "backtest", "--scores", str(holdout_scores / "scores.csv"),
        "--outcomes", write(changed, tmp_path / "o.csv"), "--output", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr
    join = json.loads((tmp_path / "r" / "backtest.json").read_text())["join"]
    assert join["scores_without_outcome"] == 10 and join["outcomes_without_score"] == 1
    assert join["duplicate_outcome_ids"] == 1
    assert "10 scores without an outcome, 1 outcomes without a score" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda frame: frame.drop(columns=["converted"]), "column 'converted': is missing"),
        (
            lambda frame: frame.astype({"converted": "object"}).assign(
                converted=lambda f: f["converted"].where(f.index != 2, "yes")
            ),
            "column 'converted': not 0, 1, true or false ('yes') at line 4",
        ),
    ],
    ids=["no-converted-column", "a-bad-converted-value"],
)
def test_bad_outcomes_are_one_line_naming_the_column_and_line(
    project: Project,
    holdout_scores: Path,
    tmp_path: Path,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    outcomes = write(change(pd.read_csv(holdout_scores / "outcomes.csv")), tmp_path / "o.csv")
    result = project.lcp(
        "backtest", "--scores", str(holdout_scores / "scores.csv"), "--outcomes", outcomes,
        "--output", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {outcomes}: ") and message in last, last
    assert not (tmp_path / "r").exists()


def test_csv_gzip_parquet_and_stdin_give_the_same_statistics(
    project: Project, tmp_path: Path
) -> None:
    import gzip

    leads = project.leads.head(600)
    csv = write(leads, tmp_path / "leads.csv")
    (tmp_path / "leads.csv.gz").write_bytes(gzip.compress((tmp_path / "leads.csv").read_bytes()))
    leads.to_parquet(tmp_path / "leads.parquet")
    inputs = {
        "csv": (csv, None),
        "gzip": (str(tmp_path / "leads.csv.gz"), None),
        "parquet": (str(tmp_path / "leads.parquet"), None),
        "stdin": ("-", (tmp_path / "leads.csv").read_text()),
    }
    found = {}
    for name, (source, stdin) in inputs.items():
        result = project.lcp(
            "monitor", "-i", source, "--output", str(tmp_path / name), stdin=stdin
        )
        assert result.returncode == 0, (name, result.stderr)
        found[name] = drift_of(tmp_path / name)
    for name, drift in found.items():
        assert drift["rows"] == 600, name
        assert drift["inputs"] == found["csv"]["inputs"], name
        assert drift["prediction"] == found["csv"]["prediction"], name


def test_predict_monitor_checks_the_store_it_logs_to_before_scoring(
    project: Project, tmp_path: Path
) -> None:
    from tests.support import free_port

    leads = write(project.leads.head(300), tmp_path / "leads.csv")
    scores = tmp_path / "s.csv"
    model = str(project.root / "models" / "lead_model.joblib")
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = lcp_here(
        "predict", "--model", model, "-i", leads, "-o", str(scores), "--monitor",
        env={"LCP_ROOT": str(project.root), "MLFLOW_TRACKING_URI": unreachable},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {unreachable}: cannot reach")
    assert not scores.exists() and not (tmp_path / "s.monitoring").exists()
