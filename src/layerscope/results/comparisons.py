"""Paired comparisons of runs on the same test images, and the study's claims checked on ours.

The study's numbers (steel defects, 11 classes) and ours (by default elpv, 4 classes)
are different tasks, so subtracting them means nothing. What can be compared is the
*shape* of the results: does an approach beat another here too, at our confidence level?
Each claim gets a verdict from a test across the test images and the retraining
variance (:func:`seed_test`), never from one seed's luck, and no verdict at all where no
cell was trained twice: then nothing measures how far another seed, or another
machine's rounding, would move a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from layerscope.core.bootstrap import Interval
from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_sd_n
from layerscope.core.statistics import (
    SeedImageTest,
    SeedVariance,
    pooled_seed_variance,
    seed_image_bootstrap,
    seed_image_interval,
    spearman,
)
from layerscope.results.selection import cell_runs, primary_runs

ALPHA = 0.05


def _test_predictions(run: dict) -> pd.DataFrame:
    """A finished run's test predictions, checked to list each image once."""
    preds = run["test_predictions"]
    repeated = preds["path"][preds["path"].duplicated()].tolist()
    if repeated:
        raise LayerscopeError(
            f"run {run.get('run_id')!r} has more than one test prediction for {repeated[:3]}: "
            "its predictions.csv is damaged; rerun the run"
        )
    return preds


def _check_same_images(reference: dict, ref_preds: pd.DataFrame, run: dict, preds: pd.DataFrame) -> pd.DataFrame:
    """``ref_preds`` merged with ``preds`` on the image path; both runs must cover the same images and labels."""
    merged = ref_preds.merge(preds, on="path", suffixes=("_a", "_b"), validate="one_to_one")
    if len(merged) != len(ref_preds) or len(merged) != len(preds) or (merged["true_a"] != merged["true_b"]).any():
        raise LayerscopeError(
            f"runs {reference.get('run_id')!r} and {run.get('run_id')!r} were tested on different images "
            "or labels: compare runs of one experiment only"
        )
    return merged


SEED_TEST = "bootstrap over test images plus pooled seed variance"
UNMEASURED = "no cell has two finished seeds, so retraining variance is unmeasured: no verdict"
SEED_TEST_RESAMPLING_SEED = 0  # fixed, so a table is a function of the runs alone


def correctness(runs: Sequence[dict]) -> np.ndarray | None:
    """0/1 correctness of each run (rows) on each common test image (columns, sorted by path).

    Returns:
        The matrix, or None when there is no run or one lacks predictions.

    Raises:
        LayerscopeError: runs tested on different images or labels, or a run listing an
            image twice.
    """
    if not runs or any(run.get("test_predictions") is None for run in runs):
        return None
    checked = [_test_predictions(run) for run in runs]
    reference = checked[0]
    order = reference["path"].sort_values().to_numpy()
    rows = []
    for run, predictions in zip(runs, checked, strict=True):
        preds = _check_same_images(runs[0], reference, run, predictions).set_index("path")
        rows.append((preds["predicted_b"] == preds["true_b"]).reindex(order).to_numpy(np.float64))
    return np.vstack(rows)


def training_variance(runs: Mapping[str, dict | None]) -> SeedVariance:
    """The experiment's seed-to-seed variance of test accuracy, pooled over its cells with repeated seeds.

    Args:
        runs: the experiment's runs (seed replicates included), as ``load_runs`` gives them.

    Returns:
        :func:`layerscope.core.statistics.pooled_seed_variance` over every cell.
    """
    return pooled_seed_variance(
        [run["test"]["accuracy"] for run in cell_runs(runs, run_id)] for run_id in primary_runs(runs)
    )


