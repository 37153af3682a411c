"""The pages a person opens: ``report.html`` of a drift check and of a backtest.

Each renderer is a pure function from a typed report to one self-contained HTML page: inline
CSS, figures as base64 PNG ``data:`` addresses, no script and no external address, so the
file reads the same mailed, attached to a run or opened from a disk. Figures are built on
``matplotlib.figure.Figure`` (no pyplot state) and saved without metadata: one report always
renders to the same page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING

from lead_conversion_prediction.monitoring.drift import (
    Distribution,
    DriftReport,
    InputDrift,
    PredictionSummary,
    Statistic,
    Status,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lead_conversion_prediction.monitoring.backtest import (
        BacktestReport,
        CohortResult,
        MetricBand,
    )

WORST_FIRST: dict[Status, int] = {"alert": 0, "warn": 1, "ok": 2}
COLOURS: dict[Status, str] = {"ok": "#1a7f37", "warn": "#9a6700", "alert": "#cf222e"}
REFERENCE_COLOUR = "#8c959f"
SIZE = (3.8, 2.8)  # inches of each small figure
DPI = 100
MOST_BARS = 15  # a figure shows the largest levels; the others are summed into one bar
LONGEST_LABEL = 18  # characters of a level's name on a figure's axis (the margin's room)
METRIC_LABELS = {
    "roc_auc": "ROC-AUC",
    "log_loss": "Log-loss (lower is better)",
    "brier": "Brier score (lower is better)",
    "top_10_capture": "Converters in the top 10 % of scores",
    "top_20_capture": "Converters in the top 20 % of scores",
}
CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;max-width:78rem;margin:1.5rem auto;
padding:0 1rem}h1{font-size:1.5rem;margin:0 0 .3rem}p{margin:.3rem 0}
h2{font-size:1.15rem;margin:2rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid #d0d7de}
.facts span{margin-right:1.4rem}.muted{color:#57606a}.nowrap{white-space:nowrap}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .7rem;border-radius:4px}
table{border-collapse:collapse;margin:.4rem 0}th{background:#f6f8fa}b{white-space:nowrap}
th,td{padding:.3rem .7rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
td.number{text-align:right;font-variant-numeric:tabular-nums}
tr.row-alert td:first-child{box-shadow:inset 4px 0 #cf222e}
tr.row-warn td:first-child{box-shadow:inset 4px 0 #9a6700}
.status{display:inline-block;min-width:3em;padding:0 .45em;border-radius:4px;color:#fff;
font-weight:600;text-align:center}.status.ok{background:#1a7f37}
.status.warn{background:#9a6700}.status.alert{background:#cf222e}
.text-warn{color:#9a6700}.text-alert{color:#cf222e}img{max-width:100%;height:auto}
.swatch{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em;margin:0 .2em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}
"""


def render_drift(report: DriftReport) -> str:
    """The drift report as a page: the inputs worst first, what the probabilities say, and
    each input's shares in the reference and in the batch."""
    every = [*report.inputs, *([report.prediction] if report.prediction else [])]
    items = sorted(every, key=_worst_first)
    body = [
        f"<h1>Drift report: {_e(report.model)}</h1>",
        _facts(
            f"batch <b>{_e(report.batch)}</b>",
            f'<span class="muted">md5 {_e(report.batch_md5)}</span>',
            f"<b>{report.rows:,}</b> rows",
            f"status {_badge(report.status)}",
        ),
    ]
    if report.weak:
        body.append(
            f'<p class="note">The batch has {report.rows:,} rows, under '
            f"{report.limits.min_rows:,}: its statistics are weak, and the KS test does not "
            "alert on it.</p>"
        )
    body += [f'<p class="text-alert">{_e(line)}</p>' for line in report.alert_lines()]
    body += [
        "<h2>Inputs, worst first</h2>",
        _table(
            ["input", "status", "statistic", "value", "limits", "other statistics", "notes"],
            [_drift_cells(item) for item in items],
            [item.status for item in items],
        ),
        f'<p class="muted">A p-value alone never alerts: the KS statistic alerts past its '
        f"limit only with p below {report.limits.p_value:g}.</p>",
    ]
    if report.summary is not None:
        body += ["<h2>Predicted probabilities</h2>", _summary_table(report.summary)]
    body += [
        "<h2>Shares of rows: reference against batch</h2>",
        '<p class="muted">Per bin of the reference (numeric) or level (categorical): '
        f'<span class="swatch" style="background:{REFERENCE_COLOUR}"></span>the reference '
        "(the training rows; for the prediction, the model's probabilities on them), then the "
        "batch, in the colour of its status.</p>",
        _grid(
            _image(_distribution_figure(item), f"{item.name}: shares of rows per bin or level")
            for item in items
        ),
    ]
    return _page(f"Drift report: {report.model}", body)


