"""Score raw leads: the data contract, the counts a user should know, probabilities and ranks.

:func:`score_chunk` checks and scores one chunk of a file and says what happened to its rows;
:func:`score_leads` scores a frame in memory; :func:`ranked_tables` turns a whole file's ids
and probabilities into output tables. The file stage (``stages/predict.py``) streams chunks
through these. Ranks go from the highest probability down, ties by ``lead_id`` (then input
order); a call list (``--top``) keeps the best ranks only; reasons (``--explain``) come from
``scoring/reasons.py``, and a lead explained has the probability its reasons add up to
(``modeling/explain.py``: the model's, computed in float64).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lead_conversion_prediction.exceptions import ConfigError
from lead_conversion_prediction.modeling.evaluate import positive_probability
from lead_conversion_prediction.schema import ID_COLUMN, MODEL_INPUT_COLUMNS
from lead_conversion_prediction.scoring import CHUNK_ROWS
from lead_conversion_prediction.scoring.output import output_frame, output_schema, output_table
from lead_conversion_prediction.scoring.reasons import Reasons

if TYPE_CHECKING:
    import pyarrow as pa

    from lead_conversion_prediction.monitoring.counts import BatchCounts
    from lead_conversion_prediction.monitoring.profile import ReferenceProfile
    from lead_conversion_prediction.scoring.model import LoadedModel


@dataclass(frozen=True)
class CallList:
    """The likeliest leads to keep: a number of them, or a share of the scored ones."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> CallList:
        """``"500"`` keeps 500 leads, ``"10%"`` the likeliest tenth."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(%?)\s*", text)
        if match and match.group(2) and 0 < float(match.group(1)) <= 100:
            return cls(percent=float(match.group(1)))
        if match and not match.group(2) and match.group(1).isdigit() and int(match.group(1)):
            return cls(count=int(match.group(1)))
        raise ConfigError(f"--top {text}: give a number of leads (500) or a share (10%)")

    def rows(self, scored: int) -> int:
        """How many of ``scored`` leads the list holds (a share is rounded up)."""
        if self.count is not None:
            return min(self.count, scored)
        return min(math.ceil(scored * (self.percent or 0) / 100 - 1e-9), scored)


@dataclass(frozen=True)
class ScoringOptions:
    """How to score: the label threshold, the output order, what to do with bad rows, how
    many reasons to give (and the smallest contribution a reason is shown for) and which leads
    to keep."""

    threshold: float
    sort: bool = False
    skip_bad_rows: bool = False
    training_source: str = "signup"
    training_source_only: bool = False
    chunk_rows: int = CHUNK_ROWS
    explain: int = 0
    reason_floor: float = 0.0  # predict.reason_floor in params.yaml
    top: CallList | None = None
    max_rows: int | None = None  # a longer input stops the run (local scoring)
    profile: ReferenceProfile | None = None  # count the scored rows for drift (--monitor)


@dataclass
class ScoringReport:
    """What happened to the rows of a scored file."""

    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_for: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)
    unseen: Counter[str] = field(default_factory=Counter)
    other_sources: Counter[str] = field(default_factory=Counter)
    duplicate_ids: int = 0
    seconds: float = 0.0
    drift: BatchCounts | None = None  # the scored rows' counts against the reference profile
    alerts: list[str] = field(default_factory=list)  # drift alerts, one line per input

    def reject(self, reasons: Iterable[str]) -> None:
        """Count rejected rows, each under its reason's subject (``column 'x'``, ``row``)."""
        subjects = [reason.split(":")[0] for reason in reasons]
        self.rows_rejected += len(subjects)
        self.rejected_for.update(subjects)

    def merge(self, other: ScoringReport) -> None:
        """Add the counts of another part of the same file."""
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.rejected_for.update(other.rejected_for)
        self.missing.update(other.missing)
        self.unseen.update(other.unseen)
        self.other_sources.update(other.other_sources)
        if other.drift is not None:
            self.drift = other.drift if self.drift is None else self.drift.merge(other.drift)

    def warnings(self) -> list[str]:
        """One line per thing a user should know about the scored rows."""
        lines = []
        if self.missing:
            lines.append(f"missing values imputed as in training: {_counts(self.missing)}")
        if self.unseen:
            lines.append(f"levels unseen in training, scored as missing: {_counts(self.unseen)}")
        if self.other_sources:
            lines.append(
                "leads from sources the model was not trained on, scored anyway: "
                f"{_counts(self.other_sources)}"
            )
        if self.duplicate_ids:
            lines.append(f"{self.duplicate_ids} rows repeat a lead_id already in the file")
        return lines


