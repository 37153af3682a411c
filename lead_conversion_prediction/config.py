"""Where everything lives and what every stage is told: the project's paths and parameters.

Every path derives from one root. Data, models and reports follow the run root, which is
``$LCP_ROOT`` when set (tests point it at a temporary folder), else ``$DVC_ROOT`` (the workspace
DVC runs a stage in, a temporary copy for ``dvc exp run --temp``), else the project checkout.
The MLflow store stays in the checkout (``$LCP_ROOT`` aside), so runs DVC makes in a temporary
copy land in the same store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lead_conversion_prediction.exceptions import ConfigError, InputNotFoundError

PROJ_ROOT = Path(__file__).resolve().parents[1]
ROOT_ENV_VAR = "LCP_ROOT"
TRACKING_URI_ENV_VAR = "MLFLOW_TRACKING_URI"


def run_root() -> Path:
    """Return the root that data, models and reports are read from and written to."""
    for variable in (ROOT_ENV_VAR, "DVC_ROOT"):
        if value := os.environ.get(variable):
            return Path(value).resolve()
    return PROJ_ROOT


def default_tracking_uri() -> str:
    """Return ``$MLFLOW_TRACKING_URI``, else an absolute SQLite store in the project root."""
    if uri := os.environ.get(TRACKING_URI_ENV_VAR):
        return uri
    root = Path(os.environ[ROOT_ENV_VAR]).resolve() if os.environ.get(ROOT_ENV_VAR) else PROJ_ROOT
    return f"sqlite:///{root / 'mlflow.db'}"


@dataclass(frozen=True)
class Paths:
    """Standard locations of every input and artifact, all under one root."""

    root: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(run_root())

    @property
    def params_file(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw_data(self) -> Path:
        return self.root / "data" / "raw" / "raw_data.csv"

    @property
    def raw_data_pin(self) -> Path:
        return self.root / "data" / "raw" / "raw_data.csv.dvc"

    @property
    def interim_dir(self) -> Path:
        return self.root / "data" / "interim"

    @property
    def leads(self) -> Path:
        return self.interim_dir / "leads.csv"

    @property
    def data_summary(self) -> Path:
        """The cleaned data's facts: raw md5, row counts, dates found."""
        return self.interim_dir / "data_summary.json"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def train_split(self) -> Path:
        return self.processed_dir / "train.csv"

    @property
    def test_split(self) -> Path:
        return self.processed_dir / "test.csv"

    @property
    def X_train(self) -> Path:
        return self.processed_dir / "X_train.csv"

    @property
    def y_train(self) -> Path:
        return self.processed_dir / "y_train.csv"

    @property
    def preprocessor(self) -> Path:
        """The preprocessing fitted on the training rows (steps 4-9)."""
        return self.processed_dir / "preprocessor.joblib"

    @property
    def X_test(self) -> Path:
        return self.processed_dir / "X_test.csv"

    @property
    def y_test(self) -> Path:
        return self.processed_dir / "y_test.csv"

    @property
    def outlier_summary(self) -> Path:
        return self.processed_dir / "outlier_summary.csv"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def lead_model(self) -> Path:
        """The full raw-lead Pipeline: preprocessing and classifier in one artifact."""
        return self.models_dir / "lead_model.joblib"

    @property
    def validator_model(self) -> Path:
        """The validator contract: the Pipeline's classifier, on the 12 scaled columns."""
        return self.models_dir / "model.pkl"

    @property
    def columns_list(self) -> Path:
        return self.models_dir / "columns_list.json"

    @property
    def reference_profile(self) -> Path:
        """What the training rows and the model's holdout scores looked like (monitoring)."""
        return self.models_dir / "reference_profile.json"

    @property
    def model_set(self) -> tuple[Path, ...]:
        """What every model set holds, and its bundle: the validator's model, the whole
        Pipeline, the column list and the reference profile."""
        return (self.validator_model, self.lead_model, self.columns_list, self.reference_profile)

    @property
    def candidates_dir(self) -> Path:
        return self.models_dir / "candidates"

    @property
    def candidates_summary(self) -> Path:
        return self.candidates_dir / "summary.json"

    @property
    def bundle(self) -> Path:
        return self.models_dir / "models.tar"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def monitoring_dir(self) -> Path:
        """Where ``lcp monitor`` and ``lcp backtest`` write their reports by default."""
        return self.reports_dir / "monitoring"

    @property
    def figures_dir(self) -> Path:
        return self.reports_dir / "figures"

    @property
    def metrics(self) -> Path:
        """The headline metrics DVC compares across experiments (``holdout.roc_auc``...)."""
        return self.reports_dir / "metrics.json"

    @property
    def evaluation(self) -> Path:
        """The whole evaluation: intervals, every candidate, call lists (not a DVC metric)."""
        return self.reports_dir / "evaluation.json"

    @property
    def plots_dir(self) -> Path:
        """The chosen model's curves as data, for `dvc plots diff` across experiments."""
        return self.reports_dir / "plots"

    @property
    def model_card(self) -> Path:
        return self.reports_dir / "model_card.md"

    @property
    def registry_record(self) -> Path:
        return self.reports_dir / "registry.json"

    @property
    def validation_report(self) -> Path:
        return self.reports_dir / "validation.json"

    def candidate_model(self, name: str) -> Path:
        return self.candidates_dir / f"{name}.joblib"