def variance_line(training: SeedVariance) -> str:
    """The retraining variance in one sentence, for the summary and the README's results block."""
    if not training.measured:
        return (
            f"Retraining variance: {UNMEASURED}. Train some cells under several seeds "
            "(config keys runs.seeds and runs.seeded) to test differences."
        )
    return (
        f"Retraining variance: seed-to-seed sd of test accuracy {training.sd:.3f}, pooled over the "
        f"{training.cells} cells trained under more than one seed ({training.df} degrees of freedom); "
        "every difference's interval and p-value carry it, one-seed sides included."
    )


def seed_test(seeds_a: Sequence[dict], seeds_b: Sequence[dict], training: SeedVariance) -> SeedImageTest | None:
    """Test "A beats B" across the shared test images and the retraining variance of each side.

    Args:
        seeds_a: side A's finished runs (e.g. a cell's seeds, or every run of a depth),
            each with ``test_predictions``.
        seeds_b: side B's, likewise.
        training: the experiment's seed variance (:func:`training_variance`).

    Returns:
        :func:`layerscope.core.statistics.seed_image_bootstrap` of their correctness on the
        common images (interval and p-value NaN when ``training`` is unmeasured), or None
        when a side is empty or lacks predictions.

    Raises:
        LayerscopeError: runs tested on different images or labels, or a run listing an
            image twice.
    """
    if not seeds_a or not seeds_b:
        return None
    matrix = correctness([*seeds_a, *seeds_b])
    if matrix is None:
        return None
    return seed_image_bootstrap(matrix[: len(seeds_a)], matrix[len(seeds_a) :], training, SEED_TEST_RESAMPLING_SEED)


def seed_interval(seeds: Sequence[dict], training: SeedVariance) -> Interval | None:
    """A cell's mean test accuracy over its seeds with its 95% interval (test images, retraining variance)."""
    matrix = correctness(seeds)
    return None if matrix is None else seed_image_interval(matrix, training, SEED_TEST_RESAMPLING_SEED)


def verdict(difference: float, p_value: float, alpha: float = ALPHA) -> str:
    """Whether a claim "A beats B" holds, given our A - B difference and the test's p-value.

    Args:
        difference: our A - B figure (any sign convention where > 0 favours A); NaN: not measured.
        p_value: the paired test's p-value; NaN: not measured.
        alpha: the significance level.

    Returns:
        "holds" or "opposite" (p < alpha), "not shown (same direction)", "not shown
        (opposite direction)", "not shown (tie)", or "not measured".
    """
    if np.isnan(difference) or np.isnan(p_value):
        return NOT_MEASURED
    if p_value < alpha:
        return "holds" if difference > 0 else "opposite"
    if difference > 0:
        return "not shown (same direction)"
    return "not shown (opposite direction)" if difference < 0 else "not shown (tie)"


NOT_MEASURED = "not measured"
VERDICTS = ("holds", "opposite", "not shown", NOT_MEASURED, "reference only")
"""The short verdicts, in the order a reader weighs them: :func:`short_verdict` maps every verdict to one."""


