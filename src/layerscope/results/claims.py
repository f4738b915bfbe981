"""The study's claims checked on our runs, and where our absolute accuracy stands on elpv."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.core.spread import mean_and_sd
from layerscope.core.statistics import SeedVariance
from layerscope.explain.feature_map_claims import StudyBFiles, study_b_claims
from layerscope.results.comparisons import (
    NOT_MEASURED,
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
from layerscope.results.tables import TRANSFER, freeze_grid, summary, transfer_depth_of, transfer_label
from layerscope.train.runs import parse_name

PAIRWISE = (  # (claim, Table 8 row of A, A's name, Table 8 row of B, B's name); TRANSFER stands for its row
    ("Fine-tuning beats transfer", "Fine-tuning", "fine-tuning", TRANSFER, "transfer"),
    ("Transfer beats random weights", TRANSFER, "transfer", "Random weights", "random weights"),
    ("Transfer beats LeNet-5", TRANSFER, "transfer", "LeNet-5", "LeNet-5"),
    ("Transfer beats fixed feature extraction", TRANSFER, "transfer", "Fixed feature extraction", "fixed features"),
)
PROBE_CLAIM = "Training beyond the pretrained features: the best trained VGG-16 beats a linear probe on them"
MOMENTUM = "Momentum methods (Momentum, NAG) beat plain SGD"


@dataclass(frozen=True)
class Evidence:
    """What the study's claims are checked on: our runs and the readings of them every claim shares.

    Attributes:
        runs: runs by id (seed replicates included), as :func:`load_runs` returns them.
        transfer: Table 8's "Transfer" run, or its frozen depth (:func:`summary`).
        probe: the linear probe's metrics with its test predictions, or None.
        table8: Table 8 of the runs (:func:`summary`).
        cells: Table 9's cells the paper has, by (frozen blocks, optimizer); NaN where we have none.
        training: the retraining variance pooled over the repeated cells (:func:`training_variance`).
        best_vgg: the best VGG-16 run by validation, as Table 8 picks it (None: no VGG-16 run finished).
    """

    runs: Mapping[str, dict | None]
    transfer: int | str
    probe: dict | None
    table8: pd.DataFrame
    cells: dict[tuple[int, str], float]
    training: SeedVariance
    best_vgg: str | None

    @classmethod
    def of(cls, runs: Mapping[str, dict | None], transfer: int | str, probe: dict | None) -> Evidence:
        """Read Tables 8 and 9, the seed variance and the best VGG-16 run from ``runs`` once."""
        grid = freeze_grid(runs)
        cells = {
            (k, opt): grid.loc[k, optimizer_label(opt)]
            if k in grid.index and optimizer_label(opt) in grid
            else math.nan
            for k, paper_row in PAPER_FREEZE_GRID.items()
            for opt in paper_row
        }
        table8 = summary(runs, transfer, probe)
        return cls(runs, transfer, probe, table8, cells, training_variance(runs), sanity_gate(runs)["run"])

    def row(self, model: str) -> str:
        """Table 8's row of one of the paper's approaches (the transfer row is named by its depth)."""
        return transfer_label(self.transfer) if model == TRANSFER else model

    def pick(self, model: str) -> list[dict]:
        """Every seed of the run Table 8 shows for one of the paper's approaches (none when it has no row)."""
        return (
            cell_runs(self.runs, self.table8.loc[self.row(model), "run"])
            if self.row(model) in self.table8.index
            else []
        )


def _table8_ordering(evidence: Evidence) -> Claim:
    """The paper's ordering of the five approaches against ours (Spearman)."""
    table8 = evidence.table8
    return rank_agreement(
        "Table 8: ordering of the five approaches (test accuracy)",
        {name: paper[2] for name, paper in PAPER_SUMMARY.items()},
        {
            name: table8.loc[evidence.row(name), "test_accuracy"]
            for name in PAPER_SUMMARY
            if evidence.row(name) in table8.index
        },
    )


