"""The monitoring pages: self-contained, worst first, a figure for everything, names escaped.

The reports are real ones, built by the monitoring functions from small synthetic batches
(``tests/support.py``).
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from lead_conversion_prediction.monitoring.backtest import BacktestReport
from lead_conversion_prediction.monitoring.drift import Distribution, DriftReport
from lead_conversion_prediction.monitoring.report import (
    MOST_BARS,
    _largest_bars,
    render_backtest,
    render_drift,
)
from tests.support import HOLDOUT_BANDS, backtest_report, drifted_report

PNG = '<img src="data:image/png;base64,'
ORDER = {"alert": 0, "warn": 1, "ok": 2}


class Tables(HTMLParser):
    """The text of each cell of each table row of a page, by table."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


@pytest.fixture(scope="module")
def drifted() -> DriftReport:
    return drifted_report()


@pytest.fixture(scope="module")
def drift_page(drifted: DriftReport) -> str:
    return render_drift(drifted)


@pytest.fixture(scope="module")
def backtest() -> BacktestReport:
    return backtest_report()


@pytest.fixture(scope="module")
def backtest_page(backtest: BacktestReport) -> str:
    return render_backtest(backtest)


def outside_references(page: str) -> list[str]:
    """Every address the page refers to that is not inside it, and any script."""
    addresses = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?([^"')\s>]*)""", page)
    found = [address for address in addresses if not address.startswith("data:")]
    found += re.findall(r"https?://|<script|<iframe|<link rel=\"stylesheet\"|@import", page)
    return found


def test_the_drift_page_refers_to_nothing_outside_itself(drift_page: str) -> None:
    assert outside_references(drift_page) == []
    assert drift_page.startswith("<!DOCTYPE html>")


def test_the_check_for_outside_references_finds_them() -> None:
    page = '<img src="/logo.png"><a href="https://example.com">x</a><style>@import x;</style>'
    assert outside_references(page) == ["/logo.png", "https://example.com", "https://", "@import"]


def test_the_inputs_table_starts_with_an_input_in_alert(
    drifted: DriftReport, drift_page: str
) -> None:
    header, *rows = Tables(drift_page).tables[0]
    assert header[:4] == ["input", "status", "statistic", "value"]
    assert rows[0][0] in drifted.alerts and rows[0][1] == "alert"
    assert [ORDER[row[1]] for row in rows] == sorted(ORDER[row[1]] for row in rows)
    assert {row[0] for row in rows} == {item.name for item in drifted.inputs} | {"prediction"}


def test_the_deciding_statistic_shows_with_its_limits(drift_page: str) -> None:
    rows = {row[0]: row for row in Tables(drift_page).tables[0][1:]}
    assert rows["purchases"][2:5] == ["psi", rows["purchases"][3], "warn 0.1, alert 0.25"]
    assert "ks" in rows["purchases"][5]
    assert rows["source"][6] == "levels unseen in training: <script>"


def test_every_input_and_the_prediction_has_its_figure(
    drifted: DriftReport, drift_page: str
) -> None:
    images = re.findall(re.escape(PNG) + r'([A-Za-z0-9+/=]+)"', drift_page)
    assert len(images) == len(drifted.inputs) + 1
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)


def test_a_level_named_like_markup_is_escaped(drift_page: str) -> None:
    assert "&lt;script&gt;" in drift_page
    assert "<script" not in drift_page.lower()


def test_the_prediction_summary_shows_what_the_probabilities_imply(
    drifted: DriftReport, drift_page: str
) -> None:
    assert drifted.summary is not None
    rows = dict(row for row in Tables(drift_page).tables[1][1:])
    assert rows["mean predicted probability"] == f"{drifted.summary.mean:.3f}"
    assert rows["conversion rate of the training rows"] == f"{drifted.summary.training_rate:.3f}"
    assert (
        rows["expected converters in the batch"] == f"{drifted.summary.expected_converters:,.0f}"
    )
    assert "expected ROC-AUC, if the probabilities are right" in rows