class Section(BaseModel):
    """A section of ``params.yaml``: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    min_date: date
    max_date: date
    source: str = "signup"

    @model_validator(mode="after")
    def _window_is_ordered(self) -> DataParams:
        if self.max_date < self.min_date:
            raise ValueError(f"max_date {self.max_date} is before min_date {self.min_date}")
        return self


class FeatureParams(Section):
    clip_n_std: Annotated[float, Field(gt=0)] = 2.0


class SplitParams(Section):
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.15
    random_state: int = 42


class CalibrationParams(Section):
    """The calibrations tried on each candidate (``modeling/calibration.py``); none: none."""

    methods: list[Literal["sigmoid"]] = ["sigmoid"]
    cv_folds: Annotated[int, Field(ge=2)] = 5


class ScaleParams(Section):
    """How the searches shrink on many training rows (``modeling/train.py``'s
    ``search_budget``; ``params.yaml`` says how): a search costs the same at any size."""

    rows_above: Annotated[int, Field(ge=1)] = 20_000
    search_rows: Annotated[int, Field(ge=100)] = 20_000
    max_n_iter: Annotated[int, Field(ge=1)] = 10
    max_cv_folds: Annotated[int, Field(ge=2)] = 3
    calibration_holdout: Annotated[float, Field(gt=0, lt=1)] = 0.1
    n_jobs: Annotated[int, Field(ge=1)] = 1


class TrainParams(BaseModel):
    """The search: the selection metric and folds, the seed, and one section per candidate.

    A candidate's section (``train.<name>``) is kept as written here; the stage that searches
    checks it against the parameters its builder declares (``modeling/candidates.py``), so a
    change to a candidate's search concerns only the stages that train.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    metric: str = "neg_log_loss"
    # The stratified folds of the training rows every candidate is cross-validated on, as it
    # ships, to choose between them (``modeling/selection.py``): the holdout plays no part.
    selection_folds: Annotated[int, Field(ge=2)] = 5
    random_state: int = 42
    n_jobs: Annotated[int, Field(ge=1)] = 1
    calibration: CalibrationParams = CalibrationParams()
    scale: ScaleParams = ScaleParams()
    candidates: Annotated[list[str], Field(min_length=1)]

    def sections(self) -> dict[str, Any]:
        """The candidate sections as written, by name: every key that is not a setting."""
        return dict(self.model_extra or {})


class EvaluateParams(Section):
    resamples: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    random_state: int = 42


class RegistryParams(Section):
    experiment: str = "lead-conversion"
    model_name: str = "lead_model"


class PromotionParams(Section):
    """The promotion rule (``modeling/promotion.py``); a metric's tolerance not given is 0."""

    metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    scoring_rule: Literal["log_loss", "brier"] = "log_loss"
    margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    tolerance: dict[str, Annotated[float, Field(ge=0)]] = {"roc_auc": 0.005, "log_loss": 0.01}
    resamples: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    random_state: int = 42


class ValidationParams(Section):
    min_accuracy: Annotated[float, Field(ge=0, le=1)] = 0.75


class ServeParams(Section):
    """What ``lcp serve`` accepts: the largest request body, and how deep its JSON may nest."""

    max_request_mb: Annotated[float, Field(gt=0)] = 16.0
    max_json_depth: Annotated[int, Field(ge=3)] = 32

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 2**20)


class PredictParams(Section):
    """What ``lcp predict`` scores in one run on this machine (the Spark engine has no bound):
    ranking needs every row's id and probability at once, about 60 bytes a row at the peak."""

    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    reason_floor: Annotated[float, Field(ge=0)] = 0.05  # --explain: weaker reasons left empty


Probability = Annotated[float, Field(ge=0, le=1)]


class Limits(Section):
    """A drift statistic's levels: at ``warn`` a batch is worth a look, at ``alert`` the model
    may no longer be right for it."""

    warn: Annotated[float, Field(ge=0)]
    alert: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _alert_is_not_below_warn(self) -> Limits:
        if self.alert < self.warn:
            raise ValueError(f"alert {self.alert} is below warn {self.warn}")
        return self


class MonitorParams(Section):
    """When a scored batch has drifted from the training rows (``monitoring/drift.py``)."""

    psi: Limits = Limits(warn=0.1, alert=0.25)
    ks: Limits = Limits(warn=0.1, alert=0.15)
    js: Limits = Limits(warn=0.07, alert=0.1)
    missing_rate: Limits = Limits(warn=0.05, alert=0.1)
    unseen_share: Limits = Limits(warn=0.001, alert=0.01)
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.001
    min_rows: Annotated[int, Field(ge=1)] = 100
    psi_floor: Annotated[float, Field(gt=0, lt=0.01)] = 0.0001
    experiment: str = "lead-conversion-monitoring"


class BacktestParams(Section):
    """How ``lcp backtest`` scores the model on real outcomes: bootstrap intervals per cohort."""

    resamples: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    random_state: int = 42
    reliability_bins: Annotated[int, Field(ge=2)] = 10


class Params(Section):
    data: DataParams
    features: FeatureParams = FeatureParams()
    split: SplitParams = SplitParams()
    threshold: Probability = 0.5
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
    registry: RegistryParams = RegistryParams()
    promotion: PromotionParams = PromotionParams()
    validation: ValidationParams = ValidationParams()
    serve: ServeParams = ServeParams()
    predict: PredictParams = PredictParams()
    monitor: MonitorParams = MonitorParams()
    backtest: BacktestParams = BacktestParams()


def load_params(path: Path) -> Params:
    """Read ``params.yaml`` into a typed, validated object."""
    raw = _read_yaml(path)
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {first_error(error)}") from None


def _read_yaml(path: Path) -> Any:
    """Parse the parameter file; a missing, unreadable or invalid one is a one-line error."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputNotFoundError(path, "the parameter file of the project") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None


def first_error(error: ValidationError) -> str:
    """The first problem pydantic found, as ``where: what``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