def _table9_ordering(evidence: Evidence) -> Claim:
    """The paper's ordering of the freeze depth x optimizer cells against ours (Spearman)."""
    return rank_agreement(
        "Table 9: ordering of the freeze depth x optimizer cells (test accuracy)",
        {key: PAPER_FREEZE_GRID[key[0]][key[1]] for key in evidence.cells},
        evidence.cells,
    )


def _pairwise(claim: str, a: str, name_a: str, b: str, name_b: str, evidence: Evidence) -> Claim:
    """One of the paper's "A beats B" claims (a row of :data:`PAIRWISE`), tested over images and seeds."""
    if a == "Fine-tuning":
        claim = claim.replace("transfer", f"transfer ({transfer_depth_of(evidence.transfer)} frozen blocks)", 1)
    return beats(claim, paper_pair(a, b), name_a, evidence.pick(a), name_b, evidence.pick(b), evidence.training)


def _momentum_pooled(evidence: Evidence) -> Claim:
    """Momentum and NAG against SGD, every depth and seed pooled, tested over images and seeds."""
    return beats(
        f"{MOMENTUM} (all depths and seeds pooled)",
        paper_momentum_record(),
        "Momentum and NAG",
        _pool(evidence.runs, optimizers=("momentum", "nag")),
        "SGD",
        _pool(evidence.runs, optimizers=("sgd",)),
        evidence.training,
    )


def _momentum_cells(evidence: Evidence) -> Claim:
    """Momentum and NAG against SGD cell by cell (seed means), a sign test over the cells both have."""
    cells = evidence.cells
    pairs = [
        (cells[(k, opt)], cells[(k, "sgd")])
        for k in PAPER_FREEZE_GRID
        for opt in ("momentum", "nag")
        if not (math.isnan(cells[(k, opt)]) or math.isnan(cells[(k, "sgd")]))
    ]
    return sign_test(f"{MOMENTUM}, cell by cell (seed means)", paper_momentum_record(), pairs)


def _depth_claim(evidence: Evidence) -> Claim:
    """The paper's best-depth claim ("freezing blocks 1-3 is best"), checked on our runs.

    The paper's depth, all its optimizers and seeds pooled, is tested against the best
    other depth by mean validation accuracy (picked on validation, tested on test).
    """
    runs = evidence.runs
    depth, paper = paper_best_depth()
    claim = f"Freezing blocks 1-{depth} is best"
    depths = sorted({parse_name(run_id)[1] for run_id in select(primary_runs(runs), "freeze")})
    pools = {k: pool for k in depths if (pool := _pool(runs, depth=k))}
    if depth not in pools or len(pools) < 2:
        text = f"depth {depth} and another depth not both measured"
        return Claim(claim, paper, text, math.nan, NOT_MEASURED, SEED_TEST)
    val = {k: mean_and_sd([run["val"]["accuracy"] for run in pool])[0] for k, pool in pools.items()}
    rival = max((k for k in pools if k != depth), key=val.get)
    test = seed_test(pools[depth], pools[rival], evidence.training)
    means = ", ".join(f"k={k}: {seeds_text(pools[k]).replace('seeds', 'runs').replace('seed', 'run')}" for k in pools)
    text = f"depth {depth} vs depth {rival} (best other depth by validation)"
    if test is None:
        return Claim(claim, paper, text, math.nan, NOT_MEASURED, SEED_TEST)
    text += f": difference {difference_text(test)}; test accuracy by depth, optimizers and seeds pooled: {means}"
    return Claim(claim, paper, text, test.p_value, verdict(test.difference, test.p_value), SEED_TEST)


