"""Kendall's tau, hit rate and regret against hand-computed values on a tiny made-up sweep."""

import math

import pytest

from layerscope.results.model_selection import (
    Sweep,
    fixed_depth,
    pick,
    random_depth,
    score_signal,
    summarise,
)

A = Sweep("momentum-seed42", val={3: 0.70, 4: 0.75, 5: 0.72}, test={3: 0.68, 4: 0.74, 5: 0.71})
B = Sweep("momentum-seed43", val={3: 0.80, 4: 0.70, 5: 0.60}, test={3: 0.78, 4: 0.70, 5: 0.65})
# scores for depths 1..5; only the swept 3, 4, 5 count: 0.3, 0.5, 0.1
SIGNAL = {1: 0.9, 2: 0.8, 3: 0.3, 4: 0.5, 5: 0.1}


def test_signal_on_one_sweep_by_hand():
    score = score_signal(SIGNAL, A)
    assert (score.chosen, score.best, score.hit) == (4, 4, 1.0)
    assert score.regret == pytest.approx(0.0)
    # pairs (3,4) concordant, (3,5) discordant, (4,5) concordant: tau = (2 - 1) / 3
    assert score.tau == pytest.approx(1 / 3)
    # ranks signal [2, 3, 1], validation [1, 3, 2]: sum d^2 = 2, rho = 1 - 6 * 2 / (3 * 8)
    assert score.rho == pytest.approx(0.5)
    other = score_signal(SIGNAL, B)
    assert (other.chosen, other.best, other.hit) == (4, 3, 0.0)
    assert other.regret == pytest.approx(0.78 - 0.70) and other.tau == pytest.approx(1 / 3)


def test_baselines_by_hand():
    always3, deepest = score_signal(fixed_depth(3), A), score_signal(fixed_depth(5), A)
    assert (always3.chosen, always3.hit, always3.regret) == (3, 0.0, pytest.approx(0.06))
    assert (deepest.chosen, deepest.hit, deepest.regret) == (5, 0.0, pytest.approx(0.03))
    assert math.isnan(always3.tau)  # one scored depth: no ordering
    uniform = random_depth(A)
    assert uniform.hit == pytest.approx(1 / 3) and uniform.regret == pytest.approx((0.06 + 0 + 0.03) / 3)


def test_summary_over_sweeps():
    summary = summarise([score_signal(SIGNAL, A), score_signal(SIGNAL, B)])
    assert summary.sweeps == 2 and summary.chosen == "4"
    assert (summary.tau, summary.rho, summary.hit_rate) == (pytest.approx(1 / 3), pytest.approx(0.5), 0.5)
    assert summary.regret == pytest.approx(0.04)
    # means of two draws from {0, 0.08}: 0, 0.04 or 0.08; the 95% interval spans them
    assert (summary.regret_low, summary.regret_high) == (pytest.approx(0.0), pytest.approx(0.08))


def test_ties_pick_the_shallower_depth_and_unswept_depths_do_not_count():
    assert pick({3: 0.5, 4: 0.5}, [3, 4]) == 3
    assert pick({1: 1.0}, [3, 4, 5]) is None
    assert score_signal({1: 1.0}, A).chosen is None
    assert summarise([score_signal({1: 1.0}, A)]).sweeps == 0
