"""The precision benchmark's paired tests (benchmarks/paired_comparison.py) against hand-computed answers."""

import numpy as np
import pytest
from paired_comparison import mcnemar, paired_difference_interval

from layerscope.core.errors import LayerscopeError
from layerscope.core.statistics import SeedVariance, seed_image_bootstrap

EXACT = SeedVariance(0.0, 1, 1)  # retraining moves nothing: the image bootstrap alone


def test_mcnemar_exact_p_value_by_hand():
    # A alone right on 1 image, B alone right on 5: p = 2 * P(X <= 1 | n=6, 1/2) = 2 * 7/64
    y_true = np.zeros(10, dtype=int)
    pred_a = np.array([0, 1, 1, 1, 1, 1, 0, 0, 0, 1])
    pred_b = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    result = mcnemar(y_true, pred_a, pred_b)
    assert (result.only_a_correct, result.only_b_correct) == (1, 5)
    assert result.p_value == pytest.approx(2 * 7 / 64)


def test_mcnemar_of_identical_predictions_is_one():
    y = np.array([0, 1, 2, 1])
    assert mcnemar(y, y, y).p_value == 1.0


def test_mismatched_lengths_name_the_shapes():
    with pytest.raises(LayerscopeError, match=r"\(3,\) and \(2,\)"):
        mcnemar([0, 1, 0], [0, 1, 0], [0, 1])


def test_paired_difference_of_identical_models_is_zero():
    y = np.array([0, 1, 1, 0, 2])
    interval = paired_difference_interval(y, y, y, seed=0, resamples=100)
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_paired_difference_by_hand():
    # A right on all 200, B wrong on 20: difference 0.1, sd of the mean sqrt(0.1 * 0.9 / 200) = 0.0212
    y = np.zeros(200, dtype=int)
    pred_b = np.where(np.arange(200) < 20, 1, 0)
    interval = paired_difference_interval(y, y, pred_b, seed=1)
    assert interval.estimate == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.1 - 1.96 * 0.0212, abs=0.01)
    assert interval.high == pytest.approx(0.1 + 1.96 * 0.0212, abs=0.01)


def test_seed_image_bootstrap_one_seed_each_without_training_noise_is_the_paired_image_bootstrap():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 300)
    pred_a = np.where(rng.random(300) < 0.8, truth, 1 - truth)
    pred_b = np.where(rng.random(300) < 0.7, truth, 1 - truth)
    seeded = seed_image_bootstrap([pred_a == truth], [pred_b == truth], EXACT, seed=4, resamples=4000)
    paired = paired_difference_interval(truth, pred_a, pred_b, seed=5, resamples=4000)
    assert seeded.difference == pytest.approx(paired.estimate)
    assert seeded.low == pytest.approx(paired.low, abs=0.012) and seeded.high == pytest.approx(paired.high, abs=0.012)
