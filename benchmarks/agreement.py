"""Whether two runs of one config agree in their conclusions (another CPU, oneDNN on or off).

Results are not bitwise equal across CPU kinds or kernel libraries, and need not be:
what must hold is that each freeze-sweep cell's seed mean on one side lies inside the
other side's 95% interval (over seeds and test images), and that no verdict of the
tables changes. A verdict that changes with the machine is a finding of the machine,
not of the study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from layerscope.core.errors import LayerscopeError
from layerscope.core.render import read_table
from layerscope.results.comparisons import seed_interval, training_variance
from layerscope.results.selection import cell_runs, primary_runs, select

VERDICT_TABLES = ("comparison_paper", "table8_tests", "table9_tests")
SIGNIFICANT = ("holds", "opposite")
NOT_MEASURED = "not measured"


def cell_agreement(runs_a: Mapping[str, dict | None], runs_b: Mapping[str, dict | None]) -> pd.DataFrame:
    """Per freeze-sweep cell of both sides: seed means, 95% intervals, and whether each mean lies in the other's.

    Args:
        runs_a: side A's runs (seed replicates included), with test predictions.
        runs_b: side B's, likewise.

    Returns:
        One row per cell both sides finished: ``seeds_a``, ``mean_a``, ``low_a``, ``high_a``,
        the same for B, ``a_in_b``, ``b_in_a`` and ``agree`` (both).
    """
    rows, training_a, training_b = [], training_variance(runs_a), training_variance(runs_b)
    for run_id in select(primary_runs(runs_a), "freeze"):
        seeds_a, seeds_b = cell_runs(runs_a, run_id), cell_runs(runs_b, run_id)
        interval_a, interval_b = seed_interval(seeds_a, training_a), seed_interval(seeds_b, training_b)
        if interval_a is None or interval_b is None:
            continue
        a_in_b = interval_b.low <= interval_a.estimate <= interval_b.high
        b_in_a = interval_a.low <= interval_b.estimate <= interval_a.high
        rows.append(
            {
                "run": run_id,
                "seeds_a": len(seeds_a),
                "mean_a": interval_a.estimate,
                "low_a": interval_a.low,
                "high_a": interval_a.high,
                "seeds_b": len(seeds_b),
                "mean_b": interval_b.estimate,
                "low_b": interval_b.low,
                "high_b": interval_b.high,
                "a_in_b": a_in_b,
                "b_in_a": b_in_a,
                "agree": a_in_b and b_in_a,
            }
        )
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame(columns=["agree"])


def flips(verdict_a: str, verdict_b: str) -> bool:
    """Whether two verdicts of one claim contradict: significant on one side and not the same on the other.

    A claim one side did not measure (e.g. a sweep-only run has no fine-tuning) cannot flip.
    """
    if NOT_MEASURED in (verdict_a, verdict_b):
        return False
    return verdict_a != verdict_b and (verdict_a in SIGNIFICANT or verdict_b in SIGNIFICANT)


def verdict_agreement(tables_a: str | Path, tables_b: str | Path) -> pd.DataFrame:
    """Every verdict of the claim and test tables on both sides, whether it is the same and whether it flips.

    Args:
        tables_a: side A's ``tables/`` folder.
        tables_b: side B's.

    Returns:
        One row per (table, comparison) both sides measured: ``verdict_a``, ``verdict_b``,
        ``p_a``, ``p_b``, ``same`` and ``flip`` (:func:`flips`).

    Raises:
        LayerscopeError: a table missing on either side.
    """
    rows = []
    for stem in VERDICT_TABLES:
        frames = []
        for folder in (tables_a, tables_b):
            path = Path(folder) / f"{stem}.csv"
            if not path.is_file():
                raise LayerscopeError(f"{path} not found: run the tables rule on both sides first")
            frames.append(read_table(path, index_col=0))
        a, b = frames
        for name in a.index.intersection(b.index):
            va, vb = str(a.loc[name, "verdict"]), str(b.loc[name, "verdict"])
            if NOT_MEASURED in (va, vb):
                continue
            rows.append(
                {
                    "table": stem,
                    "comparison": name,
                    "verdict_a": va,
                    "verdict_b": vb,
                    "p_a": float(a.loc[name, "p_value"]) if "p_value" in a else math.nan,
                    "p_b": float(b.loc[name, "p_value"]) if "p_value" in b else math.nan,
                    "same": va == vb,
                    "flip": flips(va, vb),
                }
            )
    return pd.DataFrame(rows).set_index(["table", "comparison"])
