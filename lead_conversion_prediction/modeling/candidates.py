"""The candidate classifiers: each is a parameter section and one builder, in ``CANDIDATES``.

A builder takes its validated ``train.<name>`` section and the search seed, and returns the
unfitted estimator with its search space and budget. The sections are checked here, where they
are used (:func:`candidate_sections`), not when ``params.yaml`` is loaded: the stages that do not
train never import this module, so a change to a search leaves them up to date. Adding a
candidate is one parameter class, one decorated builder here, and its section in
``params.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from lead_conversion_prediction.config import Section, TrainParams, first_error
from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.schema import MODEL_COLUMNS


class Uniform(Section):
    """A continuous uniform distribution on [low, high]."""

    uniform: tuple[float, float]


class RandInt(Section):
    """A discrete uniform distribution on the integers low..high, both included."""

    randint: tuple[int, int]


SearchDimension = Uniform | RandInt | list[str | float | int]


@dataclass(frozen=True)
class Candidate:
    """An unfitted classifier, the space its hyperparameters are searched in, and the budget;
    ``monotone_increasing``: the columns it is constrained to increase in, or None when it
    cannot take such constraints."""

    estimator: Any
    space: dict[str, Any] | list[dict[str, Any]]
    n_iter: int
    cv_folds: int
    monotone_increasing: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CandidateSpec:
    """How to build a candidate: the model of its parameter section, and the builder."""

    params: type[Section]
    build: Callable[[Any, int], Candidate]


CANDIDATES: dict[str, CandidateSpec] = {}


def candidate(
    name: str, params: type[Section]
) -> Callable[[Callable[[Any, int], Candidate]], Callable[[Any, int], Candidate]]:
    """Register ``build`` as the builder of candidate ``name`` with parameters ``params``."""

    def register(build: Callable[[Any, int], Candidate]) -> Callable[[Any, int], Candidate]:
        CANDIDATES[name] = CandidateSpec(params, build)
        return build

    return register


def build_candidate(name: str, section: Any, seed: int) -> Candidate:
    """Build the named candidate from its parameter section."""
    try:
        spec = CANDIDATES[name]
    except KeyError:
        raise ConfigError(f"train.candidates: unknown candidate '{name}'") from None
    return spec.build(section, seed)


def candidate_sections(
    train: TrainParams, params_file: Path | str = "params.yaml"
) -> dict[str, Any]:
    """The validated section of every candidate ``train`` names or holds, by name: each an
    instance of the parameter class its builder declares.

    A listed candidate without a section takes its defaults. An unknown candidate, a key of
    ``train`` that is neither a setting nor a candidate, or a bad section is a one-line
    :class:`ConfigError` naming ``params_file`` and the key.
    """
    known = ", ".join(CANDIDATES)

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"{params_file}: train: {problem}")

    for name in train.candidates:
        if name not in CANDIDATES:
            raise refuse(f"unknown candidate '{name}' (known: {known})")
    written = train.sections()
    sections: dict[str, Any] = {}
    for name in [*written, *(name for name in train.candidates if name not in written)]:
        if name not in CANDIDATES:
            raise refuse(f"'{name}' is neither a setting nor a candidate ({known})")
        try:
            sections[name] = CANDIDATES[name].params.model_validate(written.get(name, {}))
        except ValidationError as error:
            raise refuse(f"{name}: {first_error(error)}") from None
    return sections


def to_distributions(space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Turn the ``params.yaml`` description of a search space into scipy distributions."""
    from scipy.stats import randint, uniform

    distributions: dict[str, Any] = {}
    for name, dimension in space.items():
        if isinstance(dimension, Uniform):
            low, high = dimension.uniform
            distributions[name] = uniform(loc=low, scale=high - low)
        elif isinstance(dimension, RandInt):
            low, high = dimension.randint
            distributions[name] = randint(low, high + 1)
        else:
            distributions[name] = list(dimension)
    return distributions


class SearchParams(Section):
    """A seeded random search: settings tried and cross-validation folds."""

    n_iter: Annotated[int, Field(ge=1)] = 10
    cv_folds: Annotated[int, Field(ge=2)] = 3


class SpaceSearchParams(SearchParams):
    """A search over a space written in ``params.yaml``."""

    space: dict[str, SearchDimension]


