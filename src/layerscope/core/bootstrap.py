"""The one bootstrap: resample counts, percentile intervals, and a run's test intervals.

A test split of a few hundred images gives accuracies with a standard error of two to
three points; every accuracy and F1 a run reports carries its percentile interval. The
results stage computes them from each run's ``predictions.csv``
(:mod:`layerscope.results.run_files`), never the training job, so editing this module
retrains nothing. The tables' tests (:mod:`layerscope.core.statistics`) resample with
the same helpers and the same count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layerscope.core.errors import LayerscopeError

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided percentile bootstrap interval."""

    estimate: float
    low: float
    high: float


def resample_counts(rng: np.random.Generator, n: int, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample: (resamples, n) counts, each row summing to ``n``.

    A bootstrap resample draws n items with replacement, which is a multinomial count;
    a statistic that is linear in the items is then one matrix product.
    """
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The (1-confidence)/2 and (1+confidence)/2 quantiles of bootstrap ``samples``."""
    low, high = np.percentile(samples, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return float(low), float(high)


def check_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two label vectors as int64 arrays of one length, or an error naming what is wrong."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise LayerscopeError(
            f"true and predicted labels must be equal-length non-empty vectors, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    return y_true, y_pred


def accuracy_and_weighted_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and support-weighted F1 of one or many confusion matrices (..., K, K), rows = truth.

    Same definitions as scikit-learn's ``accuracy_score`` and ``f1_score(average="weighted",
    zero_division=0)``; vectorised so thousands of bootstrap resamples cost one array op.

    Args:
        confusion: counts (..., K, K), rows the true class, columns the predicted one.

    Returns:
        ``(accuracy, weighted_f1)``, each of shape (...).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum(axis=(-2, -1))
    correct = np.diagonal(confusion, axis1=-2, axis2=-1)
    support, predicted = confusion.sum(axis=-1), confusion.sum(axis=-2)
    denominator = support + predicted  # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted)
    f1 = np.divide(2 * correct, denominator, out=np.zeros_like(correct), where=denominator > 0)
    weighted = (f1 * support).sum(axis=-1) / total
    return correct.sum(axis=-1) / total, weighted


def bootstrap_intervals(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_classes: int,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of test accuracy and weighted F1, resampling test images.

    Each resample draws n images with replacement (seeded by ``seed``); the interval is
    the (1-confidence)/2 and (1+confidence)/2 quantiles of the resampled figures.

    Args:
        y_true: true class indices of the test images.
        y_pred: predicted class indices, same length.
        num_classes: the number of classes (indices must be below it).
        seed: seeds the resampling.
        resamples: how many bootstrap resamples.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``{"accuracy": Interval, "f1_weighted": Interval}``.

    Raises:
        LayerscopeError: label vectors that are empty or of different lengths, a class
            index outside 0..num_classes-1, or a confidence outside (0, 1).
    """
    y_true, y_pred = check_labels(y_true, y_pred)
    indices = np.concatenate([y_true, y_pred])
    outside = np.unique(indices[(indices < 0) | (indices >= num_classes)])
    if outside.size:
        raise LayerscopeError(f"class indices must be in 0..{num_classes - 1}, got {outside.tolist()}")
    if not 0 < confidence < 1:
        raise LayerscopeError(f"confidence must be in (0, 1), got {confidence}")
    n = len(y_true)
    cells = y_true * num_classes + y_pred
    counts = resample_counts(np.random.default_rng(seed), n, resamples)
    per_cell = np.zeros((n, num_classes * num_classes))
    per_cell[np.arange(n), cells] = 1.0
    confusions = (counts @ per_cell).reshape(resamples, num_classes, num_classes)
    boot_accuracy, boot_f1 = accuracy_and_weighted_f1(confusions)
    full = np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    accuracy, f1 = accuracy_and_weighted_f1(full)
    return {
        name: Interval(float(point), *percentile_interval(samples, confidence))
        for name, point, samples in (("accuracy", accuracy, boot_accuracy), ("f1_weighted", f1, boot_f1))
    }
