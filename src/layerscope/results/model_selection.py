"""Scoring a freeze-depth signal as a model-selection method (LogME, LEEP, surgical fine-tuning).

A signal gives each depth k a score (higher: freeze k blocks). A sweep (one optimizer
and one training seed, every depth trained) gives each depth its validation and test
accuracy. The signal is scored on each sweep by Kendall's tau and Spearman's rho between
its scores and the validation accuracies over the swept depths, by whether its top depth
is the sweep's best by validation (a hit), and by its regret: the best test accuracy of
the sweep minus the test accuracy at the depth it picks. Picked on validation, reported
on test. Trivial rules are scored the same way: always the study's depth, always the
deepest, and a uniformly random depth (its expected hit rate and regret).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

from layerscope.core.bootstrap import BOOTSTRAP_RESAMPLES, percentile_interval, resample_counts


@dataclass(frozen=True)
class Sweep:
    """One trained sweep: validation and test accuracy per swept depth."""

    name: str
    val: Mapping[int, float]
    test: Mapping[int, float]
    seed: int | None = None  # the training seed (None: the first, under plain run ids)

    @property
    def depths(self) -> list[int]:
        """The depths with both figures, ascending."""
        return sorted(k for k in self.val if k in self.test and self.val[k] == self.val[k])


@dataclass(frozen=True)
class SweepScore:
    """A signal on one sweep."""

    chosen: int | None
    best: int | None
    tau: float
    rho: float
    hit: float
    regret: float


def pick(scores: Mapping[int, float], depths: Sequence[int]) -> int | None:
    """The depth with the highest score among ``depths`` (ties: the shallower); None without a scored depth."""
    scored = [k for k in depths if k in scores and scores[k] == scores[k]]
    return max(scored, key=lambda k: (scores[k], -k)) if scored else None


def score_signal(scores: Mapping[int, float], sweep: Sweep) -> SweepScore:
    """The signal's rank agreement, hit and regret on one sweep (NaN where undefined).

    Args:
        scores: the signal's score per depth (higher: the better depth to freeze).
        sweep: the sweep's validation and test accuracy per depth.
    """
    depths = [k for k in sweep.depths if k in scores and scores[k] == scores[k]]
    if not depths:
        return SweepScore(None, None, math.nan, math.nan, math.nan, math.nan)
    chosen, best = pick(scores, depths), pick(sweep.val, sweep.depths)
    tau = rho = math.nan
    if len(depths) > 1 and len({scores[k] for k in depths}) > 1 and len({sweep.val[k] for k in depths}) > 1:
        signal, val = [scores[k] for k in depths], [sweep.val[k] for k in depths]
        tau, rho = float(kendalltau(signal, val).statistic), float(spearmanr(signal, val).statistic)
    regret = max(sweep.test[k] for k in sweep.depths) - sweep.test[chosen]
    return SweepScore(chosen, best, tau, rho, float(chosen == best), float(regret))


def fixed_depth(depth: int) -> dict[int, float]:
    """The rule "always freeze ``depth`` blocks" as a signal."""
    return {depth: 1.0}


def random_depth(sweep: Sweep) -> SweepScore:
    """A uniformly random depth among the swept ones: expected hit rate and regret (tau and rho: 0)."""
    depths = sweep.depths
    if not depths:
        return SweepScore(None, None, math.nan, math.nan, math.nan, math.nan)
    best_val = max(sweep.val[k] for k in depths)
    best_test = max(sweep.test[k] for k in depths)
    hit = sum(sweep.val[k] == best_val for k in depths) / len(depths)
    regret = float(np.mean([best_test - sweep.test[k] for k in depths]))
    return SweepScore(None, pick(sweep.val, depths), 0.0, 0.0, float(hit), regret)


@dataclass(frozen=True)
class SignalSummary:
    """A signal over every sweep: means and, for regret, an interval over sweeps."""

    sweeps: int
    tau: float
    rho: float
    hit_rate: float
    regret: float
    regret_low: float
    regret_high: float
    chosen: str


def summarise(scores: Sequence[SweepScore], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> SignalSummary:
    """Mean tau, rho, hit rate and regret over sweeps; regret's 95% percentile interval over sweeps.

    With one sweep the interval is that sweep's regret alone.
    """
    usable = [score for score in scores if not math.isnan(score.regret)]
    if not usable:
        return SignalSummary(0, *(math.nan,) * 6, "")
    regrets = np.array([score.regret for score in usable])
    draws = resample_counts(np.random.default_rng(seed), len(regrets), resamples) @ regrets / len(regrets)
    low, high = percentile_interval(draws)
    chosen = sorted({score.chosen for score in usable if score.chosen is not None})
    return SignalSummary(
        sweeps=len(usable),
        tau=_nanmean([score.tau for score in usable]),
        rho=_nanmean([score.rho for score in usable]),
        hit_rate=float(np.mean([score.hit for score in usable])),
        regret=float(regrets.mean()),
        regret_low=float(low),
        regret_high=float(high),
        chosen=", ".join(map(str, chosen)),
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return float(np.mean(finite)) if finite else math.nan
