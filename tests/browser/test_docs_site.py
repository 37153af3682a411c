"""The docs site builds strictly and reads in a browser, with no internet.

``mkdocs build --strict`` of the project's ``mkdocs.yml`` into a temporary folder, served by a
static file server on a free loopback port, and three pages opened in headless Chromium with a
fresh profile: the home page, a page moved out of the README and an API page written from the
docstrings. Each must show its heading, log no console error and ask nothing of another host
(no web font, no script from a CDN).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lead_conversion_prediction.config import PROJ_ROOT
from tests.support import browser_page, free_port

pytestmark = pytest.mark.long(seconds=15)

BUILD_SECONDS = 600  # an idle machine needs about 5 s
PAGE_MILLISECONDS = 60_000
# (path under the site, the page's title, a heading of its sections)
PAGES = [
    ("", "Lead conversion prediction", "Where to read what"),
    (
        "registry/",
        "Tracking and the registry (MLflow)",
        "Back to the last commit after an experiment",
    ),
    ("api/modeling/", "Modeling", "lead_conversion_prediction.modeling.promotion"),
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No log line per request on the test's output."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `make site` builds it (`mkdocs build --strict`, never --quiet, which hides
    from strict mode the warnings it counts), here into a temporary folder."""
    folder = tmp_path_factory.mktemp("docs") / "site"
    built = subprocess.run(
        [
            sys.executable, "-m", "mkdocs", "build", "--strict",
            "--config-file", str(PROJ_ROOT / "mkdocs.yml"),
            "--site-dir", str(folder),
        ],
        cwd=PROJ_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stdout + built.stderr, "a strict build prints no warning"
    return folder


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """A static file server of the built site on a free loopback port, stopped afterwards."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), partial(QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_home_page_and_two_others_render_offline_without_console_errors(
    served: str, tmp_path: Path
) -> None:
    errors: list[str] = []
    elsewhere: list[str] = []
    with browser_page(tmp_path / "profile") as page:
        page.on(
            "console",
            lambda message: (
                errors.append(f"{page.url}: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith((served, "data:", "blob:"))
                else elsewhere.append(request.url)
            ),
        )
        for path, heading, section in PAGES:
            response = page.goto(served + path, timeout=PAGE_MILLISECONDS)
            assert response is not None and response.status == 200, path
            title = page.locator("article h1").first
            title.wait_for(state="visible", timeout=PAGE_MILLISECONDS)
            assert title.inner_text().strip().removesuffix("¶") == heading, path  # permalink
            shown = page.locator("article").get_by_role(
                "heading", name=re.compile(re.escape(section))
            )
            shown = shown.first
            shown.wait_for(state="visible", timeout=PAGE_MILLISECONDS)
            page.wait_for_load_state("load", timeout=PAGE_MILLISECONDS)
    assert errors == []
    assert elsewhere == [], "the site asked another host for something"