def test_an_input_with_many_levels_shows_the_largest_and_sums_the_rest(
    drifted: DriftReport,
) -> None:
    """Thirty levels, named with dollar signs that matplotlib would read as mathematics."""
    labels = [f"${level} off" for level in range(30)]
    shares = [level / 435 for level in range(30)]
    many = Distribution(labels=labels, reference=shares, batch=shares[::-1])
    bars, reference, batch = _largest_bars(many)
    assert len(bars) == MOST_BARS and bars[-1] == f"{31 - MOST_BARS} others"
    assert sum(reference) == pytest.approx(1) and sum(batch) == pytest.approx(1)
    source = next(item for item in drifted.inputs if item.name == "source")
    page = render_drift(drifted.model_copy(update={
        "inputs": [source.model_copy(update={"distribution": many})], "prediction": None,
    }))  # fmt: skip
    assert page.count(PNG) == 1


def test_a_small_batch_is_said_to_have_weak_statistics(drift_page: str) -> None:
    small = drifted_report(rows=40)
    assert small.weak
    assert "statistics are weak" in render_drift(small)
    assert "statistics are weak" not in drift_page


def test_the_same_report_renders_to_the_same_page(drifted: DriftReport) -> None:
    """Two inputs are enough to show it, and quicker than seven."""
    fewer = drifted.model_copy(update={"inputs": drifted.inputs[:2]})
    assert render_drift(fewer) == render_drift(fewer)


def test_the_backtest_page_refers_to_nothing_outside_itself(backtest_page: str) -> None:
    assert outside_references(backtest_page) == []


def test_the_backtest_page_shows_the_join_counts(
    backtest: BacktestReport, backtest_page: str
) -> None:
    header, counts = Tables(backtest_page).tables[0]
    shown = dict(zip(header, counts, strict=True))
    join = backtest.join
    assert shown == {
        "scores": f"{join.scores:,}",
        "outcomes": f"{join.outcomes:,}",
        "matched": f"{join.matched:,}",
        "scores without outcome": "21",
        "outcomes without score": "5",
        "duplicate score ids": "1",
        "duplicate outcome ids": "0",
    }


def test_the_cohorts_table_starts_with_the_cohort_in_alert(backtest_page: str) -> None:
    header, *rows = Tables(backtest_page).tables[1]
    assert header[:4] == ["cohort", "rows", "converters", "status"]
    assert [row[0] for row in rows] == ["2024-03", "2024-01", "2024-02"]
    assert rows[0][3] == "alert" and "roc_auc" in rows[0][4]


def test_the_backtest_page_shows_the_holdout_band(backtest_page: str) -> None:
    header, holdout, *cohorts = Tables(backtest_page).tables[2]
    value, low, high = HOLDOUT_BANDS["roc_auc"]
    assert holdout[0] == "holdout"
    assert holdout[header.index("ROC-AUC")] == f"{value:.3f} ({low:.3f}\u2013{high:.3f})"
    assert [row[0] for row in cohorts] == ["2024-01", "2024-02", "2024-03"]


def test_the_backtest_page_has_a_figure_per_metric_and_per_cohort(
    backtest: BacktestReport, backtest_page: str
) -> None:
    assert backtest_page.count(PNG) == len(HOLDOUT_BANDS) + len(backtest.cohorts)


def test_a_backtest_without_holdout_bands_shows_no_holdout_row() -> None:
    report = backtest_report(holdout=False)
    assert report.status == "ok"  # without the holdout's bands nothing alerts
    page = render_backtest(report)
    assert [row[0] for row in Tables(page).tables[2][1:]] == ["2024-01", "2024-02", "2024-03"]
    assert "holdout" not in [row[0] for row in Tables(page).tables[2]]


def test_a_backtest_with_no_joined_lead_shows_the_holdout_alone(backtest: BacktestReport) -> None:
    nothing = backtest.model_copy(
        update={"cohorts": [], "status": "warn", "alerts": ["no scored lead has an outcome"]}
    )
    page = render_backtest(nothing)
    tables = Tables(page).tables
    assert tables[1][1:] == [] and [row[0] for row in tables[2][1:]] == ["holdout"]
    assert "no scored lead has an outcome" in page and page.count(PNG) == len(HOLDOUT_BANDS)