# Where XGBoost degenerates on a few thousand rows, so a space may not reach (inclusive):
# - a row sample or column sample below a half: with ``subsample`` 0.007 each tree of the
#   reference's forest saw about 17 rows, and its probabilities collapsed into a band;
# - a ``min_child_weight`` below 1 allows leaves of three or four rows (a leaf's hessian sum is at
#   most a quarter per row), whose probabilities are close to 0 or 1; above 20 it blocks most
#   splits of a fold of 2,000 rows;
# - an objective that does not give probabilities (``reg:squarederror`` strays outside [0, 1]).
XGBOOST_BOUNDS: dict[str, tuple[float, float]] = {
    "subsample": (0.5, 1.0),
    "colsample_bytree": (0.5, 1.0),
    "colsample_bylevel": (0.5, 1.0),
    "colsample_bynode": (0.5, 1.0),
    "min_child_weight": (1.0, 20.0),
}
# A forest is one boosting round: a learning rate below 1 only shrinks its margins towards the
# base rate, which squeezes the probabilities (the reference's forest gave 0.38 to 0.57).
FOREST_BOUNDS = {**XGBOOST_BOUNDS, "learning_rate": (0.5, 1.0)}
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")


def check_space_bounds(
    space: dict[str, SearchDimension], bounds: dict[str, tuple[float, float]]
) -> None:
    """Raise ``ValueError`` when a dimension of ``space`` reaches outside its bounds."""
    for name, (lowest, highest) in bounds.items():
        dimension = space.get(name)
        if dimension is None:
            continue
        if isinstance(dimension, Uniform):
            values: list[Any] = list(dimension.uniform)
        elif isinstance(dimension, RandInt):
            values = list(dimension.randint)
        else:
            values = list(dimension)
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and lowest <= v <= highest
            for v in values
        ):
            raise ValueError(
                f"space.{name}: must stay within [{lowest:g}, {highest:g}] "
                f"(outside it the model degenerates), got {values}"
            )
    objectives = space.get("objective")
    if isinstance(objectives, list) and set(map(str, objectives)) - set(PROBABILITY_OBJECTIVES):
        raise ValueError(
            f"space.objective: only {', '.join(PROBABILITY_OBJECTIVES)} give probabilities, "
            f"got {objectives}"
        )


class MonotoneSearchParams(SpaceSearchParams):
    """A search of a model that can be constrained to increase in some columns."""

    # Model columns whose growth may never lower the probability (more purchases, more visits).
    monotone_increasing: tuple[str, ...] = ()


class XGBoostParams(MonotoneSearchParams):
    """A seeded search of an XGBoost model, within bounds that keep it from degenerating."""

    @model_validator(mode="after")
    def _space_is_bounded(self) -> XGBoostParams:
        check_space_bounds(self.space, XGBOOST_BOUNDS)
        return self


class XGBoostRFParams(XGBoostParams):
    @model_validator(mode="after")
    def _forest_space_is_bounded(self) -> XGBoostRFParams:
        check_space_bounds(self.space, FOREST_BOUNDS)
        return self


@candidate("xgboost_rf", XGBoostRFParams)
def xgboost_rf(params: XGBoostRFParams, seed: int) -> Candidate:
    """The reference's XGBoost random forest, increasing in the columns it is told to be."""
    from xgboost import XGBRFClassifier

    return _xgboost_candidate(XGBRFClassifier, params, seed)


@candidate("xgboost", XGBoostParams)
def xgboost(params: XGBoostParams, seed: int) -> Candidate:
    """Gradient-boosted XGBoost trees, increasing in the columns it is told to be."""
    from xgboost import XGBClassifier

    return _xgboost_candidate(XGBClassifier, params, seed)


def _xgboost_candidate(estimator: type[Any], params: XGBoostParams, seed: int) -> Candidate:
    """An XGBoost classifier of class ``estimator`` (one thread: the search runs the fits in
    parallel) with its search space."""
    return Candidate(
        estimator(
            random_state=seed,
            n_jobs=1,
            objective="binary:logistic",
            monotone_constraints=monotone_constraints(params.monotone_increasing),
        ),
        to_distributions(params.space),
        params.n_iter,
        params.cv_folds,
        params.monotone_increasing,
    )


