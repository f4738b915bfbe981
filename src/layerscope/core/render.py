"""Result tables as files: CSV, GitHub Markdown and booktabs LaTeX, best cells in bold.

Missing values read ``missing`` in every format: a grid with a silently empty cell
would read as a complete experiment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from layerscope.core.atomic import write_text

MISSING = "missing"


def _cell(value) -> str:
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


def _rows(
    df: pd.DataFrame, mask: pd.DataFrame | None, escape: Callable[[str], str], bold: Callable[[str], str]
) -> tuple[list[str], list[list[str]], int]:
    """Header and body cells as text (index levels first), and the number of index columns."""
    mask = pd.DataFrame(False, index=df.index, columns=df.columns) if mask is None else mask
    keys = [key if isinstance(key, tuple) else (key,) for key in df.index]
    body = [
        [escape(_cell(v)) for v in key]
        + [bold(escape(_cell(v))) if marked else escape(_cell(v)) for v, marked in zip(row, flags)]
        for key, row, flags in zip(keys, df.itertuples(index=False), mask.itertuples(index=False))
    ]
    header = [name or "" for name in df.index.names] + [str(c) for c in df.columns]
    return [escape(h) for h in header], body, df.index.nlevels


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Which columns to right-align: all but those holding only text."""
    return [not all(isinstance(v, str) for v in df[c].dropna()) for c in df.columns]


def to_markdown(df: pd.DataFrame, mask: pd.DataFrame | None = None) -> str:
    """A GitHub-flavoured Markdown table; cells in ``mask`` in bold."""
    header, body, n_index = _rows(df, mask, lambda text: text.replace("|", r"\|"), lambda text: f"**{text}**")
    align = ["---"] * n_index + ["---:" if numeric else "---" for numeric in _numeric_columns(df)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align, *body]) + "\n"


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


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(df: pd.DataFrame, mask: pd.DataFrame | None = None, caption: str | None = None) -> str:
    """A booktabs table (the LaTeX document needs the booktabs package); cells in ``mask`` in bold."""
    header, body, n_index = _rows(df, mask, _latex_escape, lambda text: rf"\textbf{{{text}}}")
    spec = "l" * n_index + "".join("r" if numeric else "l" for numeric in _numeric_columns(df))
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    lines += [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(" & ".join(row) + r" \\" for row in body),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame,
    out_stem: str | os.PathLike,
    best: Sequence[str] = (),
    best_scope: str = "column",
    caption: str | None = None,
) -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` atomically; returns their paths.

    The maximum of each ``best`` column (``best_scope="column"``) or of all of them
    together (``"grid"``) is bold in Markdown and LaTeX. Missing values read "missing"
    in all three files (read the CSV back with ``na_values="missing"``).
    """
    stem = Path(out_stem)
    mask = best_mask(df, best, best_scope)
    markdown = to_markdown(df, mask)
    paths = [stem.with_name(stem.name + suffix) for suffix in (".csv", ".md", ".tex")]
    write_text(paths[0], df.to_csv(na_rep=MISSING))
    write_text(paths[1], f"{caption}\n\n{markdown}" if caption else markdown)
    write_text(paths[2], to_latex(df, mask, caption))
    return paths