def render_backtest(report: BacktestReport) -> str:
    """The backtest as a page: how the scores met the outcomes, the cohorts worst first, each
    metric per cohort against the holdout's band, and a reliability diagram per cohort."""
    join, settings = report.join, report.settings
    unmatched = {
        "scores without outcome": join.scores_without_outcome,
        "outcomes without score": join.outcomes_without_score,
        "duplicate score ids": join.duplicate_score_ids,
        "duplicate outcome ids": join.duplicate_outcome_ids,
    }
    counts = [f"{join.scores:,}", f"{join.outcomes:,}", f"{join.matched:,}"]
    counts += [f'<span class="text-warn">{n:,}</span>' if n else "0" for n in unmatched.values()]
    metrics = list(
        dict.fromkeys([*(report.holdout or {}), *(m for c in report.cohorts for m in c.metrics)])
    )
    holdout = [] if report.holdout is None else [("holdout", report.holdout)]
    cohorts = sorted(report.cohorts, key=_worst_first)
    body = [
        f"<h1>Backtest: {_e(report.model)}</h1>",
        _facts(
            f"cohorts by <b>{_e(report.by)}</b>",
            f"<b>{len(report.cohorts)}</b> cohorts",
            f"<b>{join.matched:,}</b> scores with their outcome",
            f"status {_badge(report.status)}",
        ),
        *(f'<p class="text-alert">{_e(line)}</p>' for line in report.alerts),
        "<h2>Scores joined to outcomes</h2>",
        _table(["scores", "outcomes", "matched", *unmatched], [counts], numeric=True),
        "<h2>Cohorts, worst first</h2>",
        _table(
            ["cohort", "rows", "converters", "status", "alerts", "note"],
            [_cohort_cells(c) for c in cohorts],
            [c.status for c in cohorts],
        ),
        "<h2>Metrics per cohort, against the holdout's band</h2>",
        _table(
            ["", *(_e(METRIC_LABELS.get(m, m)) for m in metrics)],
            [
                [f"<b>{_e(name)}</b>", *(_band(bands.get(m)) for m in metrics)]
                for name, bands in [*holdout, *((c.cohort, c.metrics) for c in report.cohorts)]
            ],
        ),
        f'<p class="muted">Each value with its {settings.confidence:.0%} bootstrap interval '
        f"({settings.resamples:,} resamples, random state {settings.random_state}). In the "
        "figures, the holdout's interval is the grey band and its value the dashed line.</p>",
        _grid(_image(_metric_figure(report, m), f"{m} per cohort") for m in metrics),
        "<h2>Reliability per cohort</h2>",
        f'<p class="muted">Observed conversion rate against the mean predicted probability, '
        f"in {settings.reliability_bins} bins; on the diagonal, the probabilities are right."
        "</p>",
        _grid(
            _image(_reliability_figure(c), f"reliability of cohort {c.cohort}")
            for c in report.cohorts
        ),
    ]
    return _page(f"Backtest: {report.model}", body)