def _counts(counter: Counter[str]) -> str:
    """``key=count`` pairs, the largest count first, ties by name: the same for any chunking."""
    pairs = sorted(counter.items(), key=lambda pair: (-pair[1], pair[0]))
    return ", ".join(f"{key}={value:,}" for key, value in pairs)


@dataclass
class ScoredChunk:
    """One chunk's scores, rejected rows and counts."""

    ids: np.ndarray
    probability: np.ndarray
    rejected: pd.DataFrame | None
    report: ScoringReport
    reasons: Reasons | None = None


def score_chunk(
    loaded: LoadedModel,
    chunk: pd.DataFrame,
    options: ScoringOptions,
    file: str,
    offset: int = 0,
    header: bool = True,
) -> ScoredChunk:
    """Check and score one chunk of raw leads; ``offset`` rows of the file precede it.

    A row that breaks the contract raises its :class:`DataContractError`, or with
    ``skip_bad_rows`` is set aside with its reason.
    """
    from lead_conversion_prediction.schema import KNOWN_SOURCES, SCORING_COLUMNS, check_leads

    report = ScoringReport()
    typed, breaches = check_leads(chunk, file, SCORING_COLUMNS, not_empty=(ID_COLUMN,))
    bad = np.zeros(len(chunk), dtype=bool)
    reasons = np.full(len(chunk), "", dtype=object)
    for breach in breaches:
        if not options.skip_bad_rows:
            raise breach.error(file, offset, header)
        fresh = ~bad[breach.rows]  # a row is rejected for its first breach only
        reasons[breach.rows[fresh]] = breach.row_reasons()[fresh]
        bad[breach.rows[fresh]] = True
    if "source" in typed:
        other = (typed["source"] != options.training_source).to_numpy() & ~bad
        report.other_sources.update(
            {str(k): int(v) for k, v in typed.loc[other, "source"].value_counts().items()}
        )
        report.unseen["source"] = int(
            (~typed["source"].isin(KNOWN_SOURCES).to_numpy() & ~bad).sum()
        )
        if options.training_source_only and other.any():
            reasons[other] = (
                f"column 'source': not the training source '{options.training_source}'"
            )
            bad |= other
    good = typed.loc[~bad] if bad.any() else typed
    # Plain floats (missing as NaN) instead of nullable integers and booleans: the same codes
    # for the model, half the preprocessing time.
    X = good.loc[:, list(MODEL_INPUT_COLUMNS)].astype("float64")
    report.missing.update({str(k): int(v) for k, v in X.isna().sum().items() if v})
    coder = loaded.model[0].named_transformers_["categorical"]["code"]
    report.unseen.update(coder.count_unseen(X[list(coder.feature_names_in_)]))
    report.unseen = +report.unseen  # drop the zero counts
    rejected = None
    if bad.any():
        numbers = np.flatnonzero(bad) + offset + (2 if header else 1)
        position = "line" if header else "row"
        rejected = chunk.loc[bad].assign(**{position: numbers, "reason": reasons[bad]})
        report.reject(reasons[bad])
    report.rows_scored = len(good)
    explained = None
    if len(good) and options.explain:
        from lead_conversion_prediction.modeling.explain import explain_matrix

        contributions = explain_matrix(loaded.model, loaded.model[:-1].transform(X))
        probability = contributions.probability  # what the reasons add up to
        explained = Reasons.explained(contributions, X, options.explain, options.reason_floor)
    else:
        probability = positive_probability(loaded.model, X)
    if options.profile is not None:
        from lead_conversion_prediction.monitoring.counts import count_batch

        report.drift = count_batch(options.profile, good, probability if len(good) else None)
    return ScoredChunk(
        ids=good[ID_COLUMN].to_numpy(dtype=np.int64),
        probability=probability,
        rejected=rejected,
        report=report,
        reasons=explained,
    )


