"""The report's landing page: what the run found, read from the run's own table files.

Snakemake's report opens on the global description (``workflow/report/workflow.rst``),
which includes the HTML fragment written here: the verdict on each of the study's claims
first, then Table 8 with its intervals, Table 9, the baselines, the freeze-depth recommendation, the key
figures, the machine and the wall time, and links into the report's categories. Nothing
on it is typed by hand: every figure comes from the tables the ``tables`` and
``freeze_recommendation`` rules wrote.
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from layerscope.core.atomic import write_text
from layerscope.core.devices import gpu_count
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import MISSING, best_mask, cell_text, read_table, table_fragment
from layerscope.results.comparisons import short_verdict

ACCURACIES = ["train_accuracy", "val_accuracy", "test_accuracy", "test_f1_weighted"]
WITH_INTERVALS = ["test_accuracy", "test_f1_weighted"]
CATEGORIES = ["Tables", "Training", "Weight changes", "Explanations", "Data"]
_STYLE = (  # the report centres its description in a narrow column: widen it, start it at the top
    "<style>.prose:has(.layerscope-landing){max-width:72rem}"
    ".h-screen:has(.layerscope-landing){align-items:flex-start;justify-content:flex-start}"
    ".layerscope-landing table{border-collapse:collapse;margin:0.5em 0 1.2em}"
    ".layerscope-landing th,.layerscope-landing td{border-bottom:1px solid #ccc;padding:0.2em 0.6em}"
    ".layerscope-landing thead th{border-bottom:2px solid #333}"
    ".layerscope-landing td.num{text-align:right}"
    ".layerscope-landing caption{caption-side:top;text-align:left;font-style:italic}"
    ".layerscope-landing img{max-width:48%;margin-right:1%}</style>"
)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return read_table(path, index_col=0, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as err:
        raise LayerscopeError(f"cannot read table {path}: {err}") from err


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise LayerscopeError(f"cannot read {path}: {err}") from err


def _with_intervals(table8: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 8 with each test figure and its interval in one cell, and its bold mask.

    A cell reads "0.778 [0.745, 0.810]"; bold marks each column's best, as in the table's other formats.
    """
    best = best_mask(table8, [c for c in ACCURACIES if c in table8])
    shown = table8[["run", "train_accuracy", "val_accuracy"]].copy()
    marks = best[["run", "train_accuracy", "val_accuracy"]].copy()
    for column in WITH_INTERVALS:
        low, high = table8[f"{column}_ci_low"], table8[f"{column}_ci_high"]
        name = f"{column} [95% CI]"
        shown[name] = [
            cell_text(value) if pd.isna(lo) else f"{cell_text(value)} [{lo:.3f}, {hi:.3f}]"
            for value, lo, hi in zip(table8[column], low, high)
        ]
        marks[name] = best[column]
    return shown, marks


def claims_first(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table as the landing page leads with it: the short verdict first, then p, paper and ours."""
    shown = claims.copy()
    shown.insert(0, "verdict ", [short_verdict(v) for v in shown["verdict"]])
    columns = ["verdict ", "p_value", "paper", "ours", "study"]
    return shown[[c for c in columns if c in shown]].rename(columns={"verdict ": "verdict"})


def report_link(path: str | os.PathLike, text: str) -> str:
    """A link that opens a report item, as Snakemake's own rst links do (``app.showResultInfo``)."""
    return f"<a href=\"javascript:app.showResultInfo('{quote(os.fspath(path))}')\">{html.escape(text)}</a>"


def category_link(name: str) -> str:
    """A link that opens one of the report's categories."""
    return f"<a href=\"javascript:app.showCategory('{quote(name)}')\">{html.escape(name)}</a>"


def host_line(training_machines: Sequence[str]) -> str:
    """Where the run ran: the training jobs' machines (CPU model, instruction sets), OS and NVIDIA GPUs."""
    machines = "; ".join(training_machines) or "machine not recorded"
    return f"{machines} ({platform.system()} {platform.release()}, {gpu_count()} NVIDIA GPU(s))"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def landing_html(
    tables_dir: str | os.PathLike,
    figures: Sequence[str | os.PathLike],
    recommendation: Mapping | None,
    train_seconds: Mapping[str, float],
    experiment: str,
    host: str,
) -> str:
    """The landing page as an HTML fragment (Snakemake puts it into its own page).

    Args:
        tables_dir: the folder of the ``tables`` rule's files (table8_summary.csv,
            comparison_paper.csv, table9_freeze_grid.csv, sanity_gate.json).
        figures: key figures shown inline and linked into the report (PNG).
        recommendation: the ``freeze_recommendation`` verdict, or None when not run.
        train_seconds: each run's training time (``metrics.json``).
        experiment: the experiment's name.
        host: the machine, as :func:`host_line` describes it.

    Returns:
        The fragment.

    Raises:
        LayerscopeError: a table or the gate that cannot be read.
    """
    tables = Path(tables_dir)
    table8 = _read_csv(tables / "table8_summary.csv")
    claims = _read_csv(tables / "comparison_paper.csv")
    grid = _read_csv(tables / "table9_freeze_grid.csv")
    gate = _read_json(tables / "sanity_gate.json")
    table8, table8_best = _with_intervals(table8)
    parts = [
        _STYLE,
        '<div class="layerscope-landing">',
        f"<h2>What the {html.escape(experiment)} run found</h2>",
        table_fragment(
            claims_first(claims),
            None,
            "The study's claims checked on our runs: the paper's figures beside ours. 'holds' and 'opposite' "
            "need p < 0.05, tested over the test images with the retraining variance pooled over the cells "
            "trained under several seeds; 'not shown' is a difference the test cannot tell from noise.",
        ),
        table_fragment(
            table8, table8_best, "Table 8. Accuracy by approach (95% bootstrap intervals over test images)."
        ),
        table_fragment(
            grid, best_mask(grid, grid.columns, "grid"), "Table 9. Test accuracy by frozen blocks and optimizer."
        ),
        f"<p><b>Baselines.</b> {html.escape(gate.get('sentence', MISSING))}</p>",
    ]
    if recommendation:
        parts.append(f"<p><b>Freeze depth.</b> {html.escape(str(recommendation.get('sentence', MISSING)))}</p>")
    parts.append("<h3>Key figures</h3><p>")
    parts += [_image(Path(f), Path(f).stem) for f in figures]
    parts.append(
        "</p><p>" + " &middot; ".join(report_link(f, Path(f).stem.replace("_", " ")) for f in figures) + "</p>"
    )
    hours = sum(train_seconds.values()) / 3600
    parts += [
        "<h3>Where and how long</h3>",
        f"<p>Machine: {html.escape(host)}. Training time summed over {len(train_seconds)} runs: {hours:.2f} h "
        "(every job's seconds: the cost tables).</p>",
        "<p>More in the report: " + " &middot; ".join(category_link(c) for c in CATEGORIES) + ".</p>",
        "</div>",
    ]
    return "\n".join(parts) + "\n"


def write_landing(out_html: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`landing_html` atomically; returns the path."""
    write_text(out_html, landing_html(**kwargs))
    return Path(out_html)
