"""Which of a job's figures are timings: they differ between two runs of one job, its results must not.

A ``metrics.json`` key is a timing when its name ends in ``_seconds`` (``train_seconds``,
``evaluation_seconds``, the probe's ``fit_seconds``); a ``history.csv`` column is one when
it is named ``seconds``; a table is one when its name starts with ``cost_`` (what the
machine spent: seconds and memory). Writers name their timing keys with :func:`timings` and
their cost tables with :func:`cost_table`, which refuse a name that breaks the rule, and
every check that two runs gave the same results (``benchmarks/same_results.py``, which the
SLURM check runs) drops them with :func:`without_timings` and :func:`is_cost_table`, so a
new timing cannot make two equal results differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from layerscope.core.errors import LayerscopeError

TIMING_SUFFIX = "_seconds"
HISTORY_TIMING_COLUMNS = ("seconds",)
COST_TABLE_PREFIX = "cost_"


def timings(**seconds: float) -> dict[str, float]:
    """Timing keys for a ``metrics.json``, each rounded to 0.01 s.

    Raises:
        LayerscopeError: a name that does not end in ``_seconds`` (comparisons would not know it is a timing).
    """
    wrong = [name for name in seconds if not name.endswith(TIMING_SUFFIX)]
    if wrong:
        raise LayerscopeError(f"timing keys must end in {TIMING_SUFFIX!r}, got {wrong}")
    return {name: round(value, 2) for name, value in seconds.items()}


def without_timings(metrics: Mapping) -> dict:
    """A ``metrics.json``'s content less its timing keys: what two runs of one job must agree on."""
    return {key: value for key, value in metrics.items() if not key.endswith(TIMING_SUFFIX)}


def history_without_timings(history: pd.DataFrame) -> pd.DataFrame:
    """A ``history.csv`` less its timing columns."""
    return history.drop(columns=[column for column in HISTORY_TIMING_COLUMNS if column in history])


def cost_table(name: str) -> str:
    """The name of a table of what a run cost (seconds, memory), checked against the rule.

    Raises:
        LayerscopeError: a name that does not start with ``cost_`` (comparisons would take it for results).
    """
    if not name.startswith(COST_TABLE_PREFIX):
        raise LayerscopeError(f"cost tables must be named {COST_TABLE_PREFIX}<what>, got {name!r}")
    return name


def is_cost_table(path: Path) -> bool:
    """Whether a table file holds what a run cost rather than what it found (its stem names it)."""
    return path.stem.startswith(COST_TABLE_PREFIX)
