"""The typed artifacts that stages hand to one another, as JSON files.

Each is a pydantic model: a stage writes it with :meth:`Artifact.write` and the next reads it
with :meth:`Artifact.read`, which names the file when it is missing or malformed. Nothing reads
another stage's output by string key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from lead_conversion_prediction.exceptions import ArtifactError
from lead_conversion_prediction.utils.storage import read_json, write_json

Scalar = str | int | float | bool | None


class Artifact(BaseModel):
    """A JSON artifact: stable keys, read-only once made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def write(self, path: Path) -> None:
        """Write the artifact atomically as stable JSON."""
        write_json(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read and check the artifact; a missing or malformed file is a one-line error."""
        content = read_json(path)
        if isinstance(content, dict):  # computed fields are written for readers, not read back
            content = {k: v for k, v in content.items() if k not in cls.model_computed_fields}
        try:
            return cls.model_validate(content)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ArtifactError(
                f"{path}: not a valid {cls.__name__} ({where}: {first['msg']}); "
                "run the stage that writes it again"
            ) from None


class DataSummary(Artifact):
    """What the data stage kept: the raw file's md5 and origin, row counts, the dates found."""

    raw_md5: str
    raw_url: str
    rows_raw: int
    rows_clean: int
    min_date: str | None
    max_date: str | None


class SearchSetting(Artifact):
    """One hyperparameter setting a search tried, and its cross-validation score."""

    params: dict[str, Scalar]
    cv_mean: float
    cv_std: float
    rank: int


class CalibrationCheck(Artifact):
    """Whether a candidate was calibrated: the method kept (``none`` for the classifier as
    searched) and the cross-validated log-loss of each option on the training rows."""

    method: str
    cv_log_loss: dict[str, float]


class SearchBudget(Artifact):
    """What a candidate's search was given: of the ``rows`` training rows, the ``search_rows``
    its cross-validation saw (a stratified sample when ``scaled``: the chosen setting was then
    fitted on all rows), the settings tried and the folds."""

    rows: int
    search_rows: int
    n_iter: int
    cv_folds: int
    scaled: bool


class SelectionRule(Artifact):
    """How the model was chosen: the highest mean of scikit-learn scorer ``metric`` over the
    same ``folds`` stratified folds (shuffled with ``seed``) of ``rows`` training rows, every
    candidate cross-validated as it ships. The holdout rows play no part."""

    metric: str
    folds: int
    seed: int
    rows: int


class CandidateResult(Artifact):
    """A searched candidate: its chosen setting, its search, its calibration, and its scores
    on the selection folds (``cv``: one per fold, as the selection metric's scorer gives them).

    ``monotone_increasing``: the model columns it is constrained to increase in; None when it
    cannot take such constraints (a linear model follows the sign of its coefficients).
    """

    best_params: dict[str, Scalar]
    cv: list[float]
    cv_mean: float
    cv_std: float
    settings: list[SearchSetting]
    calibration: CalibrationCheck | None = None
    budget: SearchBudget | None = None
    monotone_increasing: list[str] | None = None


class TrainingSummary(Artifact):
    """The train stage's outcome: the selection rule, every candidate, the one selected."""

    metric: str
    selection: SelectionRule
    selected: str
    rows_train: int
    candidates: dict[str, CandidateResult]

    @property
    def chosen(self) -> CandidateResult:
        return self.candidates[self.selected]


class Interval(Artifact):
    """A two-sided percentile interval."""

    low: float
    high: float


class CandidateAudit(Artifact):
    """A candidate's mean and spread (standard deviation) over the selection folds, which
    chose the model, and its holdout metrics with intervals beside the chosen model's, for
    auditing the choice."""

    holdout_score: float
    cv_mean: float
    cv_std: float
    holdout_score_ci: Interval | None = None
    selected_minus_this_ci: Interval | None = None
    calibration: str = "none"
    holdout: dict[str, float] = {}
    holdout_ci: dict[str, Interval] = {}


class SingleInput(Artifact):
    """One model input taken alone as a score of the leads (``modeling/reliance.py``): how it
    scores them, and its ROC-AUC on the training rows and on the holdout rows."""

    scored_by: str
    train_roc_auc: float
    holdout_roc_auc: float


class Reliance(Artifact):
    """What the model relies on: each input alone, and the best of them on the training rows
    (``baseline_input``) as a model, an isotonic fit on the training rows, beside the chosen
    model on the holdout rows. ``baseline`` holds its holdout metrics with intervals, and
    ``model_minus_baseline`` the chosen model's difference on each metric with its paired
    bootstrap interval (same resamples for both)."""

    inputs: dict[str, SingleInput]
    baseline_input: str
    baseline: dict[str, float]
    baseline_ci: dict[str, Interval]
    model_minus_baseline: dict[str, float]
    model_minus_baseline_ci: dict[str, Interval]

    @property
    def matched(self) -> bool:
        """True unless the chosen model ranks better than the one input: the interval of its
        ROC-AUC lead is not wholly above zero."""
        return self.model_minus_baseline_ci["roc_auc"].low <= 0


class CrossValidation(Artifact):
    mean: float
    std: float


class RowCounts(Artifact):
    test: int
    train: int


class BootstrapSettings(Artifact):
    threshold: float
    resamples: int
    confidence: float
    seed: int


class MetricsReport(Artifact):
    """``reports/evaluation.json``: the chosen model's holdout metrics with intervals, and more."""

    model: str
    metric: str
    selection: SelectionRule
    holdout: dict[str, float]
    holdout_ci: dict[str, Interval]
    cv: CrossValidation
    candidates: dict[str, CandidateAudit]
    rows: RowCounts
    bootstrap: BootstrapSettings
    probability_range: Interval | None = None
    gains: dict[str, float] = {}
    reliance: Reliance | None = None


class HeadlineMetrics(Artifact):
    """``reports/metrics.json``: the few numbers `dvc exp show` and `dvc metrics diff` compare,
    each key naming its metric (``holdout.roc_auc``, ``cv.neg_log_loss.mean``)."""

    holdout: dict[str, float]
    cv: dict[str, CrossValidation]


class RegistryRecord(Artifact):
    """``reports/registry.json``: what the register stage did in the registry, and why."""

    model_name: str
    version: int
    new_version: bool  # False when an identical model was registered already
    champion: int | None  # the version holding the champion alias afterwards
    promoted: bool
    decision: str
    promotion_metric: str
    evaluation_set_md5: str
    tracking_uri: str
    experiment: str
    parent_run_id: str
    runs: dict[str, str]
    # The SHA-256 of the lead_model.joblib registered: with ``champion``, it tells predict
    # whether the workspace's model is the champion without opening the store. Records
    # written before it was kept have none.
    workspace_sha256: str | None = None


class ValidationReport(Artifact):
    """``reports/validation.json``: ``model.pkl`` checked as the course validator checks it."""

    rows: int
    accuracy: float
    min_accuracy: float
    first_predictions: list[int]
    expected_first: list[int] | None
    passed: bool
    problems: list[str]


def plain_params(params: dict[str, Any]) -> dict[str, Scalar]:
    """Make hyperparameter values plain JSON scalars (numpy scalars unwrapped, ``inf`` as text)."""
    import math

    plain: dict[str, Scalar] = {}
    for key, value in params.items():
        item = value.item() if hasattr(value, "item") else value
        if isinstance(item, float) and not math.isfinite(item):
            item = str(item)
        plain[key] = item
    return plain
