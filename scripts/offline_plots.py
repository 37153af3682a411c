"""Write an HTML template with which `dvc plots diff` and `dvc plots show` render offline.

DVC's pages load Vega, Vega-Lite and vega-embed from a CDN. This template holds the three
libraries inline instead, at the versions DVC itself names (dvc_render's VegaRenderer), taken
from the npm registry with `npm pack` and checked against the integrity pinned here. The
template has no `{scripts}` placeholder, so DVC adds no CDN tag: the page it writes needs
nothing from the network. `make plots-offline` writes it and points DVC at it
(`plots.html_template` in .dvc/config.local).

    python scripts/offline_plots.py .dvc/plots-offline.html
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

# Package: (version, npm's integrity of its tarball, the file of it a page loads).
LIBRARIES = {
    "vega": (
        "5.20.2",
        "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
        "package/build/vega.min.js",
    ),
    "vega-lite": (
        "5.2.0",
        "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
        "package/build/vega-lite.min.js",
    ),
    "vega-embed": (
        "6.18.2",
        "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
        "package/build/vega-embed.min.js",
    ),
}
# DVC's own page (dvc_render.html.PAGE_HTML), the libraries inline in place of {scripts}.
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
{libraries}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def integrity(data: bytes) -> str:
    """npm's integrity string of a tarball: sha512, base64."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_library(name: str, folder: Path) -> str:
    """The page script of a pinned library, from the npm registry, its tarball checked."""
    version, expected, member = LIBRARIES[name]
    packed = subprocess.run(
        ["npm", "pack", "--json", "--silent", f"{name}@{version}"],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = folder / json.loads(packed.stdout)[0]["filename"]
    if integrity(tarball.read_bytes()) != expected:
        raise SystemExit(f"{name}@{version}: the tarball's integrity is not the pinned one")
    with tarfile.open(tarball) as archive:
        script = archive.extractfile(member)
        if script is None:
            raise SystemExit(f"{name}@{version}: no {member} in the tarball")
        return script.read().decode("utf-8")


def template(scripts: dict[str, str]) -> str:
    """The page DVC fills, with each library's script inline."""
    blocks = []
    for name, code in scripts.items():
        if "</script" in code.lower():
            raise SystemExit(f"{name}: its code would end an inline <script> element")
        blocks.append(f"    <script>/* {name}@{LIBRARIES[name][0]} */\n{code}\n    </script>")
    return PAGE.format(
        libraries="\n".join(blocks), refresh_tag="{refresh_tag}", plot_divs="{plot_divs}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="Where to write the template.")
    target = parser.parse_args().output
    with tempfile.TemporaryDirectory(prefix="offline-plots-") as folder:
        scripts = {name: fetch_library(name, Path(folder)) for name in LIBRARIES}
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(template(scripts), encoding="utf-8")
    temporary.replace(target)
    pinned = ", ".join(f"{name}@{version}" for name, (version, _, _) in LIBRARIES.items())
    print(f"{target}: {pinned} inline")


if __name__ == "__main__":
    main()
