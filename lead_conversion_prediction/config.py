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

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.utils.files import read_yaml

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


class Uniform(Section):
    """A continuous uniform distribution on [low, high]."""

    uniform: tuple[float, float]


class RandInt(Section):
    """A discrete uniform distribution on the integers low..high, both included."""

    randint: tuple[int, int]


SearchDimension = Uniform | RandInt | list[str | float | int]


class CalibrationParams(Section):
    """How a searched candidate is calibrated where that helps (``modeling/calibration.py``).

    Each method is tried on the candidate's cross-validated scores on the training rows; the one
    with the lowest log-loss is kept if it beats the uncalibrated scores. No method: none tried.
    """

    methods: list[Literal["sigmoid", "isotonic"]] = ["sigmoid"]
    cv_folds: Annotated[int, Field(ge=2)] = 5


class TrainParams(BaseModel):
    """The search: the selection metric, the seed, and one section per candidate.

    A candidate's section (``train.<name>``) is checked against the parameters its builder
    declares in ``modeling/candidates.py``; listed candidates without a section use defaults.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    metric: str = "neg_log_loss"
    random_state: int = 42
    n_jobs: Annotated[int, Field(ge=1)] = 1
    calibration: CalibrationParams = CalibrationParams()
    candidates: Annotated[list[str], Field(min_length=1)]

    @model_validator(mode="after")
    def _candidate_sections(self) -> TrainParams:
        from lead_conversion_prediction.modeling.candidates import CANDIDATES

        known = ", ".join(CANDIDATES)
        for name in self.candidates:
            if name not in CANDIDATES:
                raise ValueError(f"unknown candidate '{name}' (known: {known})")
        sections = self.model_extra if self.model_extra is not None else {}
        for name in self.candidates:
            if name not in sections:
                sections[name] = {}  # a listed candidate without a section: its defaults
        for name, section in list(sections.items()):
            if name not in CANDIDATES:
                raise ValueError(f"'{name}' is neither a setting nor a candidate ({known})")
            try:
                sections[name] = CANDIDATES[name].params.model_validate(section)
            except ValidationError as error:
                raise ValueError(f"{name}: {_first_error(error)}") from None
        return self

    def section(self, name: str) -> Any:
        """The validated parameters of candidate ``name``."""
        return (self.model_extra or {})[name]


class EvaluateParams(Section):
    resamples: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    random_state: int = 42


class RegistryParams(Section):
    experiment: str = "lead-conversion"
    model_name: str = "lead_model"


class PromotionParams(Section):
    """When a challenger may take the champion alias: on the same evaluation set, with a real
    lead on ``metric`` (the lower end of its paired bootstrap interval above ``margin``)."""

    metric: str = "roc_auc"
    margin: Annotated[float, Field(ge=0)] = 0.0
    resamples: Annotated[int, Field(ge=100)] = 1000
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95
    random_state: int = 42


class ValidationParams(Section):
    min_accuracy: Annotated[float, Field(ge=0, le=1)] = 0.75


Probability = Annotated[float, Field(ge=0, le=1)]


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


def load_params(path: Path) -> Params:
    """Read ``params.yaml`` into a typed, validated object."""
    raw = read_yaml(path, hint="the parameter file of the project")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_first_error(error)}") from None


def _first_error(error: ValidationError) -> str:
    """The first problem pydantic found, as ``where: what``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
