"""Mean and spread of a figure across seeds or runs: what every table prints beside a figure.

Kept apart from the tests that compare runs (:mod:`layerscope.core.statistics`): the
explanation jobs use these, so editing a test reruns the tables, not those jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean, its t-interval and count of the defined (non-NaN) values: a figure measured on several images.

    Args:
        values: figures; NaN (undefined) is left out.
        confidence: the interval's coverage.

    Returns:
        ``(mean, low, high, n)``: mean NaN when no value is left; the interval NaN below two
        values or when all are equal (no spread to scale).
    """
    from scipy import stats  # lazily: the Snakefile imports the tables, which import this module

    mean, sd, n = mean_sd_n(values)
    if n < 2 or sd == 0:
        return mean, float("nan"), float("nan"), n
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return mean, float(low), float(high), n
