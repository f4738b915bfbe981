"""Which freeze-depth signal picks the depth? Each signal scored like a model-selection method.

Every signal gives each depth k = 1..5 a score (higher: freeze k blocks): Grad-CAM
faithfulness at block k, the blocks that moved least in fine-tuning, their mean rank
(the recommendation), the linear probe's validation accuracy on block k's pooled
features, and the blocks with the smallest relative gradient norm at the start of
fine-tuning. Each trained sweep (one optimizer and one seed, every swept depth trained)
scores them (:mod:`layerscope.results.model_selection`): Kendall's tau and Spearman's
rho against validation accuracy, the hit rate, and the regret on test accuracy with its
interval over sweeps; the trivial rules (the study's depth, the deepest depth, a random
depth) are scored the same way. A signal that does not beat them has not chosen anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from itertools import permutations

import numpy as np
import pandas as pd

from layerscope.results.model_selection import (
    SignalSummary,
    Sweep,
    fixed_depth,
    pick,
    random_depth,
    score_signal,
    summarise,
)
from layerscope.results.selection import metric
from layerscope.train.runs import parse_name, split_replicate

BASELINE, SIGNAL = "baseline", "signal"
BLOCKS = (1, 2, 3, 4, 5)
FAITHFULNESS = "Grad-CAM faithfulness at block k"
WEIGHT_CHANGE = "weight change in fine-tuning (blocks below the median frozen)"
MEAN_RANK = "recommendation (mean rank of the two above)"
PROBE = "linear probe on block k's pretrained features (validation accuracy)"
GRADIENT_NORM = "relative gradient norm at the start of fine-tuning (blocks below the median frozen)"
MEDIAN_RULE_SIGNALS = (WEIGHT_CHANGE, GRADIENT_NORM)
RANKING_COLUMNS = [
    "signal",
    "kind",
    "can_pick",
    "depths_picked",
    "sweeps",
    "kendall_tau",
    "spearman_rho",
    "hit_rate",
    "regret",
    "regret_ci_low",
    "regret_ci_high",
]


def signal_scores(blocks: pd.DataFrame) -> dict[str, dict[int, float]]:
    """Each signal's score per depth from the per-block table (:func:`layerscope.results.recommendation.recommend`).

    Ranks become scores by sign (rank 1 scores highest); signals the run did not measure
    are left out.
    """
    table = blocks.set_index("frozen_blocks")
    columns = {
        FAITHFULNESS: ("faithfulness", 1),
        WEIGHT_CHANGE: ("rank_weight_change", -1),
        MEAN_RANK: ("mean_rank", -1),
        PROBE: ("probe_val_accuracy", 1),
        GRADIENT_NORM: ("rank_rgn", -1),
    }
    signals = {}
    for name, (column, sign) in columns.items():
        if column in table and table[column].notna().any():
            signals[name] = {int(k): sign * float(v) for k, v in table[column].items() if not pd.isna(v)}
    return signals


def depth_by_movement(moved: Mapping[int, float]) -> int:
    """Freeze the leading blocks that moved less than the median block (at least one).

    The same rule reads the relative gradient norms: blocks that would change least stay frozen.
    """
    threshold = float(np.median(list(moved.values())))
    depth = 0
    for block in sorted(moved):
        if moved[block] > threshold:
            break
        depth = block
    return max(depth, 1)


def rank_of(scores: Mapping[int, float], higher_is_better: bool = True) -> dict[int, float]:
    """Rank 1 for the best score (ties share the mean rank)."""
    series = pd.Series(scores, dtype=float)
    return series.rank(ascending=not higher_is_better, method="average").to_dict()


@cache
def median_rule_depths(blocks: tuple[int, ...] = BLOCKS) -> frozenset[int]:
    """Every depth :func:`depth_by_movement` can give over these blocks, whatever they measure.

    At most the blocks up to the median lie at or below it, so the rule never freezes more
    than half the network (over VGG-16's five blocks: depths 1-3).
    """
    return frozenset(depth_by_movement(dict(zip(blocks, order))) for order in permutations(range(len(blocks))))


def reachable_depths(name: str, scored: Sequence[int], swept: Sequence[int]) -> list[int]:
    """The swept depths a signal can pick at all, found by trying every ordering of what it measures.

    A signal with a free score per block (faithfulness, the probe) can pick any swept depth
    it scores. A signal read through the median rule ranks depths by their distance from a
    depth of at most 3, so over a sweep of depths 3-5 it always picks 3: it cannot disagree
    with the study's choice, and its hit rate says nothing about the signal.

    Args:
        name: the signal's name (:func:`signal_scores`' keys).
        scored: the blocks the signal has a score for.
        swept: the depths the sweeps trained.
    """
    scored = sorted(scored)
    depths = [k for k in swept if k in scored]
    moves = [rank_of({k: -abs(k - d) for k in scored}) for d in sorted(median_rule_depths())]
    if name in MEDIAN_RULE_SIGNALS:
        candidates = [{k: -move[k] for k in scored} for move in moves]
    elif name == MEAN_RANK:
        faiths = [rank_of(dict(zip(scored, order))) for order in permutations(range(len(scored)))]
        candidates = [{k: -(faith[k] + move[k]) / 2 for k in scored} for faith in faiths for move in moves]
    else:
        return depths
    return sorted({pick(scores, depths) for scores in candidates} - {None})


def _depth_list(depths: Sequence[int]) -> str:
    return ", ".join(str(k) for k in sorted(depths)) or "none"


def sweeps_of(runs: Mapping[str, dict | None]) -> list[Sweep]:
    """The complete sweeps of the runs: per optimizer and seed, every depth that seed trained.

    A sweep needs at least two depths; runs under their plain ids make the first seed's sweep.
    """
    cells: dict[tuple[str, int | None], dict[int, dict]] = {}
    for run_id, run in runs.items():
        family, k, optimizer = parse_name(run_id)
        if family == "freeze" and run is not None:
            cells.setdefault((optimizer, split_replicate(run_id)[1]), {})[k] = run
    sweeps = []
    for (optimizer, seed), by_depth in sorted(cells.items(), key=lambda item: (item[0][0], item[0][1] or -1)):
        if len(by_depth) > 1:
            sweeps.append(
                Sweep(
                    f"{optimizer}, {'first seed' if seed is None else f'seed {seed}'}",
                    val={k: metric(run, "val") for k, run in by_depth.items()},
                    test={k: metric(run, "test") for k, run in by_depth.items()},
                    seed=seed,
                )
            )
    return sweeps


def ranking(
    signals: Mapping[int | None, Mapping[str, Mapping[int, float]]], sweeps: list[Sweep], study_depth: int
) -> pd.DataFrame:
    """Every signal and trivial rule scored over the sweeps, lowest mean regret first.

    Each sweep is scored with the signals read from its own seed (that seed's fine-tuning
    run, its transfer model's gradients), so signals can disagree across seeds; a sweep
    whose seed has no signals of its own uses the first seed's (key None).

    Args:
        signals: per training seed (None: the first), the score per depth of each signal
            (:func:`signal_scores`).
        sweeps: the trained sweeps (:func:`sweeps_of`).
        study_depth: the depth the study chose (the "always" rule's depth).

    Returns:
        One row per signal and rule (:data:`RANKING_COLUMNS`).
    """
    names = list(dict.fromkeys(name for by_name in signals.values() for name in by_name))

    def own(sweep: Sweep) -> Mapping[str, Mapping[int, float]]:
        return signals.get(sweep.seed) or signals.get(None) or {}

    swept = sorted({k for sweep in sweeps for k in sweep.depths})

    def scored(name: str) -> set[int]:
        return {k for by_name in signals.values() for k in by_name.get(name, {})}

    rows = [
        _row(
            name,
            SIGNAL,
            reachable_depths(name, scored(name), swept),
            summarise([score_signal(own(sweep)[name], sweep) for sweep in sweeps if name in own(sweep)]),
        )
        for name in names
    ]
    deepest = max(swept, default=5)
    rows += [
        _row(f"always {study_depth} frozen blocks (the study's choice)", BASELINE, [study_depth],
             summarise([score_signal(fixed_depth(study_depth), sweep) for sweep in sweeps])),
        _row(f"always the deepest swept depth ({deepest})", BASELINE, [deepest],
             summarise([score_signal(fixed_depth(deepest), sweep) for sweep in sweeps])),
        _row("a random swept depth (expected)", BASELINE, swept, summarise([random_depth(sweep) for sweep in sweeps])),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=RANKING_COLUMNS)
    return frame.sort_values(["regret", "hit_rate"], ascending=[True, False], na_position="last", kind="stable")


def _row(name: str, kind: str, reachable: Sequence[int], summary: SignalSummary) -> dict:
    return {
        "signal": name,
        "kind": kind,
        "can_pick": _depth_list(reachable),
        "depths_picked": summary.chosen,
        "sweeps": summary.sweeps,
        "kendall_tau": summary.tau,
        "spearman_rho": summary.rho,
        "hit_rate": summary.hit_rate,
        "regret": summary.regret,
        "regret_ci_low": summary.regret_low,
        "regret_ci_high": summary.regret_high,
    }


def ranking_sentence(table: pd.DataFrame) -> str:
    """Which signal, if any, beats the trivial rules, and by how much, in words."""
    scored = table.dropna(subset=["regret"])
    signals, baselines = scored[scored["kind"] == SIGNAL], scored[scored["kind"] == BASELINE]
    if signals.empty or baselines.empty:
        return "No sweep with two or more depths finished, so no signal could be scored."
    best, rule = signals.iloc[0], baselines.iloc[0]
    sweeps = int(best["sweeps"])
    numbers = (
        f"mean regret {best['regret']:.3f} [{best['regret_ci_low']:.3f}, {best['regret_ci_high']:.3f}] and hit "
        f"rate {best['hit_rate']:.2f} over {sweeps} sweep{'s' if sweeps != 1 else ''}, against "
        f"{rule['regret']:.3f} and {rule['hit_rate']:.2f} for the best trivial rule ({rule['signal']})"
    )
    beats = best["regret"] < rule["regret"] and best["hit_rate"] >= rule["hit_rate"]
    margin = rule["regret"] - best["regret"]
    if beats:
        return f"The best signal, {best['signal']}, beats the trivial rules by {margin:.3f} in regret: {numbers}."
    return f"No signal beats the trivial rules: the best, {best['signal']}, has {numbers}."


def block_rgn(layers: pd.DataFrame) -> dict[int, float]:
    """Mean relative gradient norm of each VGG-16 block's layers (the head left out).

    Args:
        layers: :func:`layerscope.train.gradient_norms.relative_gradient_norms`' table.
    """
    blocks = layers[layers["block"].str.fullmatch(r"block\d+")]
    means = blocks.groupby("block")["rgn"].mean()
    return {int(block.removeprefix("block")): float(value) for block, value in means.items()}
