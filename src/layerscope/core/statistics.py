"""Comparing runs: McNemar's test, paired bootstrap differences, seed spread.

A test split of a few hundred images gives accuracies with a standard error of two to
three points, so two runs whose accuracies differ by less than that are not shown to
differ. These helpers put that uncertainty beside every difference the tables report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from layerscope.core.bootstrap import BOOTSTRAP_RESAMPLES, CONFIDENCE, Interval, check_labels


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
    low, high = np.percentile(samples, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return Interval(float(delta.mean()), float(low), float(high))
