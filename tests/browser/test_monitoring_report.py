"""The monitoring pages open in a browser as a person would see them.

A drifted batch's ``report.html`` and a backtest's, written to a folder and opened from the
disk in headless Chromium: the tables render worst first, every figure loads, nothing is asked
of the network, and the console stays free of errors. A screenshot of each page is kept beside
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lead_conversion_prediction.monitoring.report import render_backtest, render_drift
from tests.support import backtest_report, browser_page, drifted_report

PAGE_MILLISECONDS = 60_000


def open_page(page: Any, path: Path) -> tuple[list[str], list[str]]:
    """Open ``path`` in ``page``; the console's errors and the requests for other files."""
    errors: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load", timeout=PAGE_MILLISECONDS)
    page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
    others = [url for url in requests if url != path.as_uri() and not url.startswith("data:")]
    return errors, others


def table_rows(page: Any, index: int) -> list[list[str]]:
    """The cells' text of each body row of the page's table ``index``."""
    rows = page.locator("table").nth(index).locator("tbody tr")
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()]


def images_loaded(page: Any) -> list[bool]:
    """For each image of the page: whether the browser decoded it (it has a width)."""
    script = (
        "() => Array.from(document.images, (image) => image.complete && image.naturalWidth > 0)"
    )
    loaded: list[bool] = page.evaluate(script)
    return loaded


@pytest.mark.parametrize("rows", [500, 40], ids=["batch", "small-batch"])
def test_the_drift_page_renders_its_table_and_figures(tmp_path: Path, rows: int) -> None:
    report = drifted_report(rows)
    path = tmp_path / "report.html"
    path.write_text(render_drift(report), encoding="utf-8")

    with browser_page(tmp_path / "profile") as page:
        errors, others = open_page(page, path)
        inputs = table_rows(page, 0)
        loaded = images_loaded(page)
        weak_line = page.get_by_text("statistics are weak").count()

    assert errors == [] and others == []
    assert inputs[0][0] in report.alerts and inputs[0][1] == "alert"
    assert {row[0] for row in inputs} == {item.name for item in report.inputs} | {"prediction"}
    assert any(row[0] == "source" and "<script>" in row[6] for row in inputs)
    assert len(loaded) == len(report.inputs) + 1 and all(loaded)
    assert weak_line == (1 if report.weak else 0)
    assert path.with_suffix(".png").stat().st_size > 0


def test_the_backtest_page_renders_its_tables_and_figures(tmp_path: Path) -> None:
    report = backtest_report()
    path = tmp_path / "report.html"
    path.write_text(render_backtest(report), encoding="utf-8")

    with browser_page(tmp_path / "profile") as page:
        errors, others = open_page(page, path)
        join = table_rows(page, 0)
        cohorts = table_rows(page, 1)
        metrics = table_rows(page, 2)
        loaded = images_loaded(page)

    assert errors == [] and others == []
    assert join == [["901", "885", "880", "21", "5", "1", "0"]]
    assert [row[0] for row in cohorts] == ["2024-03", "2024-01", "2024-02"]
    assert cohorts[0][3] == "alert"
    assert metrics[0][:2] == ["holdout", "0.830 (0.800\u20130.860)"]
    metric_count = len(report.holdout or {})
    assert len(loaded) == metric_count + len(report.cohorts) and all(loaded)
    assert path.with_suffix(".png").stat().st_size > 0


def test_the_checks_see_a_broken_page(tmp_path: Path) -> None:
    """The checks above can fail: a script error, an image that does not decode and one
    fetched from beside the page are all seen."""
    path = tmp_path / "broken.html"
    path.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="data:image/png;base64,AAAA"><img src="figure.png">'
        '<script>throw new Error("broken")</script></body></html>',
        encoding="utf-8",
    )
    with browser_page(tmp_path / "profile") as page:
        errors, others = open_page(page, path)
        loaded = images_loaded(page)

    assert any("broken" in error for error in errors)
    assert others == [(tmp_path / "figure.png").as_uri()]
    assert loaded == [False, False]