def short_verdict(text: str) -> str:
    """One of :data:`VERDICTS` for a verdict (``"not shown (same direction)"`` -> ``"not shown"``)."""
    for short in VERDICTS:
        if text.startswith(short):
            return short
    raise LayerscopeError(f"unknown verdict {text!r}: expected one starting with {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class Claim:
    """One claim of the study, what the study reported for it, and our evidence."""

    claim: str
    paper: str
    ours: str
    p_value: float
    verdict: str
    test: str
    study: str = "A"

    def row(self) -> dict:
        """The claim as one table row, keyed by field."""
        return self.__dict__.copy()


def seeds_text(seeds: Sequence[dict]) -> str:
    """A side's test accuracy as evidence text: ``0.712 ± 0.010 (3 seeds)`` or ``0.712 (1 seed)``."""
    mean, sd, n = mean_sd_n([run["test"]["accuracy"] for run in seeds])
    return f"{mean:.3f} ({n} seed)" if n == 1 else f"{mean:.3f} ± {sd:.3f} ({n} seeds)"


def beats(
    claim: str,
    paper: str,
    name_a: str,
    seeds_a: Sequence[dict],
    name_b: str,
    seeds_b: Sequence[dict],
    training: SeedVariance,
) -> Claim:
    """Claim "A beats B" (test accuracy), tested across the test images and the retraining variance.

    Args:
        claim: the claim, as the table words it.
        paper: what the study reported for it.
        name_a: A's name in our evidence text.
        seeds_a: A's finished runs, one per training seed (empty if unfinished).
        name_b: B's name in our evidence text.
        seeds_b: B's, likewise.
        training: the experiment's seed variance (:func:`training_variance`).

    Returns:
        The claim with our seed-mean accuracies, the difference with its 95% interval and
        the verdict (:func:`seed_test`; "not measured" when ``training`` is unmeasured).

    Raises:
        LayerscopeError: the runs were tested on different images or labels, or one
            lists an image twice.
    """
    if not seeds_a or not seeds_b:
        return Claim(claim, paper, "a run is missing", float("nan"), NOT_MEASURED, SEED_TEST)
    test = seed_test(seeds_a, seeds_b, training)
    ours = f"{name_a} {seeds_text(seeds_a)} vs {name_b} {seeds_text(seeds_b)}"
    if test is None:
        return Claim(claim, paper, ours, float("nan"), NOT_MEASURED, SEED_TEST)
    ours += f"; difference {difference_text(test)}"
    return Claim(claim, paper, ours, test.p_value, verdict(test.difference, test.p_value), SEED_TEST)


def difference_text(test: SeedImageTest) -> str:
    """A - B with its 95% interval, ``+0.031 [-0.004, +0.066]``, or with why it has none."""
    if test.low != test.low:
        return f"{test.difference:+.3f} ({UNMEASURED})"
    return f"{test.difference:+.3f} [{test.low:+.3f}, {test.high:+.3f}]"


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
        return Claim(claim, paper, "no paired cells", float("nan"), NOT_MEASURED, "sign test")
    from scipy.stats import binomtest  # lazily: the Snakefile imports this module's table names

    p_value = float(binomtest(wins, wins + losses, 0.5).pvalue)
    ours = f"wins {wins}, losses {losses}, ties {len(pairs) - wins - losses} of {len(pairs)} cells"
    return Claim(claim, paper, ours, p_value, verdict(wins - losses, p_value), "sign test")


def rank_agreement(claim: str, published: Mapping[str, float], ours: Mapping[str, float]) -> Claim:
    """Spearman's rank correlation between the paper's figures and ours over the cells both have.

    Its p-value counts every ordering of the cells (:func:`layerscope.core.statistics.spearman`).

    Args:
        claim: the claim, as the table words it.
        published: the study's figure per cell.
        ours: our figure per cell; NaN cells are left out.

    Returns:
        The claim with rho and its verdict ("not measured" below 3 cells or for constant ranks).
    """
    keys = [key for key in published if key in ours and ours[key] == ours[key]]
    if len(keys) < 3:
        return Claim(claim, "ordering", f"{len(keys)} cells measured", float("nan"), NOT_MEASURED, "Spearman")
    rho, p_value = spearman([published[k] for k in keys], [ours[k] for k in keys])
    text = f"rho = {rho:.2f} over {len(keys)} cells"
    if rho != rho:
        return Claim(claim, "ordering", text + " (constant ranks)", float("nan"), NOT_MEASURED, "Spearman")
    return Claim(
        claim,
        "ordering",
        text,
        p_value,
        verdict(rho, p_value),
        "Spearman",
    )


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims as a table indexed by claim.

    Args:
        claims: the checked claims.

    Returns:
        Columns study, paper, ours, p_value, verdict and test.
    """
    columns = ["claim", "study", "paper", "ours", "p_value", "verdict", "test"]
    frame = pd.DataFrame([c.row() for c in claims], columns=columns)
    return frame.set_index("claim")
