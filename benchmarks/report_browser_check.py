"""Open a built Snakemake report in headless Chromium and screenshot three views.

The views: the landing page (the report's first view), one result table (an HTML page)
and one run's 3D weight-change scene. Snakemake's report is a React app without URL
routing, so each view is a copy of ``report.html`` with a script that calls the app's own
``app.setView`` (what its "view" buttons call) with the item's ``data_uri`` from the page's
``results`` object. Each screenshot must not be blank; the scene's must show the WebGL
canvas's coloured bars (viridis pixels left of the colour bar, which is SVG).

Needs Debian's ``chromium`` (``apt-get install chromium``). Not part of the test suite (a
browser and ~30 s); run it after ``snakemake --report report.zip``:

``python benchmarks/report_browser_check.py results/smoke/report.zip --out report-screenshots``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

WINDOW = (1600, 1000)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--use-angle=swiftshader",  # WebGL in software, headless
    "--enable-unsafe-swiftshader",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
    "--virtual-time-budget=20000",  # let React and plotly finish drawing
]


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("no chromium found: apt-get install chromium")


def unpack(report: Path, into: Path) -> Path:
    """The report's ``report.html`` (a .zip is unpacked into ``into``)."""
    if report.suffix != ".zip":
        return report
    with zipfile.ZipFile(report) as archive:
        archive.extractall(into)
    return next(into.rglob("report.html"))


def results_of(page: str) -> dict:
    match = re.search(r'<script id="results">\s*var results = (\{.*?\});\s*</script>', page, re.S)
    if not match:
        sys.exit("no results object in the report: not a Snakemake 9 report?")
    return json.loads(match.group(1))


def view_copy(report_html: Path, name: str, key: str | None, results: dict) -> Path:
    """A copy of the report that opens on ``key``'s content (None: the report's own first view)."""
    page = report_html.read_text()
    if key is not None:
        call = json.dumps({"content": "html", "contentPath": results[key]["data_uri"], "resultPath": key})
        # the App sets the global ``app`` when React first renders it: wait for that, then switch the view
        script = (
            "<script>var check = setInterval(function () { if (typeof app !== 'undefined' && app) "
            f"{{ clearInterval(check); app.setView({call}); }} }}, 100);</script>"
        )
        head, tail = page.rsplit("</body>", 1)  # the last one: the app's scripts hold the string too
        page = head + script + "</body>" + tail
    copy = report_html.with_name(f"check_{name}.html")
    copy.write_text(page)
    return copy


def screenshot(chromium: str, page: Path, out: Path, profile: Path) -> np.ndarray:
    subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Saturated pixels (the bars' viridis colours), not grey, white or black text."""
    return (pixels.max(axis=2) - pixels.min(axis=2)) > 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="report.zip or report.html built by snakemake --report")
    parser.add_argument("--out", type=Path, default=Path("report-screenshots"))
    parser.add_argument("--table", default="table8_summary.html", help="file name of the table to open")
    parser.add_argument("--scene-run", default=None, help="run whose 3D scene to open (default: the first)")
    args = parser.parse_args()
    chromium = browser()
    args.out.mkdir(parents=True, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        report_html = unpack(args.report.resolve(), Path(tmp) / "report")
        results = results_of(report_html.read_text())
        table = next(k for k in results if k.endswith("/" + args.table))
        scenes = sorted(k for k in results if k.endswith("/weight_changes_3d.html"))
        scene = next(k for k in scenes if args.scene_run is None or f"/{args.scene_run}/" in k)
        for name, key in (("landing", None), ("table", table), ("scene", scene)):
            out = args.out / f"{name}.png"
            pixels = screenshot(chromium, view_copy(report_html, name, key, results), out, Path(tmp) / f"p-{name}")
            spread = float(pixels.std())
            line = f"{name}: {out} ({pixels.shape[1]}x{pixels.shape[0]}, pixel sd {spread:.1f}"
            if name == "scene":
                # the content pane starts right of the report's navbar; the colour bar is the pane's right edge
                pane = pixels[:, int(0.25 * WINDOW[0]) : int(0.80 * WINDOW[0])]
                drawn = int(coloured(pane).sum())
                line += f", {drawn} coloured pixels in the scene"
                if drawn < 2000:
                    failures.append(f"{name}: the WebGL canvas drew no bars ({drawn} coloured pixels)")
            print(line + ")")
            if spread < 5:
                failures.append(f"{name}: blank screenshot (pixel sd {spread:.1f})")
        print(f"opened: {table}, {scene}")
    if failures:
        sys.exit("\n".join(failures))
    print("browser check passed")


if __name__ == "__main__":
    main()
