"""DVC's views of the project as the Makefile offers them: ``make exp-show`` in 120 columns,
and ``dvc plots diff`` pages that load nothing from the network (``make plots-offline``)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from lead_conversion_prediction.config import PROJ_ROOT

# An attribute that makes a browser fetch something from the network.
NETWORK_LOAD = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def dry_run(target: str) -> str:
    """The commands ``make <target>`` runs, continued lines joined."""
    return subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "--always-make", target],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")


def test_exp_show_shows_params_and_headline_metrics_in_120_columns() -> None:
    (command,) = [line for line in dry_run("exp-show").splitlines() if "dvc exp show" in line]
    assert command.startswith("COLUMNS=120 dvc exp show")
    for flag in ("--no-pager", "--only-changed", "--drop", "--keep"):
        assert flag in command, flag
    drop = re.search(r"--drop '([^']*)'", command)
    keep = re.search(r"--keep '([^']*)'", command)
    assert drop is not None and keep is not None

    def shown(column: str) -> bool:  # as DVC decides: --keep protects from --drop (re.match)
        return bool(re.match(keep[1], column)) or not re.match(drop[1], column)

    assert all(map(shown, ["holdout.roc_auc", "holdout.log_loss", "train.random_state"]))
    hidden = ["holdout.brier", "cv.neg_log_loss.std", "Created", "models/lead_model.joblib"]
    assert not any(map(shown, [*hidden, "lead_conversion_prediction"]))


def test_the_dvc_views_are_in_make_help() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"exp-show", "plots-offline"} <= set(shown)


@pytest.fixture(scope="module")
def offline_plots() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "offline_plots", PROJ_ROOT / "scripts" / "offline_plots.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_page_dvc_renders_with_the_offline_template_loads_nothing_from_the_network(
    offline_plots: ModuleType, tmp_path: Path
) -> None:
    from dvc_render import VegaRenderer, render_html

    scripts = {
        name: f"window.{name.replace('-', '_')} = {{}};" for name in offline_plots.LIBRARIES
    }
    template = tmp_path / "offline.html"
    template.write_text(offline_plots.template(scripts), encoding="utf-8")
    points = [{"fpr": 0.0, "tpr": 0.0, "rev": "workspace"}, {"fpr": 1.0, "tpr": 1.0, "rev": "w"}]
    plot = VegaRenderer(points, "roc", x="fpr", y="tpr")
    page = Path(render_html([plot], tmp_path / "index.html", template)).read_text()
    default = Path(render_html([plot], tmp_path / "default.html")).read_text()
    assert NETWORK_LOAD.search(default), "DVC's own page loads Vega from a CDN"
    assert NETWORK_LOAD.search(page) is None
    assert all(code in page for code in scripts.values()) and "vegaEmbed('#" in page


def test_a_library_that_would_end_its_script_element_is_refused(
    offline_plots: ModuleType,
) -> None:
    scripts = dict.fromkeys(offline_plots.LIBRARIES, "x = '</script>';")
    with pytest.raises(SystemExit, match="would end an inline <script> element"):
        offline_plots.template(scripts)


def test_plots_offline_pins_the_versions_dvc_names_and_points_dvc_at_the_page(
    offline_plots: ModuleType,
) -> None:
    from dvc_render.vega import VegaRenderer

    named = dict(re.findall(r"npm/([a-z-]+)@([\d.]+)", VegaRenderer.SCRIPTS))
    pinned = {name: version for name, (version, _, _) in offline_plots.LIBRARIES.items()}
    assert pinned == named
    plan = dry_run("plots-offline")
    assert "scripts/offline_plots.py .dvc/plots-offline.html" in plan
    assert "dvc config --local plots.html_template plots-offline.html" in plan