def score_leads(
    model: Any,
    leads: pd.DataFrame,
    threshold: float,
    provenance: str = "",
    explain: int = 0,
    reason_floor: float = 0.0,
) -> pd.DataFrame:
    """Score a frame of typed leads: the output columns, rows in input order, with
    ``explain`` reasons per lead (as :func:`score_chunk` gives them)."""
    X = leads.loc[:, list(MODEL_INPUT_COLUMNS)]
    reasons = None
    if explain:
        from lead_conversion_prediction.modeling.explain import explain as explain_rows

        X = X.astype("float64")
        contributions = explain_rows(model, X)
        probability = contributions.probability
        reasons = Reasons.explained(contributions, X, explain, reason_floor)
    else:
        probability = positive_probability(model, X)
    ids = leads[ID_COLUMN].to_numpy() if ID_COLUMN in leads else np.arange(len(leads))
    columns = scored_columns(
        ids, probability, ranks_of(best_first(probability, ids)), threshold, provenance
    )
    if reasons is not None:
        columns.update(reasons.columns())
    return output_frame(columns, output_schema(explain))


def scored_columns(
    ids: Any, probability: Any, ranks: Any, threshold: float, model: str
) -> dict[str, Any]:
    """The output columns of scored rows (``scoring.output.OUTPUT_SCHEMA``), from numpy arrays or
    from the columns of a Spark frame."""
    return {
        ID_COLUMN: ids,
        "conversion_probability": probability,
        "predicted_label": probability > threshold,
        "rank": ranks,
        "model": model,
    }


def ranked_tables(
    ids: np.ndarray,
    probability: np.ndarray,
    provenance: str,
    options: ScoringOptions,
    reasons: Reasons | None = None,
) -> Iterator[pa.Table]:
    """The scores of a whole file as output tables of ``chunk_rows`` rows, ranked, in input
    order or (``sort``) best first; a call list (``top``) keeps the best ranks, best first."""
    order = best_first(probability, ids)
    ranks = ranks_of(order)
    kept = len(order) if options.top is None else options.top.rows(len(order))
    ordered = options.sort or options.top is not None
    if ordered:
        order = order[:kept]
    else:
        del order  # rows go out in input order: slices, no index array
    schema = output_schema(options.explain if reasons is not None else 0)
    for start in range(0, max(kept, 1), options.chunk_rows):
        rows: Any = (
            order[start : start + options.chunk_rows]
            if ordered
            else slice(start, start + options.chunk_rows)
        )
        columns = scored_columns(
            ids[rows], probability[rows], ranks[rows], options.threshold, provenance
        )
        if reasons is not None:
            columns.update(reasons.columns(rows))
        yield output_table(columns, schema)


def rank_descending(probability: np.ndarray) -> np.ndarray:
    """Rank 1 for the highest probability; ties keep their input order."""
    return ranks_of(best_first(probability))


def best_first(probability: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Row positions from the highest probability down; ties by ``ids`` when given, then in
    input order.

    Probabilities that float32 holds exactly (XGBoost's) are sorted as one 64-bit key per row:
    the complement of the float's bits (a non-negative float's bits order as its value) above
    the row's place among the ties (its position in ``ids`` order). Every key differs, so
    numpy's plain sort (vectorised) gives the stable order: five times faster than sorting
    positions by two keys. Others are compared.
    """
    values = np.asarray(probability, dtype=np.float64) + 0.0  # -0.0 becomes 0.0
    index_type = _index_type(len(values))
    narrow = values.astype(np.float32)
    exact = np.array_equal(narrow, values) and not (values < 0).any()  # NaN is never equal
    if not exact or len(values) >= 1 << 32:
        compared = (
            np.argsort(-values, kind="stable") if ids is None else np.lexsort((ids, -values))
        )
        return compared.astype(index_type, copy=False)
    place = np.arange(len(values), dtype=np.uint64)
    by_id = None
    if ids is not None and (np.diff(ids) < 0).any():  # ids out of order: ties go by id
        by_id = np.argsort(ids, kind="stable")
        place[by_id] = place.copy()  # each row's place in id order
    keys = (~narrow.view(np.uint32)).astype(np.uint64) << np.uint64(32) | place
    keys.sort()
    order = (keys & np.uint64(0xFFFFFFFF)).astype(index_type)
    return order if by_id is None else by_id[order].astype(index_type, copy=False)


def ranks_of(order: np.ndarray) -> np.ndarray:
    """The rank of each row, given the rows from best to worst."""
    ranks = np.empty(len(order), dtype=_index_type(len(order) + 1))
    ranks[order] = np.arange(1, len(order) + 1, dtype=ranks.dtype)
    return ranks


def _index_type(n: int) -> type[np.signedinteger[Any]]:
    """int32 while it holds ``n`` (half the memory of int64 for ten million rows)."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def count_repeats(values: np.ndarray) -> int:
    """How many values repeat one that comes earlier (sorting a copy: no hash table)."""
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] == ordered[:-1]))
