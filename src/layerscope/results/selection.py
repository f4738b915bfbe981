"""Picking runs for a table: by family and depth, the best by validation, seed replicates.

Whenever a "best" run is picked it is picked by validation accuracy, never by test
accuracy (choosing on the test split would leak it into model selection).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from layerscope.core.statistics import mean_and_sd
from layerscope.train.optimizers import OPTIMIZERS
from layerscope.train.runs import parse_name, split_replicate

# A spread across seeds of one seed: undefined, not missing (pandas reads "n/a" as NaN).
NOT_APPLICABLE = "n/a"


def metric(run: dict | None, split: str, key: str = "accuracy") -> float:
    """A run's figure on a split (accuracy by default); NaN for an unfinished run."""
    return math.nan if run is None else float(run[split][key])


def select(runs: Mapping[str, dict | None], family: str, k: int | None = None) -> dict[str, dict | None]:
    """The runs of one family (and freeze depth), in optimizer order then input order."""
    chosen = {
        run_id: run
        for run_id, run in runs.items()
        if parse_name(run_id)[0] == family and (k is None or parse_name(run_id)[1] == k)
    }
    return dict(sorted(chosen.items(), key=lambda item: optimizer_rank(parse_name(item[0])[2])))


def optimizer_rank(optimizer: str | None) -> int:
    """Position in the table order of optimizers (unknown ones last)."""
    return list(OPTIMIZERS).index(optimizer) if optimizer in OPTIMIZERS else len(OPTIMIZERS)


def optimizer_label(optimizer: str | None) -> str:
    """The optimizer's name as the tables print it."""
    return OPTIMIZERS.get(optimizer, str(optimizer))


def best_by_val(candidates: Mapping[str, dict | None]) -> str | None:
    """The finished candidate with the highest validation accuracy (first on ties)."""
    finished = [run_id for run_id, run in candidates.items() if run is not None]
    return max(finished, key=lambda run_id: metric(candidates[run_id], "val"), default=None)


def primary_runs(runs: Mapping[str, dict | None]) -> dict[str, dict | None]:
    """The runs under their plain ids (seed replicates left out).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.

    Returns:
        The same mapping without ``<run-id>-seed<s>`` replicates.
    """
    return {run_id: run for run_id, run in runs.items() if split_replicate(run_id)[1] is None}


def seed_spread(runs: Mapping[str, dict | None], run_id: str) -> tuple[int, float, float | str]:
    """(finished seeds, mean, sd) of the test accuracy of ``run_id`` and its seed replicates.

    The sd of one seed is :data:`NOT_APPLICABLE`, of none NaN (reads ``missing``).
    """
    values = [
        metric(run, "test") for other, run in runs.items() if split_replicate(other)[0] == run_id and run is not None
    ]
    count, (mean, sd) = len(values), mean_and_sd(values)
    return count, mean, NOT_APPLICABLE if count == 1 else sd


def majority(runs: Mapping[str, dict | None]) -> dict | None:
    """The majority-class baseline; every run of an experiment shares the same data split."""
    return next((run["majority_baseline"] for run in runs.values() if run is not None), None)
