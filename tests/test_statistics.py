"""Bootstrap intervals, McNemar's test and seed spread against hand-computed answers."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from layerscope.core.bootstrap import accuracy_and_weighted_f1, bootstrap_intervals
from layerscope.core.errors import LayerscopeError
from layerscope.core.statistics import (
    mcnemar,
    mean_and_sd,
    mean_sd_n,
    paired_difference_interval,
    seed_image_bootstrap,
)


def test_confusion_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    y_pred[:40] = 3  # class 3 over-predicted, so precision and recall differ
    confusion = np.zeros((4, 4))
    np.add.at(confusion, (y_true, y_pred), 1)
    accuracy, f1 = accuracy_and_weighted_f1(confusion)
    assert accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted"))


def test_weighted_f1_by_hand_with_a_class_never_predicted():
    # truth 0,0,1,1 ; predicted 0,0,0,1: F1_0 = 2*2/(2+3) = 0.8, F1_1 = 2*1/(2+1) = 2/3
    confusion = np.array([[2, 0], [1, 1]])
    accuracy, f1 = accuracy_and_weighted_f1(confusion)
    assert accuracy == pytest.approx(0.75)
    assert f1 == pytest.approx((0.8 * 2 + 2 / 3 * 2) / 4)


def test_bootstrap_of_a_perfect_classifier_is_a_point():
    y = np.arange(50) % 3
    intervals = bootstrap_intervals(y, y, 3, seed=1, resamples=200)
    assert intervals["accuracy"].low == intervals["accuracy"].high == 1.0
    assert intervals["f1_weighted"].estimate == 1.0


def test_bootstrap_interval_matches_the_binomial_standard_error():
    # 400 images, 320 right: the normal approximation gives 0.8 +- 1.96 * sqrt(0.8 * 0.2 / 400) = +-0.0392
    y_true = np.zeros(400, dtype=int)
    y_pred = np.where(np.arange(400) < 320, 0, 1)
    interval = bootstrap_intervals(y_true, y_pred, 2, seed=3)["accuracy"]
    assert interval.estimate == pytest.approx(0.8)
    assert interval.low == pytest.approx(0.8 - 0.0392, abs=0.008)
    assert interval.high == pytest.approx(0.8 + 0.0392, abs=0.008)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.integers(0, 4, 120), rng.integers(0, 4, 120)
    first = bootstrap_intervals(y_true, y_pred, 4, seed=9, resamples=300)
    assert first == bootstrap_intervals(y_true, y_pred, 4, seed=9, resamples=300)
    assert first != bootstrap_intervals(y_true, y_pred, 4, seed=10, resamples=300)


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


def test_mean_and_sd_across_seeds():
    assert mean_and_sd([0.7, 0.8, 0.9]) == pytest.approx((0.8, 0.1))
    mean, sd = mean_and_sd([0.75])
    assert mean == 0.75 and math.isnan(sd)


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


def test_bootstrap_names_class_indices_outside_the_class_count():
    with pytest.raises(LayerscopeError, match=r"0\.\.2, got \[3\]"):
        bootstrap_intervals([0, 1, 2], [0, 3, 2], 3, seed=0)


def test_mean_sd_n_leaves_undefined_values_out():
    mean, sd, n = mean_sd_n([1.0, float("nan"), 3.0, 5.0])
    assert (mean, n) == (3.0, 3) and sd == pytest.approx(2.0)
    assert mean_sd_n([float("nan")])[2] == 0 and math.isnan(mean_sd_n([4.0])[1])


def test_seed_image_bootstrap_certain_win_and_tie():
    wins = seed_image_bootstrap(np.ones((2, 4)), np.zeros((3, 4)), seed=0, resamples=999)
    assert (wins.difference, wins.low, wins.high) == (1.0, 1.0, 1.0)
    assert wins.p_value == pytest.approx(2 / 1000)  # the floor: no resample on the other side of 0
    assert (wins.seeds_a, wins.seeds_b, wins.images) == (2, 3, 4)
    same = np.array([[1, 0, 1, 1], [0, 0, 1, 1]])
    tie = seed_image_bootstrap(same, same, seed=0, resamples=999)
    assert (tie.difference, tie.p_value) == (0.0, 1.0)


def test_seed_image_bootstrap_point_estimate_is_the_difference_of_seed_means():
    a = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])  # accuracies 0.5 and 0.25
    b = np.array([[0, 0, 0, 1]])  # 0.25
    test = seed_image_bootstrap(a, b, seed=1)
    assert test.difference == pytest.approx(0.375 - 0.25)
    assert test.low < 0.125 < test.high and test.p_value > 0.05


def test_seed_image_bootstrap_seed_level_chance_by_hand():
    # Four seeds of A: two get every image right, two every image wrong; B always wrong.
    # A's resampled seed mean is Binomial(4, 1/2) / 4, so P(difference <= 0) = P(no good
    # seed drawn) = 1/16: p = 2/16, and the 95% interval is [0, 1] (each tail holds 1/16 > 2.5%).
    a = np.repeat([[1.0], [1.0], [0.0], [0.0]], 50, axis=1)
    test = seed_image_bootstrap(a, np.zeros((1, 50)), seed=2, resamples=20000)
    assert test.difference == 0.5
    assert test.p_value == pytest.approx(0.125, abs=0.01)
    assert (test.low, test.high) == (0.0, 1.0)


def test_seed_image_bootstrap_one_seed_each_is_the_paired_image_bootstrap():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 300)
    pred_a = np.where(rng.random(300) < 0.8, truth, 1 - truth)
    pred_b = np.where(rng.random(300) < 0.7, truth, 1 - truth)
    seeded = seed_image_bootstrap([pred_a == truth], [pred_b == truth], seed=4, resamples=4000)
    paired = paired_difference_interval(truth, pred_a, pred_b, seed=5, resamples=4000)
    assert seeded.difference == pytest.approx(paired.estimate)
    assert seeded.low == pytest.approx(paired.low, abs=0.012) and seeded.high == pytest.approx(paired.high, abs=0.012)


def test_seed_image_bootstrap_rejects_unpaired_sides():
    with pytest.raises(LayerscopeError, match=r"same images, got \(1, 3\) and \(1, 4\)"):
        seed_image_bootstrap(np.ones((1, 3)), np.ones((1, 4)), seed=0)
