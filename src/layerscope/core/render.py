"""Result tables as files: CSV, GitHub Markdown, booktabs LaTeX and an HTML page, best cells in bold.

pandas writes every format (``DataFrame.to_markdown`` through tabulate, ``Styler.to_latex``
and ``Styler.to_html``); this module only decides what a cell reads. Missing values read
``missing`` in every format: a grid with a silently empty cell would read as a complete
experiment.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from layerscope.core.atomic import write_text
from layerscope.core.errors import LayerscopeError

MISSING = "missing"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}

_SORT_SCRIPT = """
document.querySelectorAll("table.layerscope").forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.title = "click to sort";
    th.style.cursor = "pointer";
    th.addEventListener("click", function () {
      var up = th.dataset.order !== "up";
      th.dataset.order = up ? "up" : "down";
      var key = function (row) {
        var text = row.cells[col].textContent.trim(), x = parseFloat(text);
        return isNaN(x) ? text : x;
      };
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table.layerscope { border-collapse: collapse; font-size: 14px; }
table.layerscope caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.6em; }
table.layerscope th, table.layerscope td { border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; }
table.layerscope thead th { border-bottom: 2px solid #333; background: #f4f4f4; }
table.layerscope td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def cell_text(value) -> str:
    """What a cell reads in every format: text as is, "missing", yes/no, three decimals."""
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return MISSING
    if pd.api.types.is_bool(value):
        return "yes" if value else "no"
    if pd.api.types.is_float(value):
        return f"{value:.3f}"
    return str(value)


def best_mask(df: pd.DataFrame, columns: Sequence[str], scope: str = "column") -> pd.DataFrame:
    """True where a cell holds the maximum of its column (scope "column") or of all ``columns`` ("grid")."""
    if scope not in ("column", "grid"):
        raise ValueError(f"best scope must be 'column' or 'grid', got {scope!r}")
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    values = df[list(columns)].apply(pd.to_numeric, errors="coerce")
    top = values.max() if scope == "column" else values.max().max()
    mask[list(columns)] = values.eq(top)
    return mask


def _flat(df: pd.DataFrame, mask: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, list[bool]]:
    """The table with its index levels as leading columns, the bold mask to match, and the alignment.

    Columns are right-aligned unless they hold only text; index columns stay left.
    """
    numeric = [False] * df.index.nlevels + [not all(isinstance(v, str) for v in df[c].dropna()) for c in df.columns]
    flat = df.set_axis([str(c) for c in df.columns], axis=1).reset_index(names=[n or "" for n in df.index.names])
    marks = np.zeros(flat.shape, dtype=bool)
    if mask is not None:
        marks[:, df.index.nlevels :] = mask.to_numpy(dtype=bool)
    return flat, pd.DataFrame(marks, index=flat.index, columns=flat.columns), numeric


def _styles(mask: pd.DataFrame, style: str) -> pd.DataFrame:
    """``style`` where ``mask`` holds, for ``Styler.apply(axis=None)``."""
    return pd.DataFrame(np.where(mask, style, ""), index=mask.index, columns=mask.columns)


def _text(flat: pd.DataFrame, mask: pd.DataFrame, bold) -> pd.DataFrame:
    """Every cell as its display text; cells in ``mask`` through ``bold``."""
    text = flat.map(cell_text)
    return text.where(~mask, text.map(bold))


def to_markdown(df: pd.DataFrame, mask: pd.DataFrame | None = None) -> str:
    """A GitHub-flavoured Markdown table (written by tabulate); cells in ``mask`` in bold."""
    flat, flat_mask, numeric = _flat(df, mask)
    text = _text(flat, flat_mask, lambda cell: f"**{cell}**").map(lambda cell: cell.replace("|", r"\|"))
    text.columns = [c.replace("|", r"\|") for c in text.columns]
    align = ["right" if n else "left" for n in numeric]
    return text.to_markdown(index=False, tablefmt="pipe", colalign=align, disable_numparse=True) + "\n"


def _latex_escape(text: str) -> str:
    """LaTeX-safe caption text (pandas escapes cells and headers, not the caption)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(df: pd.DataFrame, mask: pd.DataFrame | None = None, caption: str | None = None) -> str:
    """A booktabs table (written by ``Styler.to_latex``; the document needs booktabs); ``mask`` cells bold."""
    flat, flat_mask, numeric = _flat(df, mask)
    styler = (
        flat.style.format(cell_text, escape="latex")
        .format_index(escape="latex", axis=1)
        .hide(axis="index")
        .apply(lambda _: _styles(flat_mask, "textbf:--rwrap;"), axis=None)
    )
    return styler.to_latex(
        column_format="".join("r" if n else "l" for n in numeric),
        position="ht",
        position_float="centering",
        hrules=True,
        caption=_latex_escape(caption) if caption else None,
    )


def table_fragment(df: pd.DataFrame, mask: pd.DataFrame | None = None, caption: str | None = None) -> str:
    """The table as an HTML ``<table>`` (``Styler.to_html``) with caption and bold ``mask`` cells."""
    flat, flat_mask, numeric = _flat(df, mask)
    classes = pd.DataFrame({c: ["num" if n else ""] * len(flat) for c, n in zip(flat.columns, numeric)})
    styler = (
        flat.style.format(cell_text, escape="html")
        .format_index(escape="html", axis=1)
        .hide(axis="index")
        .apply(lambda _: _styles(flat_mask, "font-weight: bold"), axis=None)
        .set_td_classes(classes)
        .set_table_attributes('class="layerscope"')
        .set_uuid(
            "t" + hashlib.sha1(repr((list(flat.columns), caption)).encode()).hexdigest()[:8]
        )  # ids unique per page
    )
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return styler.to_html()


def to_html(df: pd.DataFrame, mask: pd.DataFrame | None = None, caption: str | None = None) -> str:
    """A standalone HTML page: :func:`table_fragment`, its columns sortable by click.

    The sort script is inlined, so the page works offline and inside Snakemake's report.
    """
    title = html.escape(caption or "table")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{table_fragment(df, mask, caption)}\n"
        f"<script>{_SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def read_table(path: str | os.PathLike, **read_csv_args) -> pd.DataFrame:
    """A CSV :func:`write_table` wrote, its "missing" cells read back as NaN."""
    return pd.read_csv(path, na_values=MISSING, **read_csv_args)


def read_checked_csv(path: Path, columns: Sequence[str], what: str, hint: str = "") -> pd.DataFrame:
    """A CSV a stage wrote, holding the ``columns`` its reader needs, or one line naming the file.

    Args:
        path: the CSV.
        columns: the columns the reader needs.
        what: what the file is, for the unreadable case ("the training history").
        hint: what to do when columns are missing, appended to that line ("; rerun ...").
    """
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read {what} ({error})") from error
    absent = [column for column in columns if column not in table]
    if absent:
        raise LayerscopeError(f"{path}: lacks column(s) {', '.join(absent)}{hint}")
    return table


def write_table(
    df: pd.DataFrame,
    out_stem: str | os.PathLike,
    best: Sequence[str] = (),
    best_scope: str = "column",
    caption: str | None = None,
) -> list[Path]:
    """Write ``<stem>.csv``, ``.md``, ``.tex`` and ``.html`` atomically; returns their paths.

    The maximum of each ``best`` column (``best_scope="column"``) or of all of them
    together (``"grid"``) is bold in Markdown, LaTeX and HTML. Missing values read
    "missing" in every file (:func:`read_table` reads the CSV back).
    """
    stem = Path(out_stem)
    mask = best_mask(df, best, best_scope)
    markdown = to_markdown(df, mask)
    paths = [stem.with_name(stem.name + suffix) for suffix in (".csv", ".md", ".tex", ".html")]
    write_text(paths[0], df.to_csv(na_rep=MISSING))
    write_text(paths[1], f"{caption}\n\n{markdown}" if caption else markdown)
    write_text(paths[2], to_latex(df, mask, caption))
    write_text(paths[3], to_html(df, mask, caption))
    return paths
