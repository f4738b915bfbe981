"""Does explanation quality choose the freeze depth? Study A's central claim, made testable.

Study A read Grad-CAM maps of blocks 3-5 by eye, found block 3's maps on the defects and
deeper ones "overfit", and froze blocks 1-3. Two measured signals stand in for that
reading, one per VGG-16 block k:

- (a) **faithfulness** of Grad-CAM at block k's last conv layer: insertion AUC minus
  deletion AUC (Petsiuk et al. 2018) on the explained VGG-16 runs (transfer and
  fine-tuned), averaged. Freezing blocks 1..k keeps block k's features as they are, so
  the block whose maps are most faithful is the depth (a) recommends.
- (b) **movement** of block k during fine-tuning: its net weight change |W_T - W_0|
  relative to its weight L1 norm (study C's store). Blocks that barely move when allowed
  to are safe to freeze (Yosinski et al. 2014: early features are general); (b)
  recommends freezing the leading blocks that moved less than the median block.

Each signal ranks the depths (a: by faithfulness; b: by distance from its recommended
depth); the mean rank is the recommendation. It is then set beside what the sweep
measured: test accuracy per depth (the optimizer picked by validation at each depth),
Spearman's rank correlation between predicted and measured orderings, and a test of the
recommended depth's cell against the best one across their seeds and the test images.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from layerscope.core.atomic import write_text
from layerscope.core.blocks import block_of
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import read_table, write_table
from layerscope.core.statistics import SeedVariance
from layerscope.explain.map_shape import sharpest_sentence
from layerscope.results.comparisons import ALPHA, SEED_TEST, UNMEASURED, seed_test, training_variance
from layerscope.results.figures import plot_freeze_recommendation
from layerscope.results.freeze_signals import (
    block_rgn,
    depth_by_movement,
    rank_of,
    ranking,
    ranking_sentence,
    signal_scores,
    sweeps_of,
)
from layerscope.results.published import paper_best_depth
from layerscope.results.selection import best_by_val, cell_runs, primary_runs
from layerscope.train.runs import parse_name
from layerscope.weights.store import WeightChangeStore
from layerscope.weights.summary import block_summary

BLOCKS = (1, 2, 3, 4, 5)
COLUMNS = [
    "frozen_blocks",
    "gradcam_layer",
    "faithfulness",
    "faithfulness_sd",
    "finetune_change_pct",
    "rank_faithfulness",
    "rank_weight_change",
    "mean_rank",
    "probe_val_accuracy",
    "rgn",
    "rank_rgn",
    "run",
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
]


def block_faithfulness(quality: pd.DataFrame) -> pd.DataFrame:
    """Per block: mean and sd over runs of Grad-CAM's insertion minus deletion AUC.

    Args:
        quality: stacked ``quality.csv`` rows (run, method, layer, metric, value, ...) of
            the explained VGG-16 runs.

    Returns:
        Columns ``block``, ``layer``, ``faithfulness``, ``faithfulness_sd`` (sd over runs;
        NaN with one run), ``runs``; one row per block with a Grad-CAM layer.
    """
    rows = quality[(quality["method"] == "gradcam") & quality["metric"].isin(["deletion_auc", "insertion_auc"])]
    if rows.empty:
        raise LayerscopeError("no Grad-CAM deletion/insertion rows in the quality tables: nothing to rank blocks by")
    wide = rows.pivot_table(index=["run", "layer"], columns="metric", values="value").reset_index()
    wide["score"] = wide["insertion_auc"] - wide["deletion_auc"]
    wide["block"] = wide["layer"].map(lambda layer: block_of(layer) or math.nan)
    wide = wide.dropna(subset=["block"])
    table = (
        wide.groupby("block")
        .agg(
            layer=("layer", "first"),
            faithfulness=("score", "mean"),
            faithfulness_sd=("score", "std"),
            runs=("run", "nunique"),
        )
        .reset_index()
    )
    table["block"] = table["block"].astype(int)
    return table


def block_movement(blocks: pd.DataFrame) -> dict[int, float]:
    """Relative net change per VGG-16 block at the last reading of a weight-change store.

    Args:
        blocks: :func:`layerscope.weights.summary.block_summary` of the fine-tuning run's store.

    Returns:
        Block number -> net change / weight L1 (blocks 1-5 only; the head is left out).
    """
    last = blocks[blocks["reading"] == blocks["reading"].max()]
    moved = {}
    for row in last.itertuples():
        block = block_of(str(row.block))
        if block is not None:
            moved[block] = float(row.net_rel)
    return moved


def sweep_by_depth(runs: Mapping[str, dict | None]) -> dict[int, tuple[str, dict]]:
    """Per freeze depth of the sweep: the run picked by validation among its optimizers (seed means)."""
    by_depth: dict[int, dict[str, dict | None]] = {}
    for run_id, run in primary_runs(runs).items():
        family, k, _ = parse_name(run_id)
        if family == "freeze" and k in BLOCKS:
            by_depth.setdefault(k, {})[run_id] = run
    chosen = {}
    for k, candidates in by_depth.items():
        best = best_by_val(candidates, runs)
        if best is not None:
            chosen[k] = (best, candidates[best])
    return chosen


def recommend(
    quality: pd.DataFrame,
    moved: Mapping[int, float] | None,
    runs: Mapping[str, dict | None],
    probes: Mapping[int, float] | None = None,
    rgn: Mapping[int, float] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The recommendation table and its verdict.

    Args:
        quality: stacked ``quality.csv`` rows of the explained VGG-16 runs.
        moved: relative net change per block during fine-tuning (:func:`block_movement`),
            or None without a fine-tuning run (signal b is then left out).
        runs: the sweep's runs (run id -> loaded metrics with test predictions, None if
            unfinished), as :func:`layerscope.results.run_files.load_runs` gives them.
        probes: the block probes' validation accuracy per block, or None (not ranked
            into the recommendation; scored beside it by :mod:`layerscope.results.freeze_signals`).
        rgn: the mean relative gradient norm per block at the start of fine-tuning, or
            None (likewise scored beside it).

    Returns:
        ``(table, verdict)``: one row per block 1-5 (columns :data:`COLUMNS`), and a dict
        with the recommended depth, the best measured depth, Spearman's rho and n, the
        p-value between the two (:func:`layerscope.results.comparisons.seed_test`), and ``sentence``.
    """
    faith = block_faithfulness(quality).set_index("block")
    rank_a = rank_of(faith["faithfulness"].to_dict())
    rank_b: dict[int, float] = {}
    if moved:
        by_movement = depth_by_movement(moved)
        rank_b = rank_of({k: -abs(k - by_movement) for k in BLOCKS if k in faith.index})
    rank_rgn = rank_of({k: -abs(k - depth_by_movement(rgn)) for k in BLOCKS if k in rgn}) if rgn else {}
    sweep = sweep_by_depth(runs)
    seeds = {k: cell_runs(runs, run_id) for k, (run_id, _) in sweep.items()}
    rows = []
    for k in BLOCKS:
        ranks = [r[k] for r in (rank_a, rank_b) if k in r]
        run_id, run = sweep.get(k, (None, None))
        test = (run or {}).get("test") or {}
        ci = test.get("accuracy_ci") or (math.nan, math.nan)
        rows.append(
            {
                "frozen_blocks": k,
                "gradcam_layer": faith["layer"].get(k),
                "faithfulness": faith["faithfulness"].get(k, math.nan),
                "faithfulness_sd": faith["faithfulness_sd"].get(k, math.nan),
                "finetune_change_pct": 100 * (moved or {}).get(k, math.nan),
                "rank_faithfulness": rank_a.get(k, math.nan),
                "rank_weight_change": rank_b.get(k, math.nan),
                "mean_rank": float(np.mean(ranks)) if ranks else math.nan,
                "probe_val_accuracy": (probes or {}).get(k, math.nan),
                "rgn": (rgn or {}).get(k, math.nan),
                "rank_rgn": rank_rgn.get(k, math.nan),
                "run": run_id,
                "test_accuracy": float(test.get("accuracy", math.nan)),
                "test_accuracy_ci_low": float(ci[0]),
                "test_accuracy_ci_high": float(ci[1]),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table, _verdict(table, seeds, bool(moved), training_variance(runs))


def _verdict(table: pd.DataFrame, sweep: Mapping[int, list[dict]], with_movement: bool, training: SeedVariance) -> dict:
    ranked = table.dropna(subset=["mean_rank"]).sort_values(["mean_rank", "rank_faithfulness"])
    recommended = int(ranked["frozen_blocks"].iloc[0])
    measured = table.dropna(subset=["test_accuracy"])
    signals = "Grad-CAM faithfulness per block" + (" and weight change during fine-tuning" if with_movement else "")
    if measured.empty:
        sentence = (
            f"The signals ({signals}) recommend freezing blocks 1-{recommended}; no freeze run finished to check it."
        )
        return {
            "recommended": recommended,
            "best": None,
            "rho": math.nan,
            "n": 0,
            "p_value": math.nan,
            "sentence": sentence,
        }
    best = int(measured.loc[measured["test_accuracy"].idxmax(), "frozen_blocks"])
    scored = measured.dropna(subset=["mean_rank"])
    rho = float(spearmanr(-scored["mean_rank"], scored["test_accuracy"]).statistic) if len(scored) > 1 else math.nan
    p_value = math.nan
    if recommended == best:
        outcome = "which is the depth the sweep found best"
    elif recommended not in sweep:
        outcome = f"a depth the sweep did not train (its best is {best} blocks)"
    else:
        test = seed_test(sweep[recommended], sweep[best], training)
        p_value = test.p_value if test is not None else math.nan
        where = f"the sweep's best depth, {best} blocks"
        if p_value != p_value:
            outcome = f"untested against {where} ({UNMEASURED if test is not None else 'no test predictions'})"
        elif p_value < ALPHA:
            outcome = f"worse than {where} (p = {p_value:.2g}, {SEED_TEST})"
        else:
            outcome = f"statistically tied with {where} (p = {p_value:.2g}, {SEED_TEST})"
    accuracy = table.set_index("frozen_blocks")["test_accuracy"]
    sentence = (
        f"The signals ({signals}) recommend freezing blocks 1-{recommended}, {outcome}; "
        f"test accuracy {accuracy[best]:.3f} at the best depth"
        + (
            f" and {accuracy[recommended]:.3f} at the recommended one"
            if recommended != best and recommended in sweep
            else ""
        )
        + f"; Spearman's rho between the predicted and measured orderings is {rho:.2f} over {len(scored)} swept depths."
    )
    return {
        "recommended": recommended,
        "best": best,
        "rho": rho,
        "n": len(scored),
        "p_value": p_value,
        "sentence": sentence,
    }


def write_recommendation(
    quality_files: Sequence[str | os.PathLike],
    finetune_stores: Mapping[int | None, str | os.PathLike],
    runs: Mapping[str, dict | None],
    out_stem: str | os.PathLike,
    figure: str | os.PathLike,
    probes_file: str | os.PathLike | None = None,
    gradient_norms_files: Mapping[int | None, str | os.PathLike] | None = None,
    map_shape_files: Sequence[str | os.PathLike] = (),
) -> dict:
    """Read the signals; write the ranking of signals, the per-block table, the JSON verdict and the figure.

    The ranking (every signal and trivial rule scored over the sweeps,
    :mod:`layerscope.results.freeze_signals`) goes to ``<stem>.csv``, ``.md``, ``.tex`` and
    ``.html``; the per-block signals and sweep accuracies to ``<stem>_blocks.*``; the verdict
    to ``<stem>.json``.

    The per-block table and the verdict read the first seed's fine-tuning run; the
    ranking scores each sweep with the signals of its own seed's fine-tuning run and
    transfer model (Grad-CAM faithfulness and the probes are one reading for all seeds).

    Args:
        quality_files: ``quality.csv`` of the explained VGG-16 runs.
        finetune_stores: each fine-tuning run's ``weight_changes.h5`` by training seed
            (None: the first seed, under the plain run id); empty without fine-tuning.
        runs: the sweep's runs (seed replicates included) as
            :func:`layerscope.results.run_files.load_runs` gives them.
        out_stem: path of the tables without suffix.
        figure: path of the PNG.
        probes_file: the block probes' table (``block_probes.csv``), or None.
        gradient_norms_files: the relative gradient norms per layer at the start of each
            seed's fine-tuning (``gradient_norms/<run>.csv``), keyed like ``finetune_stores``.
        map_shape_files: ``explain/<run>/map_shape.csv`` of the explained runs (study A's
            reading of the maps: is block 3 sharpest?).

    Returns:
        The verdict of :func:`recommend`, with ``signals`` (the ranking in words) and
        ``map_shape`` (per explained run, whether block 3's maps are the sharpest).
    """
    quality = pd.concat([pd.read_csv(path) for path in quality_files], ignore_index=True)
    probes = None
    if probes_file is not None:
        probes = pd.read_csv(probes_file).set_index("block")["val_accuracy"].to_dict()
    norms = gradient_norms_files or {}

    def table_of(seed: int | None) -> tuple[pd.DataFrame, dict]:
        moved = (
            block_movement(block_summary(WeightChangeStore(finetune_stores[seed]))) if seed in finetune_stores else None
        )
        rgn = block_rgn(pd.read_csv(norms[seed])) if seed in norms else None
        return recommend(quality, moved, runs, probes, rgn)

    seeds = sorted({*finetune_stores, *norms, None}, key=lambda seed: -1 if seed is None else seed)
    per_seed = {seed: table_of(seed) for seed in seeds}
    table, verdict = per_seed[None]
    study_depth = paper_best_depth()[0]
    ranks = ranking({seed: signal_scores(t) for seed, (t, _) in per_seed.items()}, sweeps_of(runs), study_depth)
    verdict["signals"] = ranking_sentence(ranks)
    verdict["map_shape"] = {
        Path(path).parent.name: sharpest_sentence(read_table(path), study_depth) for path in map_shape_files
    }
    verdict["sentence"] += " " + verdict["signals"]
    verdict["sentence"] += "".join(f" {run}: {text}" for run, text in verdict["map_shape"].items())
    write_table(
        ranks.set_index("signal"),
        out_stem,
        caption=f"Freeze-depth signals scored as model selection over the sweep's seeds. {verdict['signals']}",
    )
    write_table(
        table.set_index("frozen_blocks"),
        f"{out_stem}_blocks",
        caption=f"Freeze-depth signals per block beside the sweep. {verdict['sentence']}",
    )
    finite = {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in verdict.items()}
    write_text(Path(out_stem).with_suffix(".json"), json.dumps(finite, indent=1) + "\n")
    plot_freeze_recommendation(table, verdict["sentence"], figure)
    return verdict