def _drift_cells(item: InputDrift) -> list[str]:
    deciding = item.worst
    others = " &middot; ".join(
        f'<span class="text-{s.status}">{_e(s.name)} {_e(_value(s))}</span>'
        for s in item.statistics
        if s is not deciding
    )
    notes = [item.note] if item.note else []
    if item.unseen_levels:
        more = len(item.unseen_levels[5:])
        notes.append("levels unseen in training: " + ", ".join(item.unseen_levels[:5]))
        notes += [f"and {more} more"] if more else []
    if item.missing_rate or item.reference_missing_rate:
        notes.append(
            f"missing {item.missing_rate:.1%}, reference {item.reference_missing_rate:.1%}"
        )
    limits = "" if deciding.alert is None else f"warn {deciding.warn:g}, alert {deciding.alert:g}"
    return [
        f"<b>{_e(item.name)}</b>",
        _badge(item.status),
        _e(deciding.name),
        f'<span class="nowrap">{_e(_value(deciding))}</span>',
        f'<span class="nowrap">{_e(limits)}</span>',
        others,
        "<br>".join(_e(note) for note in notes),
    ]


def _cohort_cells(cohort: CohortResult) -> list[str]:
    alerts = "<br>".join(_e(alert) for alert in cohort.alerts)
    counts = [f"{cohort.rows:,}", f"{cohort.converters:,}"]
    return [f"<b>{_e(cohort.cohort)}</b>", *counts, _badge(cohort.status), alerts, _e(cohort.note)]


def _summary_table(summary: PredictionSummary) -> str:
    auc = summary.expected_roc_auc
    rows = [
        ["mean predicted probability", _number(summary.mean)],
        ["conversion rate of the training rows", _number(summary.training_rate)],
        ["expected converters in the batch", f"{summary.expected_converters:,.0f}"],
        ["expected ROC-AUC, if the probabilities are right", _number(auc)],
    ]
    return _table(["", "value"], [[_e(name), value] for name, value in rows])


def _distribution_figure(item: InputDrift) -> Figure:
    """Reference and batch shares side by side, per bin (numeric) or level (categorical)."""
    from matplotlib.ticker import PercentFormatter

    labels, reference, batch = _largest_bars(item.distribution)
    figure, axes = _figure()
    places = range(len(labels))
    axes.bar([x - 0.2 for x in places], reference, 0.4, color=REFERENCE_COLOUR)
    axes.bar([x + 0.2 for x in places], batch, 0.4, color=COLOURS[item.status])
    _set_ticks(axes, [_plain(label) for label in labels])
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_title(f"{_plain(item.name)}: {item.status}", color=COLOURS[item.status], fontsize=10)
    return figure


def _metric_figure(report: BacktestReport, metric: str) -> Figure:
    """One metric per cohort as a point with its interval; the holdout's band behind them."""
    figure, axes = _figure()
    band = (report.holdout or {}).get(metric)
    if band is not None:
        axes.axhspan(band.low, band.high, color=REFERENCE_COLOUR, alpha=0.25, linewidth=0)
        axes.axhline(band.value, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
    for place, cohort in enumerate(report.cohorts):
        if (value := cohort.metrics.get(metric)) is not None:
            colour = COLOURS[cohort.status]
            axes.vlines(place, value.low, value.high, color=colour, linewidth=1.5)
            axes.plot([place], [value.value], marker="o", color=colour)
    _set_ticks(axes, [_plain(c.cohort) for c in report.cohorts])
    axes.set_xlim(-0.5, max(len(report.cohorts), 1) - 0.5)
    axes.set_title(METRIC_LABELS.get(metric, _plain(metric)), fontsize=10)
    return figure


def _reliability_figure(cohort: CohortResult) -> Figure:
    """Observed rate against mean predicted probability per bin; the diagonal is perfect."""
    filled = [
        (b.mean_predicted, b.observed_rate)
        for b in cohort.reliability
        if b.mean_predicted is not None and b.observed_rate is not None
    ]
    figure, axes = _figure()
    colour = COLOURS[cohort.status]
    axes.plot([0, 1], [0, 1], linestyle="--", color=REFERENCE_COLOUR, linewidth=1)
    if filled:
        axes.plot(*zip(*filled, strict=True), marker="o", color=colour)
    axes.set(xlim=(0, 1), ylim=(0, 1))
    axes.set_xlabel("mean predicted probability", fontsize=8)
    axes.set_ylabel("observed rate", fontsize=8)
    title = f"{_plain(cohort.cohort)}: {cohort.rows:,} rows, {cohort.status}"
    axes.set_title(title, color=colour, fontsize=10)
    return figure


def _set_ticks(axes: Axes, names: list[str]) -> None:
    """One tick per bar or cohort, its name slanted when the names would run together."""
    slanted = sum(len(name) + 2 for name in names) > 45
    rotation, align = (35, "right") if slanted else (0, "center")
    axes.set_xticks(range(len(names)), names, rotation=rotation, ha=align)


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    # Fixed margins with room for slanted names: a layout engine doubles the drawing time.
    figure = Figure(figsize=SIZE, dpi=DPI)
    figure.subplots_adjust(left=0.17, right=0.97, top=0.9, bottom=0.27)
    axes = figure.add_subplot()
    axes.tick_params(labelsize=7)
    return figure, axes


def _image(figure: Figure, alt: str) -> str:
    """The figure as an ``img`` with a PNG ``data:`` address (no metadata that varies)."""
    import base64
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    w, h = (round(side * DPI) for side in figure.get_size_inches())
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}" width="{w}" height="{h}">'