def monotone_constraints(increasing: tuple[str, ...]) -> str | None:
    """XGBoost's constraints over the model columns, in order: 1 where the model may only
    increase. Written as a string of the columns' order, which survives saving and loading
    (a mapping by name needs feature names the saved booster may not keep)."""
    unknown = set(increasing) - set(MODEL_COLUMNS)
    if unknown:
        raise ConfigError(f"monotone_increasing: {sorted(unknown)} are not model columns")
    if not increasing:
        return None
    return "(" + ",".join("1" if name in increasing else "0" for name in MODEL_COLUMNS) + ")"


def monotonic_cst(increasing: tuple[str, ...]) -> list[int] | None:
    """scikit-learn's ``monotonic_cst`` over the model columns, in order: 1 where the model may
    only increase."""
    constraints = monotone_constraints(increasing)
    if constraints is None:
        return None
    return [int(flag) for flag in constraints.strip("()").split(",")]


# Penalties each solver accepts (scikit-learn's table).
SOLVER_PENALTIES: dict[str, frozenset[str]] = {
    "lbfgs": frozenset({"l2", "none"}),
    "newton-cg": frozenset({"l2", "none"}),
    "newton-cholesky": frozenset({"l2", "none"}),
    "sag": frozenset({"l2", "none"}),
    "liblinear": frozenset({"l1", "l2"}),
    "saga": frozenset({"l1", "l2", "elasticnet", "none"}),
}
Solver = Literal["newton-cg", "newton-cholesky", "lbfgs", "liblinear", "sag", "saga"]
Penalty = Literal["none", "l1", "l2", "elasticnet"]


class LogisticRegressionParams(SearchParams):
    """A search over penalties and strengths, each penalty fitted by one solver.

    Solvers that support a penalty reach the same optimum (to their tolerance), so a second
    solver for a penalty, or a strength given twice, would only repeat a model; without a
    penalty the strength has no effect, so "none" is one setting.
    """

    max_iter: Annotated[int, Field(ge=1)] = 1000
    penalties: Annotated[dict[Penalty, Solver], Field(min_length=1)]
    C: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
    elasticnet_l1_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.5

    @model_validator(mode="after")
    def _settings_are_distinct_and_supported(self) -> LogisticRegressionParams:
        for penalty, solver in self.penalties.items():
            if penalty not in SOLVER_PENALTIES[solver]:
                supported = sorted(s for s, ps in SOLVER_PENALTIES.items() if penalty in ps)
                raise ValueError(
                    f"penalties.{penalty}: solver {solver} does not support it "
                    f"(one of {', '.join(supported)} does)"
                )
        if len(set(self.C)) < len(self.C):
            raise ValueError(f"C: a strength listed twice repeats a model, got {self.C}")
        return self


def logistic_regression_space(params: LogisticRegressionParams) -> list[dict[str, Any]]:
    """Return the distinct (penalty, C) settings, each with its penalty's solver, as
    scikit-learn's current parameters.

    A penalty is expressed as ``l1_ratio`` (0 for l2, 1 for l1, between for elastic net) and
    "no penalty" as ``C=inf``.
    """
    ratios = {"l2": 0.0, "l1": 1.0, "elasticnet": params.elasticnet_l1_ratio}
    space: list[dict[str, Any]] = []
    for penalty, solver in params.penalties.items():
        setting: dict[str, Any] = {"solver": [solver]}
        if penalty == "none":
            setting["C"] = [math.inf]
        else:
            setting["C"] = sorted(params.C)
            setting["l1_ratio"] = [ratios[penalty]]
        space.append(setting)
    return space


@candidate("logistic_regression", LogisticRegressionParams)
def logistic_regression(params: LogisticRegressionParams, seed: int) -> Candidate:
    """The reference's logistic regression, one solver per penalty. It cannot be constrained:
    a linear model is monotone in each column, in the direction of its fitted coefficient."""
    from sklearn.linear_model import LogisticRegression

    return Candidate(
        LogisticRegression(max_iter=params.max_iter, random_state=seed),
        logistic_regression_space(params),
        params.n_iter,
        params.cv_folds,
    )


@candidate("hist_gradient_boosting", MonotoneSearchParams)
def hist_gradient_boosting(params: MonotoneSearchParams, seed: int) -> Candidate:
    """scikit-learn's histogram gradient boosting, without early stopping, increasing in the
    columns it is told to be."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return Candidate(
        HistGradientBoostingClassifier(
            early_stopping=False,
            random_state=seed,
            monotonic_cst=monotonic_cst(params.monotone_increasing),
        ),
        to_distributions(params.space),
        params.n_iter,
        params.cv_folds,
        params.monotone_increasing,
    )
