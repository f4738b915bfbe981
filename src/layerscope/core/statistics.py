"""Comparing runs: McNemar's test, paired bootstrap differences, seed spread, seed-image bootstrap.

A test split of a few hundred images gives accuracies with a standard error of two to
three points, so two runs whose accuracies differ by less than that are not shown to
differ. These helpers put that uncertainty beside every difference the tables report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layerscope.core.bootstrap import BOOTSTRAP_RESAMPLES, CONFIDENCE, Interval, check_labels
from layerscope.core.errors import LayerscopeError


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of two classifiers on the same test images."""

    only_a_correct: int
    only_b_correct: int
    p_value: float

    @property
    def discordant(self) -> int:
        """Images exactly one of the two classifiers gets right: the test's sample size."""
        return self.only_a_correct + self.only_b_correct


def mcnemar(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int]) -> McNemar:
    """McNemar's exact test (two-sided binomial test on the discordant pairs).

    Paired: it counts the images one model gets right and the other wrong, which is
    what "model A beats model B on this test set" rests on. With no discordant pair
    the models agree everywhere and p = 1.

    Args:
        y_true: true class indices of the test images.
        pred_a: model A's predicted class indices, same order.
        pred_b: model B's predicted class indices, same order.

    Returns:
        The discordant counts and the two-sided p-value.

    Raises:
        LayerscopeError: label vectors that are empty or of different lengths.
    """
    y_true, pred_a = check_labels(y_true, pred_a)
    _, pred_b = check_labels(y_true, pred_b)
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    if only_a + only_b == 0:
        return McNemar(0, 0, 1.0)
    from scipy.stats import binomtest  # lazily: the Snakefile imports the table names, which reach this module

    p_value = binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue
    return McNemar(only_a, only_b, float(min(1.0, p_value)))


def mean_and_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) across seeds; sd is NaN for a single seed.

    Args:
        values: one figure per seed; NaN (an unfinished seed) is left out.

    Returns:
        ``(mean, sd)``; both NaN when no value is left.
    """
    mean, sd, _ = mean_sd_n(values)
    return mean, sd


def mean_sd_n(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample sd (ddof=1) and count of the defined (non-NaN) values.

    Args:
        values: figures; NaN (unfinished, undefined) is left out.

    Returns:
        ``(mean, sd, n)``: mean NaN when no value is left, sd NaN below two values.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    mean = float(array.mean()) if len(array) else float("nan")
    return mean, float(array.std(ddof=1)) if len(array) > 1 else float("nan"), len(array)


def paired_difference_interval(
    y_true: Sequence[int],
    pred_a: Sequence[int],
    pred_b: Sequence[int],
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Accuracy of A minus accuracy of B with a paired percentile bootstrap interval.

    Both models are scored on the same resampled images, so the interval reflects the
    pairing (much narrower than two independent intervals when the models agree often).

    Args:
        y_true: true class indices of the test images.
        pred_a: model A's predicted class indices, same order.
        pred_b: model B's predicted class indices, same order.
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        The accuracy difference A - B with its interval.

    Raises:
        LayerscopeError: label vectors that are empty or of different lengths.
    """
    y_true, pred_a = check_labels(y_true, pred_a)
    _, pred_b = check_labels(y_true, pred_b)
    n = len(y_true)
    delta = (pred_a == y_true).astype(np.float64) - (pred_b == y_true).astype(np.float64)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)
    samples = counts @ delta / n
    return Interval(float(delta.mean()), *_percentiles(samples, confidence))


@dataclass(frozen=True)
class SeedImageTest:
    """A - B test accuracy across training seeds and test images, with its interval and p-value."""

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
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> SeedImageTest:
    """Two-level bootstrap of "A beats B": over each side's training seeds and the shared test images.

    A claim about depths or approaches has two sources of chance: which seeds trained the
    runs and which images the test split holds. Each resample draws, with replacement,
    each side's seeds (independently: they are different runs) and one set of test images
    (shared: both sides are scored on the same images, which keeps the pairing), and
    takes the mean accuracy of A's drawn seeds minus B's on the drawn images. With one
    seed per side it is the paired image bootstrap; with many images it is the
    bootstrap of the seed means. Resampling three seeds understates their spread a
    little (by a factor (s-1)/s in variance), so three seeds are a floor, not a target.

    Args:
        correct_a: 0/1 correctness of side A, one row per seed, one column per test image.
        correct_b: the same for side B, columns in the same image order.
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        The observed difference of seed-mean accuracies, its percentile interval, and a
        two-sided p-value: twice the smaller share of resamples on either side of 0
        (each counted with the observed one, so never 0).

    Raises:
        LayerscopeError: empty sides or sides scored on different numbers of images.
    """
    a, b = np.atleast_2d(np.asarray(correct_a, np.float64)), np.atleast_2d(np.asarray(correct_b, np.float64))
    if a.size == 0 or b.size == 0 or a.shape[1] != b.shape[1]:
        raise LayerscopeError(
            f"seed-image bootstrap needs seeds x images arrays over the same images, got {a.shape} and {b.shape}"
        )
    rng = np.random.default_rng(seed)
    image_weights = _image_weights(rng, a.shape[1], resamples)
    per_image = _seed_draws(rng, a, resamples) - _seed_draws(rng, b, resamples)  # (R, n)
    samples = np.einsum("rn,rn->r", image_weights, per_image)
    low, high = _percentiles(samples, confidence)
    below, above = (np.sum(samples <= 0) + 1) / (resamples + 1), (np.sum(samples >= 0) + 1) / (resamples + 1)
    return SeedImageTest(
        difference=float(a.mean() - b.mean()),
        low=float(low),
        high=float(high),
        p_value=float(min(1.0, 2 * min(below, above))),
        seeds_a=a.shape[0],
        seeds_b=b.shape[0],
        images=a.shape[1],
    )


def seed_image_interval(
    correct: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE
) -> Interval:
    """A cell's mean accuracy over its seeds with the same two-level bootstrap interval.

    Args:
        correct: 0/1 correctness, one row per seed, one column per test image.
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        The mean accuracy over seeds with its percentile interval (seeds and images resampled).
    """
    matrix = np.atleast_2d(np.asarray(correct, np.float64))
    rng = np.random.default_rng(seed)
    image_weights = _image_weights(rng, matrix.shape[1], resamples)
    samples = np.einsum("rn,rn->r", image_weights, _seed_draws(rng, matrix, resamples))
    return Interval(float(matrix.mean()), *_percentiles(samples, confidence))


def _image_weights(rng: np.random.Generator, images: int, resamples: int) -> np.ndarray:
    """Bootstrap weights of the test images, (resamples, images), each row summing to 1."""
    return rng.multinomial(images, np.full(images, 1.0 / images), size=resamples) / images


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    low, high = np.percentile(samples, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return float(low), float(high)


def _seed_draws(rng: np.random.Generator, correct: np.ndarray, resamples: int) -> np.ndarray:
    """Per resample, each image's mean correctness over seeds drawn with replacement: (resamples, images)."""
    seeds = correct.shape[0]
    weights = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=resamples) / seeds  # (R, seeds)
    return weights @ correct
