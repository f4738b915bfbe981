"""Picking runs for a table: by family and depth, the best by validation, seed replicates.

Whenever a "best" run is picked it is picked by validation accuracy, never by test
accuracy (choosing on the test split would leak it into model selection).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from layerscope.core.spread import mean_and_sd
from layerscope.train.health import flags_of
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


def cell_runs(runs: Mapping[str, dict | None], run_id: str) -> list[dict]:
    """The finished runs of one cell: ``run_id`` and its seed replicates (``<run-id>-seed<s>``), in input order."""
    return [run for other, run in runs.items() if split_replicate(other)[0] == run_id and run is not None]


def best_by_val(candidates: Mapping[str, dict | None], runs: Mapping[str, dict | None] | None = None) -> str | None:
    """The finished candidate with the highest validation accuracy (first on ties).

    With ``runs`` (seed replicates included) a candidate scores the mean validation
    accuracy over its seeds. A candidate with a collapsed or unconverged seed
    (:mod:`layerscope.train.health`) is chosen only when no healthy candidate has
    finished, and the tables then print its flags beside it.
    """
    runs = candidates if runs is None else runs
    finished = [run_id for run_id, run in candidates.items() if run is not None]
    healthy = [run_id for run_id in finished if not cell_flags(runs, run_id)]
    return max(healthy or finished, key=lambda run_id: validation_score(candidates, runs, run_id), default=None)


def validation_score(candidates: Mapping[str, dict | None], runs: Mapping[str, dict | None], run_id: str) -> float:
    """What :func:`best_by_val` ranks a candidate by: its validation accuracy, averaged over its seeds."""
    return mean_and_sd([metric(run, "val") for run in cell_runs(runs, run_id) or [candidates[run_id]]])[0]


def passed_over(candidates: Mapping[str, dict | None], runs: Mapping[str, dict | None], chosen: str | None) -> str:
    """The flagged candidates :func:`best_by_val` passed over for ``chosen`` though they scored higher.

    E.g. ``"lenet5-relu-adam (val 0.640, not converged)"``: a reader sees which better-looking
    run a health flag kept out of the row ("" when none).
    """
    if chosen is None:
        return ""
    finished = [run_id for run_id, run in candidates.items() if run is not None]
    scores = {run_id: validation_score(candidates, runs, run_id) for run_id in finished}
    return "; ".join(
        f"{run_id} (val {score:.3f}, {cell_flags(runs, run_id)})"
        for run_id, score in scores.items()
        if run_id != chosen and score > scores[chosen]
    )


def cell_flags(runs: Mapping[str, dict | None], run_id: str) -> str:
    """The health flags of a cell's seeds as the tables print them ("" when every seed is healthy).

    E.g. ``"not converged (1 of 3 seeds)"``; a one-seed cell prints the flag alone.
    """
    seeds = cell_runs(runs, run_id)
    counts: dict[str, int] = {}
    for run in seeds:
        for flag in flags_of(run):
            counts[flag] = counts.get(flag, 0) + 1
    if len(seeds) == 1:
        return ", ".join(counts)
    return ", ".join(f"{flag} ({count} of {len(seeds)} seeds)" for flag, count in counts.items())


def primary_runs(runs: Mapping[str, dict | None]) -> dict[str, dict | None]:
    """The runs under their plain ids (seed replicates left out).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.

    Returns:
        The same mapping without ``<run-id>-seed<s>`` replicates.
    """
    return {run_id: run for run_id, run in runs.items() if split_replicate(run_id)[1] is None}


def seed_spread(runs: Mapping[str, dict | None], run_id: str, split: str = "test") -> tuple[int, float, float | str]:
    """(finished seeds, mean, sd) of the accuracy on ``split`` of ``run_id`` and its seed replicates.

    The sd of one seed is :data:`NOT_APPLICABLE`, of none NaN (reads ``missing``).
    """
    values = [metric(run, split) for run in cell_runs(runs, run_id)]
    count, (mean, sd) = len(values), mean_and_sd(values)
    return count, mean, NOT_APPLICABLE if count == 1 else sd


def seed_values(runs: Mapping[str, dict | None], run_id: str, field: str) -> str:
    """A per-seed field of a cell's runs (e.g. ``health.best_epoch``) as text, seeds in order: ``"6, 4, 9"``."""
    values = []
    for run in cell_runs(runs, run_id):
        value = run
        for key in field.split("."):
            value = (value or {}).get(key)
        values.append("?" if value is None else str(value))
    return ", ".join(values)


def majority(runs: Mapping[str, dict | None]) -> dict | None:
    """The majority-class baseline; every run of an experiment shares the same data split."""
    return next((run["majority_baseline"] for run in runs.values() if run is not None), None)