def _page(title: str, body: list[str]) -> str:
    # The empty icon keeps a browser from asking the disk for /favicon.ico.
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{_e(title)}</title><link rel="icon" href="data:,"><style>{CSS}</style>'
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _table(
    headers: list[str], rows: list[list[str]], statuses: list[Status] | None = None,
    numeric: bool = False,
) -> str:  # fmt: skip
    """A table of cells already escaped; each row marked by its status when given."""
    cell = '<td class="number">' if numeric else "<td>"
    marks = [f' class="row-{status}"' for status in statuses] if statuses else [""] * len(rows)
    lines = [
        f"<tr{mark}>" + "".join(f"{cell}{value}</td>" for value in row) + "</tr>"
        for mark, row in zip(marks, rows, strict=True)
    ]
    head = "".join(f"<th>{header}</th>" for header in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _facts(*parts: str) -> str:
    return '<p class="facts">' + "".join(f"<span>{part}</span>" for part in parts) + "</p>"


def _grid(images: Iterable[str]) -> str:
    return '<div class="grid">' + "".join(images) + "</div>"


def _badge(status: Status) -> str:
    return f'<span class="status {status}">{status}</span>'


def _worst_first(item: InputDrift | CohortResult) -> int:
    return WORST_FIRST[item.status]


def _largest_bars(distribution: Distribution) -> tuple[list[str], list[float], list[float]]:
    """The bins or levels, with the smallest of more than ``MOST_BARS`` levels summed."""
    labels, reference, batch = distribution.labels, distribution.reference, distribution.batch
    if len(labels) <= MOST_BARS:
        return labels, reference, batch
    by_size = sorted(range(len(labels)), key=lambda i: -max(reference[i], batch[i]))
    kept, rest = sorted(by_size[: MOST_BARS - 1]), by_size[MOST_BARS - 1 :]
    return (
        [*(labels[i] for i in kept), f"{len(rest)} others"],
        [*(reference[i] for i in kept), sum(reference[i] for i in rest)],
        [*(batch[i] for i in kept), sum(batch[i] for i in rest)],
    )


def _value(statistic: Statistic) -> str:
    p = statistic.p_value
    tested = "" if p is None else " (p < 0.0001)" if p < 0.0001 else f" (p = {p:.2g})"
    return f"{statistic.value:.3g}{tested}"


def _band(band: MetricBand | None) -> str:
    if band is None:
        return ""
    low, high = _number(band.low), _number(band.high)
    return f'<span class="nowrap">{_number(band.value)} ({low}&ndash;{high})</span>'


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _plain(text: str) -> str:
    """A name as matplotlib should draw it: cut short, and ``$`` not read as mathematics."""
    cut = text if len(text) <= LONGEST_LABEL else text[: LONGEST_LABEL - 3] + "..."
    return cut.replace("$", r"\$")


def _e(text: object) -> str:
    return escape(str(text), quote=True)