def _probe_claim(evidence: Evidence) -> Claim:
    """Does training add anything to the pretrained features? The best VGG-16 run (by validation) vs the probe.

    The study's version: transfer (0.778) and fine-tuning (0.792) beat fixed feature
    extraction (0.653), which trains only a classifier on the frozen features; our probe
    is the cheapest such classifier (a logistic regression on them).
    """
    paper = f"{paper_pair('Transfer', 'Fixed feature extraction')} (transfer vs fixed features)"
    best, probe = evidence.best_vgg, evidence.probe
    if probe is None or best is None:
        return Claim(PROBE_CLAIM, paper, "the probe or every VGG-16 run is missing", math.nan, NOT_MEASURED, SEED_TEST)
    return beats(PROBE_CLAIM, paper, best, cell_runs(evidence.runs, best), "linear probe", [probe], evidence.training)


STUDY_A_CLAIMS: tuple[Callable[[Evidence], Claim], ...] = (
    _table8_ordering,
    _table9_ordering,
    *(partial(_pairwise, *row) for row in PAIRWISE),
    _momentum_pooled,
    _momentum_cells,
    _depth_claim,
    _probe_claim,
)
"""Study A's claims in the order the table lists them, each checked by one function of :class:`Evidence`."""


def paper_comparison(
    runs: Mapping[str, dict | None],
    transfer: int | str = 3,
    probe: dict | None = None,
    study_b: StudyBFiles | None = None,
    lime_checks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The study's claims checked on our runs, and where our absolute accuracy stands on elpv.

    Orderings are compared (Spearman's rank correlation of Table 8's approaches and of
    Table 9's cells, seed means, with the paper's). Pairwise claims, the optimizer claim,
    the depth claim and the probe claim are tested over the test images with the
    retraining variance pooled over the repeated cells (:func:`seed_test`); "momentum
    methods beat plain SGD" is also counted cell by cell (sign test over the seed means).
    Absolute accuracy is set only beside published results on the same data (elpv),
    never beside the study's.

    Args:
        runs: runs by id (seed replicates included), as :func:`load_runs` returns them.
        transfer: Table 8's "Transfer" run, or its frozen depth (:func:`summary`).
        probe: the linear probe's metrics with its test predictions, or None.
        study_b: the feature-map tables study B's claims are read from (:func:`study_b_claims`), or None.
        lime_checks: the explained runs' LIME checks, for study A's judgement of LIME
            (:func:`layerscope.results.lime_claims.lime_claims`), or None.
    """
    evidence = Evidence.of(runs, transfer, probe)
    claims = [check(evidence) for check in STUDY_A_CLAIMS]
    claims += [Claim(**row, study="B") for row in study_b_claims(study_b)]  # feature maps: the explain stage's tables
    frame = claims_table([*claims, *lime_claims(lime_checks)])
    for name, value in _elpv_references(runs, evidence.best_vgg).items():
        frame.loc[name] = value
    return frame


def _elpv_references(runs: Mapping[str, dict | None], best: str | None) -> dict[str, list]:
    """Rows setting our best VGG-16 run beside published accuracies on elpv, task for task."""
    chosen = runs.get(best or "")
    rows = {}
    for task, figure, source in ELPV_PUBLISHED:
        ours = MISSING
        if chosen is not None:
            test = chosen["test"]
            binary = (test.get("binary") or {}).get("accuracy")
            ours = f"{best} (best VGG-16 run by validation): four-class {test['accuracy']:.3f}"
            if task != "four-class" and binary is not None:
                ours += f", binary (defect probability >= 0.5) {binary:.3f}"
        rows[f"Absolute {task} accuracy on elpv vs {source.split(',')[0]} ({figure:.4f})"] = [
            "elpv",
            f"{source}: {figure:.4f} (their protocol and split, not ours)",
            ours,
            math.nan,
            "reference only",
            "none",
        ]
    return rows


def _pool(runs: Mapping[str, dict | None], depth: int | None = None, optimizers: tuple[str, ...] = ()) -> list[dict]:
    """Every finished freeze-sweep run (all seeds) of one depth and/or some optimizers."""
    return [
        run
        for run_id in select(primary_runs(runs), "freeze", k=depth)
        if not optimizers or parse_name(run_id)[2] in optimizers
        for run in cell_runs(runs, run_id)
    ]
