"""Paired tests of two models on the same test images, for the precision benchmark.

McNemar's exact test and the paired bootstrap interval of an accuracy difference say
whether two trained *models* differ (``bench_precision.py``: one run trained in bfloat16
and in float32). The tables compare configs across seeds instead
(:mod:`layerscope.core.statistics`), so these live beside the benchmark that uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from layerscope.core.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    Interval,
    check_labels,
    percentile_interval,
    resample_counts,
)


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
    samples = resample_counts(np.random.default_rng(seed), n, resamples) @ delta / n
    return Interval(float(delta.mean()), *percentile_interval(samples, confidence))
