"""Paired comparisons of runs on the same test images, and the study's claims checked on ours.

The study's numbers (steel defects, 11 classes) and ours (by default elpv, 4 classes)
are different tasks, so subtracting them means nothing. What can be compared is the
*shape* of the results: does an approach beat another here too, at our confidence level?
Each claim gets a verdict from a paired test on our test images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, spearmanr

from layerscope.core.errors import LayerscopeError
from layerscope.core.statistics import McNemar, mcnemar

ALPHA = 0.05


def paired_test(run_a: dict | None, run_b: dict | None) -> McNemar | None:
    """McNemar's test of two finished runs on their common test images; None if either lacks predictions.

    Args:
        run_a: run A as :func:`layerscope.results.run_files.load_runs` returns it (with
            ``test_predictions``), or None.
        run_b: run B, likewise.

    Returns:
        The test, or None when either run or its predictions are missing.

    Raises:
        LayerscopeError: the runs were tested on different images or labels, or one
            lists an image twice.
    """
    preds_a = (run_a or {}).get("test_predictions")
    preds_b = (run_b or {}).get("test_predictions")
    if preds_a is None or preds_b is None:
        return None
    for run, preds in ((run_a, preds_a), (run_b, preds_b)):
        repeated = preds["path"][preds["path"].duplicated()].tolist()
        if repeated:
            raise LayerscopeError(
                f"run {run.get('run_id')!r} has more than one test prediction for {repeated[:3]}: "
                "its predictions.csv is damaged; rerun the run"
            )
    merged = preds_a.merge(preds_b, on="path", suffixes=("_a", "_b"), validate="one_to_one")
    if len(merged) != len(preds_a) or (merged["true_a"] != merged["true_b"]).any():
        raise LayerscopeError(
            f"runs {run_a.get('run_id')!r} and {run_b.get('run_id')!r} were tested on different images "
            "or labels: compare runs of one experiment only"
        )
    labels = {
        name: i
        for i, name in enumerate(
            sorted(set(merged["true_a"]) | set(merged["predicted_a"]) | set(merged["predicted_b"]))
        )
    }
    truth, pred_a, pred_b = (
        merged[column].map(labels).to_numpy() for column in ("true_a", "predicted_a", "predicted_b")
    )
    return mcnemar(truth, pred_a, pred_b)


def verdict(difference: float, p_value: float, alpha: float = ALPHA) -> str:
    """Whether a claim "A beats B" holds, given our A - B difference and the test's p-value.

    Args:
        difference: our A - B figure (any sign convention where > 0 favours A); NaN: not measured.
        p_value: the paired test's p-value; NaN: not measured.
        alpha: the significance level.

    Returns:
        "holds", "contradicted", "same direction, not significant", "opposite direction,
        not significant", "tie" or "not measured".
    """
    if difference != difference or p_value != p_value:
        return "not measured"
    if p_value < alpha:
        return "holds" if difference > 0 else "contradicted"
    if difference > 0:
        return "same direction, not significant"
    return "opposite direction, not significant" if difference < 0 else "tie"


@dataclass(frozen=True)
class Claim:
    """One claim of the study, what the study reported for it, and our evidence."""

    claim: str
    paper: str
    ours: str
    p_value: float
    verdict: str
    test: str

    def row(self) -> dict:
        """The claim as one table row, keyed by field."""
        return self.__dict__.copy()


def beats(claim: str, paper: str, name_a: str, run_a: dict | None, name_b: str, run_b: dict | None) -> Claim:
    """Claim "A beats B" (test accuracy), checked with McNemar's test on our test images.

    Args:
        claim: the claim, as the table words it.
        paper: what the study reported for it.
        name_a: A's name in our evidence text.
        run_a: A's run (with ``test`` metrics and ``test_predictions``), or None if unfinished.
        name_b: B's name in our evidence text.
        run_b: B's run, likewise.

    Returns:
        The claim with our accuracies, the discordant counts and the verdict.

    Raises:
        LayerscopeError: the runs were tested on different images or labels, or one
            lists an image twice.
    """
    if run_a is None or run_b is None:
        return Claim(claim, paper, "a run is missing", float("nan"), "not measured", "McNemar")
    acc_a, acc_b = run_a["test"]["accuracy"], run_b["test"]["accuracy"]
    test = paired_test(run_a, run_b)
    p_value = float("nan") if test is None else test.p_value
    ours = f"{name_a} {acc_a:.3f} vs {name_b} {acc_b:.3f}"
    if test is not None:
        ours += f" ({test.only_a_correct} vs {test.only_b_correct} images only one gets right)"
    return Claim(claim, paper, ours, p_value, verdict(acc_a - acc_b, p_value), "McNemar (exact)")


def sign_test(claim: str, paper: str, pairs: Sequence[tuple[float, float]]) -> Claim:
    """Claim "A beats B across the grid": a two-sided sign test over paired cells (ties dropped).

    Args:
        claim: the claim, as the table words it.
        paper: what the study reported for it.
        pairs: ``(a, b)`` figures of each grid cell.

    Returns:
        The claim with wins, losses and ties and the verdict.
    """
    wins = sum(a > b for a, b in pairs)
    losses = sum(a < b for a, b in pairs)
    if wins + losses == 0:
        return Claim(claim, paper, "no paired cells", float("nan"), "not measured", "sign test")
    p_value = float(binomtest(wins, wins + losses, 0.5).pvalue)
    ours = f"wins {wins}, losses {losses}, ties {len(pairs) - wins - losses} of {len(pairs)} cells"
    return Claim(claim, paper, ours, p_value, verdict(wins - losses, p_value), "sign test")


def rank_agreement(claim: str, published: Mapping[str, float], ours: Mapping[str, float]) -> Claim:
    """Spearman's rank correlation between the paper's figures and ours over the cells both have.

    Args:
        claim: the claim, as the table words it.
        published: the study's figure per cell.
        ours: our figure per cell; NaN cells are left out.

    Returns:
        The claim with rho and its verdict ("not measured" below 3 cells or for constant ranks).
    """
    keys = [key for key in published if key in ours and ours[key] == ours[key]]
    if len(keys) < 3:
        return Claim(claim, "ordering", f"{len(keys)} cells measured", float("nan"), "not measured", "Spearman")
    result = spearmanr([published[k] for k in keys], [ours[k] for k in keys])
    rho, p_value = float(result.statistic), float(result.pvalue)
    text = f"rho = {rho:.2f} over {len(keys)} cells"
    if rho != rho:
        return Claim(claim, "ordering", text + " (constant ranks)", float("nan"), "not measured", "Spearman")
    return Claim(
        claim,
        "ordering",
        text,
        p_value,
        verdict(rho, p_value).replace("holds", "orderings agree").replace("contradicted", "orderings reversed"),
        "Spearman",
    )


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims as a table indexed by claim.

    Args:
        claims: the checked claims.

    Returns:
        Columns paper, ours, p_value, verdict and test.
    """
    frame = pd.DataFrame([c.row() for c in claims], columns=["claim", "paper", "ours", "p_value", "verdict", "test"])
    return frame.set_index("claim")


def mean_by(cells: Mapping[tuple[int, str], float], key_index: int) -> dict:
    """Mean test accuracy by one coordinate of (depth, optimizer) cells, ignoring missing ones.

    Args:
        cells: test accuracy per ``(depth, optimizer)``; NaN for a missing run.
        key_index: 0 to average by depth, 1 by optimizer.

    Returns:
        The mean per depth or per optimizer.
    """
    groups: dict = {}
    for key, value in cells.items():
        if value == value:
            groups.setdefault(key[key_index], []).append(value)
    return {key: float(np.mean(values)) for key, values in groups.items()}
