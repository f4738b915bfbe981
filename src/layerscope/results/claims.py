"""The study's claims checked on our runs, and where our absolute accuracy stands on elpv."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.core.spread import mean_and_sd
from layerscope.core.statistics import SeedVariance
from layerscope.results.comparisons import (
    SEED_TEST,
    Claim,
    beats,
    claims_table,
    difference_text,
    rank_agreement,
    seed_test,
    seeds_text,
    sign_test,
    training_variance,
    verdict,
)
from layerscope.results.gate import sanity_gate
from layerscope.results.lime_claims import lime_claims
from layerscope.results.published import (
    ELPV_PUBLISHED,
    PAPER_FREEZE_GRID,
    PAPER_SUMMARY,
    paper_best_depth,
    paper_momentum_record,
    paper_pair,
)
from layerscope.results.selection import cell_runs, optimizer_label, primary_runs, select
from layerscope.results.tables import TRANSFER, freeze_grid, summary
from layerscope.train.runs import parse_name


def paper_comparison(
    runs: Mapping[str, dict | None],
    transfer_depth: int = 3,
    probe: dict | None = None,
    lime_checks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The study's claims checked on our runs, and where our absolute accuracy stands on elpv.

    Orderings are compared (Spearman's rank correlation of Table 8's approaches and of
    Table 9's cells, seed means, with the paper's). Pairwise claims, the optimizer claim
    and the depth claim are tested over the test images with the retraining variance
    pooled over the repeated cells (:func:`seed_test`); "momentum methods beat plain
    SGD" is also counted cell by cell (sign test over the seed means). Absolute accuracy is set only beside published
    results on the same data (elpv), never beside the study's. Study A's judgement of LIME
    is checked from ``lime_checks`` (:func:`layerscope.results.lime_claims.lime_claims`).
    """
    table8, grid = summary(runs, transfer_depth, probe), freeze_grid(runs)
    training = training_variance(runs)
    transfer = f"{TRANSFER} ({transfer_depth} frozen blocks)"
    paper_names = {
        "LeNet-5": "LeNet-5",
        "Random weights": "Random weights",
        "Fixed feature extraction": "Fixed feature extraction",
        "Transfer": transfer,
        "Fine-tuning": "Fine-tuning",
    }
    cells = {
        (k, opt): grid.loc[k, optimizer_label(opt)] if k in grid.index and optimizer_label(opt) in grid else math.nan
        for k, row in PAPER_FREEZE_GRID.items()
        for opt in row
    }

    def pick(model: str) -> list[dict]:
        return cell_runs(runs, table8.loc[model, "run"]) if model in table8.index else []

    claims = [
        rank_agreement(
            "Table 8: ordering of the five approaches (test accuracy)",
            {name: paper[2] for name, paper in PAPER_SUMMARY.items()},
            {name: table8.loc[ours, "test_accuracy"] for name, ours in paper_names.items()},
        ),
        rank_agreement(
            "Table 9: ordering of the freeze depth x optimizer cells (test accuracy)",
            {key: PAPER_FREEZE_GRID[key[0]][key[1]] for key in cells},
            cells,
        ),
        beats(
            f"Fine-tuning beats transfer ({transfer_depth} frozen blocks)",
            paper_pair("Fine-tuning", "Transfer"),
            "fine-tuning",
            pick("Fine-tuning"),
            "transfer",
            pick(transfer),
            training,
        ),
        beats(
            "Transfer beats random weights",
            paper_pair("Transfer", "Random weights"),
            "transfer",
            pick(transfer),
            "random weights",
            pick("Random weights"),
            training,
        ),
        beats(
            "Transfer beats LeNet-5",
            paper_pair("Transfer", "LeNet-5"),
            "transfer",
            pick(transfer),
            "LeNet-5",
            pick("LeNet-5"),
            training,
        ),
        beats(
            "Transfer beats fixed feature extraction",
            paper_pair("Transfer", "Fixed feature extraction"),
            "transfer",
            pick(transfer),
            "fixed features",
            pick("Fixed feature extraction"),
            training,
        ),
        beats(
            "Momentum methods (Momentum, NAG) beat plain SGD (all depths and seeds pooled)",
            paper_momentum_record(),
            "Momentum and NAG",
            _pool(runs, optimizers=("momentum", "nag")),
            "SGD",
            _pool(runs, optimizers=("sgd",)),
            training,
        ),
        sign_test(
            "Momentum methods (Momentum, NAG) beat plain SGD, cell by cell (seed means)",
            paper_momentum_record(),
            [
                (cells[(k, opt)], cells[(k, "sgd")])
                for k in PAPER_FREEZE_GRID
                for opt in ("momentum", "nag")
                if cells[(k, opt)] == cells[(k, opt)] and cells[(k, "sgd")] == cells[(k, "sgd")]
            ],
        ),
        _depth_claim(runs, training),
    ]
    frame = claims_table([*claims, *lime_claims(lime_checks)])
    best = sanity_gate(runs)
    chosen = runs.get(best["run"] or "")
    for task, figure, source in ELPV_PUBLISHED:
        ours = MISSING
        if chosen is not None:
            value = (
                chosen["test"]["accuracy"]
                if task == "four-class"
                else (chosen["test"].get("binary") or {}).get("accuracy")
            )
            ours = MISSING if value is None else f"{best['run']} (best VGG-16 run by validation): {value:.3f}"
        frame.loc[f"Absolute {task} accuracy on elpv vs {source.split(',')[0]} ({figure:.4f})"] = [
            f"{source}: {figure:.4f} (their protocol and split, not ours)",
            ours,
            math.nan,
            "reference only",
            "none",
        ]
    return frame


def _pool(runs: Mapping[str, dict | None], depth: int | None = None, optimizers: tuple[str, ...] = ()) -> list[dict]:
    """Every finished freeze-sweep run (all seeds) of one depth and/or some optimizers."""
    return [
        run
        for run_id in select(primary_runs(runs), "freeze", k=depth)
        if not optimizers or parse_name(run_id)[2] in optimizers
        for run in cell_runs(runs, run_id)
    ]


def _depth_claim(runs: Mapping[str, dict | None], training: SeedVariance) -> Claim:
    """The paper's best-depth claim ("freezing blocks 1-3 is best"), checked on our runs.

    The paper's depth, all its optimizers and seeds pooled, is tested against the best
    other depth by mean validation accuracy (picked on validation, tested on test).
    """
    depth, paper = paper_best_depth()
    claim = f"Freezing blocks 1-{depth} is best"
    depths = sorted({parse_name(run_id)[1] for run_id in select(primary_runs(runs), "freeze")})
    pools = {k: pool for k in depths if (pool := _pool(runs, depth=k))}
    if depth not in pools or len(pools) < 2:
        text = f"depth {depth} and another depth not both measured"
        return Claim(claim, paper, text, math.nan, "not measured", SEED_TEST)
    val = {k: mean_and_sd([run["val"]["accuracy"] for run in pool])[0] for k, pool in pools.items()}
    rival = max((k for k in pools if k != depth), key=val.get)
    test = seed_test(pools[depth], pools[rival], training)
    means = ", ".join(f"k={k}: {seeds_text(pools[k]).replace('seeds', 'runs').replace('seed', 'run')}" for k in pools)
    text = f"depth {depth} vs depth {rival} (best other depth by validation)"
    if test is None:
        return Claim(claim, paper, text, math.nan, "not measured", SEED_TEST)
    text += f": difference {difference_text(test)}; test accuracy by depth, optimizers and seeds pooled: {means}"
    return Claim(claim, paper, text, test.p_value, verdict(test.difference, test.p_value), SEED_TEST)
