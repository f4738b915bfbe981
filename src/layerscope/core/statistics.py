"""Comparing runs: the seed variance pooled over repeated cells, and the seed-image bootstrap.

A test split of a few hundred images gives accuracies with a standard error of two to
three points, so two runs whose accuracies differ by less than that are not shown to
differ. These helpers put that uncertainty beside every difference the tables report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from layerscope.core.bootstrap import BOOTSTRAP_RESAMPLES, CONFIDENCE, Interval, percentile_interval, resample_counts
from layerscope.core.errors import LayerscopeError


@dataclass(frozen=True)
class SeedVariance:
    """How far retraining a config moves its test accuracy: the seed-to-seed variance, pooled over cells.

    An image bootstrap of one run cannot see this: it holds the trained weights fixed.
    Another seed, or another CPU's rounding, trains other weights, and their test
    accuracy differs by about this much. It is pooled over every cell trained under two
    or more seeds (the within-cell mean square of a one-way analysis of variance), so a
    side trained under one seed borrows it from the cells that were repeated.
    """

    variance: float
    df: int
    cells: int

    @property
    def measured(self) -> bool:
        """Whether some cell had two finished seeds, so the variance has a value."""
        return self.df > 0

    @property
    def sd(self) -> float:
        """The seed-to-seed standard deviation of test accuracy (NaN when unmeasured)."""
        return math.sqrt(self.variance) if self.measured else math.nan


def pooled_seed_variance(cells: Iterable[Sequence[float]]) -> SeedVariance:
    """The within-cell variance of test accuracy over the cells with two or more finished seeds.

    Args:
        cells: per cell, its seeds' test accuracies; NaN (an unfinished seed) is left out.

    Returns:
        The pooled variance (sum of squared deviations from each cell's mean over the sum
        of seeds - 1), its degrees of freedom and the number of cells it pools; NaN with
        0 degrees of freedom when no cell has two seeds.
    """
    repeated = [values[~np.isnan(values)] for values in (np.asarray(cell, np.float64).ravel() for cell in cells)]
    repeated = [values for values in repeated if len(values) > 1]
    df = sum(len(values) - 1 for values in repeated)
    squares = sum(float(np.sum((values - values.mean()) ** 2)) for values in repeated)
    return SeedVariance(squares / df if df else math.nan, df, len(repeated))


@dataclass(frozen=True)
class SeedImageTest:
    """A - B test accuracy across training seeds and test images, with its interval and p-value.

    ``low``, ``high`` and ``p_value`` are NaN when the seed variance is unmeasured.
    """

    difference: float
    low: float
    high: float
    p_value: float
    seeds_a: int
    seeds_b: int
    images: int


def seed_image_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    training: SeedVariance,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> SeedImageTest:
    """Bootstrap of "A beats B" over the test images, with the retraining variance added.

    A claim about depths or approaches has two sources of chance: which images the test
    split holds, and which weights training happened to reach. Each resample draws one
    set of test images (shared: both sides are scored on the same images, which keeps the
    pairing) and takes the difference of the sides' seed-mean correctness on them, then
    adds a draw of the training noise of that difference: normal with variance
    ``training.variance`` x (1/seeds_a + 1/seeds_b), its variance itself drawn from the
    scaled inverse chi-square of its degrees of freedom (so a variance estimated from few
    seeds widens the interval as a t distribution would). Resampling a side's own seeds
    would give a one-seed side no training variance at all, and three seeds too little.
    The two terms overlap a little (the images two runs' seeds disagree on are in the
    image term too), so the test leans conservative; ``benchmarks/seed_calibration.py``
    counts how often it calls two seeds of one config different.

    Args:
        correct_a: 0/1 correctness of side A, one row per seed, one column per test image.
        correct_b: the same for side B, columns in the same image order.
        training: the experiment's seed variance (:func:`pooled_seed_variance`).
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        The observed difference of seed-mean accuracies, its percentile interval, and a
        two-sided p-value: twice the smaller share of resamples on either side of 0
        (each counted with the observed one, so never 0). Interval and p-value are NaN
        when ``training`` is unmeasured: without a repeated seed nothing says how far
        retraining would move either side.

    Raises:
        LayerscopeError: empty sides or sides scored on different numbers of images.
    """
    a, b = np.atleast_2d(np.asarray(correct_a, np.float64)), np.atleast_2d(np.asarray(correct_b, np.float64))
    if a.size == 0 or b.size == 0 or a.shape[1] != b.shape[1]:
        raise LayerscopeError(
            f"seed-image bootstrap needs seeds x images arrays over the same images, got {a.shape} and {b.shape}"
        )
    counts = {"seeds_a": a.shape[0], "seeds_b": b.shape[0], "images": a.shape[1]}
    difference = float(a.mean() - b.mean())
    if not training.measured:
        return SeedImageTest(difference, math.nan, math.nan, math.nan, **counts)
    rng = np.random.default_rng(seed)
    samples = _image_weights(rng, a.shape[1], resamples) @ (a.mean(axis=0) - b.mean(axis=0))
    samples += _training_noise(rng, training, 1 / a.shape[0] + 1 / b.shape[0], resamples)
    low, high = percentile_interval(samples, confidence)
    below, above = (np.sum(samples <= 0) + 1) / (resamples + 1), (np.sum(samples >= 0) + 1) / (resamples + 1)
    return SeedImageTest(difference, low, high, float(min(1.0, 2 * min(below, above))), **counts)


def seed_image_interval(
    correct: np.ndarray,
    training: SeedVariance,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Interval:
    """A cell's mean accuracy over its seeds with the same interval (test images resampled, training noise added).

    Args:
        correct: 0/1 correctness, one row per seed, one column per test image.
        training: the experiment's seed variance; unmeasured, the interval is over test images only.
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        The mean accuracy over seeds with its percentile interval.
    """
    matrix = np.atleast_2d(np.asarray(correct, np.float64))
    rng = np.random.default_rng(seed)
    samples = _image_weights(rng, matrix.shape[1], resamples) @ matrix.mean(axis=0)
    if training.measured:
        samples += _training_noise(rng, training, 1 / matrix.shape[0], resamples)
    return Interval(float(matrix.mean()), *percentile_interval(samples, confidence))


def _image_weights(rng: np.random.Generator, images: int, resamples: int) -> np.ndarray:
    """Bootstrap weights of the test images, (resamples, images), each row summing to 1."""
    return resample_counts(rng, images, resamples) / images


def _training_noise(rng: np.random.Generator, training: SeedVariance, scale: float, resamples: int) -> np.ndarray:
    """Draws of retraining noise with variance ``training.variance * scale``, its uncertainty included.

    The variance of each draw comes from its sampling distribution (``variance * df /
    chi2(df)``), so the draws are t-distributed with ``df`` degrees of freedom.
    """
    variance = training.variance * training.df / rng.chisquare(training.df, resamples)
    return rng.standard_normal(resamples) * np.sqrt(variance * scale)


EXACT_SPEARMAN_MAX_N = 9
"""Up to 9 cells (9! = 362,880 orderings) the rank correlation's p-value counts every ordering."""


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value, exact over every ordering for a few cells.

    SciPy's ``spearmanr`` p-value is a t approximation that fails for the five to nine cells
    of the study's tables: a perfect ordering of five cells gets p ~ 1e-24 from it, where
    exactly 2 of the 120 orderings are as extreme (p = 1/60). Ties take average ranks;
    constant figures give NaN for both. Above :data:`EXACT_SPEARMAN_MAX_N` cells the t
    approximation is used.
    """
    from scipy.stats import permutation_test, rankdata, spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    if len(x) > EXACT_SPEARMAN_MAX_N:
        result = spearmanr(x, y)
        return float(result.statistic), float(result.pvalue)

    fixed = rankdata(y)
    fixed -= fixed.mean()

    def rho(ranks, axis=-1):
        ranks = ranks - ranks.mean(axis=axis, keepdims=True)
        return (ranks * fixed).sum(axis=axis) / np.sqrt((ranks * ranks).sum(axis=axis) * (fixed * fixed).sum())

    # One sample permuted against the other held fixed: n! orderings (permuting both would be n!^2).
    result = permutation_test(
        (rankdata(x),), rho, permutation_type="pairings", n_resamples=np.inf, vectorized=True, batch=40320
    )
    return float(result.statistic), float(result.pvalue)
