"""The study's claims checked on our runs, and where our absolute accuracy stands on elpv."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.results.comparisons import (
    ALPHA,
    Claim,
    beats,
    claims_table,
    mean_by,
    paired_test,
    rank_agreement,
    sign_test,
)
from layerscope.results.gate import sanity_gate
from layerscope.results.published import (
    DEITSCH_2019_ELPV_ACCURACY,
    PAPER_FREEZE_GRID,
    PAPER_SUMMARY,
    paper_best_depth,
    paper_momentum_record,
    paper_pair,
)
from layerscope.results.selection import best_by_val, optimizer_label, primary_runs, select
from layerscope.results.tables import TRANSFER, freeze_grid, summary


def paper_comparison(
    runs: Mapping[str, dict | None], transfer_depth: int = 3, probe: dict | None = None
) -> pd.DataFrame:
    """The study's claims checked on our runs, and where our absolute accuracy stands on elpv.

    Orderings are compared (Spearman's rank correlation of Table 8's approaches and of
    Table 9's cells with the paper's); pairwise claims with McNemar's test; "momentum
    methods beat plain SGD" with a sign test over the freeze depths. Absolute accuracy is
    set only beside published results on the same data (elpv), never beside the study's.
    """
    primary = primary_runs(runs)
    table8, grid = summary(runs, transfer_depth, probe), freeze_grid(primary)
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
    depth_means = mean_by(cells, 0)

    def pick(model: str) -> dict | None:
        return runs.get(table8.loc[model, "run"]) if model in table8.index else None

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
        ),
        beats(
            "Transfer beats random weights",
            paper_pair("Transfer", "Random weights"),
            "transfer",
            pick(transfer),
            "random weights",
            pick("Random weights"),
        ),
        beats(
            "Transfer beats LeNet-5",
            paper_pair("Transfer", "LeNet-5"),
            "transfer",
            pick(transfer),
            "LeNet-5",
            pick("LeNet-5"),
        ),
        beats(
            "Transfer beats fixed feature extraction",
            paper_pair("Transfer", "Fixed feature extraction"),
            "transfer",
            pick(transfer),
            "fixed features",
            pick("Fixed feature extraction"),
        ),
        sign_test(
            "Momentum methods (Momentum, NAG) beat plain SGD",
            paper_momentum_record(),
            [
                (cells[(k, opt)], cells[(k, "sgd")])
                for k in PAPER_FREEZE_GRID
                for opt in ("momentum", "nag")
                if cells[(k, opt)] == cells[(k, opt)] and cells[(k, "sgd")] == cells[(k, "sgd")]
            ],
        ),
        _depth_claim(primary, depth_means),
    ]
    frame = claims_table(claims)
    best = sanity_gate(runs)
    elpv = f"best VGG-16 run by validation: {best['run']} at {best['accuracy']:.3f}" if best["run"] else MISSING
    frame.loc["Absolute accuracy on elpv (published: same data, their protocol)"] = [
        f"Deitsch et al. 2019: {DEITSCH_2019_ELPV_ACCURACY:.4f} (VGG-19, 300 px); later work 0.835-0.90",
        elpv,
        math.nan,
        "reference only",
        "none",
    ]
    return frame


def _depth_claim(runs: Mapping[str, dict | None], depth_means: Mapping[int, float]) -> Claim:
    """The paper's best-depth claim ("freezing blocks 1-3 is best"), checked on our runs.

    Our best depth by mean test accuracy over optimizers is tested against the paper's
    depth's best run (by validation) with McNemar.
    """
    depth, paper = paper_best_depth()
    claim = f"Freezing blocks 1-{depth} is best"
    if depth not in depth_means or not depth_means:
        return Claim(claim, paper, f"depth {depth} not measured", math.nan, "not measured", "McNemar")
    best_depth = max(depth_means, key=depth_means.get)
    means = ", ".join(f"k={k}: {depth_means[k]:.3f}" for k in sorted(depth_means))
    if best_depth == depth:
        return Claim(claim, paper, f"best depth {depth} (mean test accuracy {means})", math.nan, "holds", "ranking")
    run_best = runs.get(best_by_val(select(runs, "freeze", k=best_depth)) or "")
    run_paper = runs.get(best_by_val(select(runs, "freeze", k=depth)) or "")
    test = paired_test(run_best, run_paper)
    p_value = math.nan if test is None else test.p_value
    text = f"best depth {best_depth} (mean test accuracy {means})"
    if p_value == p_value and p_value < ALPHA:
        return Claim(claim, paper, text, p_value, "contradicted", "McNemar (best run at each depth)")
    return Claim(
        claim,
        paper,
        text + f"; depth {depth} not significantly worse",
        p_value,
        "tied with the best depth",
        "McNemar (best run at each depth)",
    )
