"""Bootstrap intervals, seed spread and the seed-image bootstrap against hand-computed answers."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from layerscope.core.bootstrap import (
    accuracy_and_weighted_f1,
    bootstrap_intervals,
    percentile_interval,
    resample_counts,
)
from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_and_sd, mean_sd_n
from layerscope.core.statistics import (
    SeedVariance,
    pooled_seed_variance,
    seed_image_bootstrap,
    seed_image_interval,
    spearman,
)

EXACT = SeedVariance(0.0, 1, 1)  # retraining moves nothing: the image bootstrap alone


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


def test_mean_and_sd_across_seeds():
    assert mean_and_sd([0.7, 0.8, 0.9]) == pytest.approx((0.8, 0.1))
    mean, sd = mean_and_sd([0.75])
    assert mean == 0.75 and math.isnan(sd)


def test_bootstrap_names_class_indices_outside_the_class_count():
    with pytest.raises(LayerscopeError, match=r"0\.\.2, got \[3\]"):
        bootstrap_intervals([0, 1, 2], [0, 3, 2], 3, seed=0)


def test_mean_sd_n_leaves_undefined_values_out():
    mean, sd, n = mean_sd_n([1.0, float("nan"), 3.0, 5.0])
    assert (mean, n) == (3.0, 3) and sd == pytest.approx(2.0)
    assert mean_sd_n([float("nan")])[2] == 0 and math.isnan(mean_sd_n([4.0])[1])


def test_seed_image_bootstrap_certain_win_and_tie():
    wins = seed_image_bootstrap(np.ones((2, 4)), np.zeros((3, 4)), EXACT, seed=0, resamples=999)
    assert (wins.difference, wins.low, wins.high) == (1.0, 1.0, 1.0)
    assert wins.p_value == pytest.approx(2 / 1000)  # the floor: no resample on the other side of 0
    assert (wins.seeds_a, wins.seeds_b, wins.images) == (2, 3, 4)
    same = np.array([[1, 0, 1, 1], [0, 0, 1, 1]])
    tie = seed_image_bootstrap(same, same, EXACT, seed=0, resamples=999)
    assert (tie.difference, tie.p_value) == (0.0, 1.0)


def test_seed_image_bootstrap_point_estimate_is_the_difference_of_seed_means():
    a = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])  # accuracies 0.5 and 0.25
    b = np.array([[0, 0, 0, 1]])  # 0.25
    test = seed_image_bootstrap(a, b, SeedVariance(0.01, 4, 2), seed=1)
    assert test.difference == pytest.approx(0.375 - 0.25)
    assert test.low < 0.125 < test.high and test.p_value > 0.05


@pytest.mark.parametrize(("df", "quantile"), [(2, 4.303), (10_000, 1.960)])  # t(0.975, df) from tables
def test_seed_image_bootstrap_training_noise_is_t_distributed_by_hand(df, quantile):
    # Both sides right on the same images: the image term is 0, so the difference is the
    # training noise alone, sd = sqrt(0.01 * (1/1 + 1/2)) = 0.1225, t-distributed with df.
    same = np.repeat([[1.0, 0.0, 1.0, 1.0]], 2, axis=0)
    test = seed_image_bootstrap(same[:1], same, SeedVariance(0.01, df, 3), seed=2, resamples=40000)
    half_width = quantile * math.sqrt(0.01 * 1.5)
    assert test.difference == 0.0
    assert test.low == pytest.approx(-half_width, rel=0.05) and test.high == pytest.approx(half_width, rel=0.05)
    assert test.p_value == pytest.approx(1.0, abs=0.02)


def test_seed_image_bootstrap_withholds_the_interval_without_a_measured_seed_variance():
    test = seed_image_bootstrap(np.ones((1, 5)), np.zeros((1, 5)), pooled_seed_variance([[0.7], [0.6]]), seed=0)
    assert test.difference == 1.0 and (test.seeds_a, test.seeds_b, test.images) == (1, 1, 5)
    assert math.isnan(test.low) and math.isnan(test.high) and math.isnan(test.p_value)


def test_pooled_seed_variance_by_hand():
    # cell 1: mean 0.75, squares 0.005 (1 df); cell 2: one seed, left out; cell 3: mean 0.7,
    # squares 0.06 (2 df, the NaN seed dropped): 0.065 / 3
    pooled = pooled_seed_variance([[0.7, 0.8], [0.5], [0.6, 0.6, 0.9, float("nan")]])
    assert (pooled.df, pooled.cells, pooled.measured) == (3, 2, True)
    assert pooled.variance == pytest.approx(0.065 / 3) and pooled.sd == pytest.approx(math.sqrt(0.065 / 3))
    unmeasured = pooled_seed_variance([[0.7], []])
    assert (unmeasured.df, unmeasured.cells, unmeasured.measured) == (0, 0, False) and math.isnan(unmeasured.sd)


def simulated_cells(cells: int, seeds: int, images: int, shift_sd: float, seed: int) -> np.ndarray:
    """0/1 correctness (cells, seeds, images): each seed's weights shift its accuracy by N(0, shift_sd)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random(images)
    skill = 0.7 + rng.normal(0, shift_sd, (cells, seeds, 1))
    return (difficulty + rng.normal(0, 0.1, (cells, seeds, images)) < skill).astype(np.float64)


def test_two_seeds_of_one_config_are_rarely_called_different():
    # The null case the cross-machine check found: one run of a config against another run
    # of the same config. Resampling images alone calls such pairs "different" far more
    # often than 5%; with the pooled seed variance added they stay near or under 5%.
    correct = simulated_cells(cells=12, seeds=3, images=400, shift_sd=0.03, seed=5)
    training = pooled_seed_variance(correct.mean(axis=2))
    pairs = [(c, i, j) for c in range(12) for i, j in ((0, 1), (0, 2), (1, 2))]

    def rejected(variance: SeedVariance) -> float:
        p_values = [seed_image_bootstrap(correct[c, i], correct[c, j], variance, c, 1000).p_value for c, i, j in pairs]
        return float(np.mean(np.array(p_values) < 0.05))

    assert training.df == 24 and training.sd == pytest.approx(0.03, rel=0.4)
    assert rejected(EXACT) > 0.3
    assert rejected(training) <= 0.1


def test_seed_image_interval_widens_with_the_training_variance_and_narrows_with_seeds():
    correct = simulated_cells(cells=1, seeds=4, images=300, shift_sd=0.0, seed=6)[0]
    training = SeedVariance(0.02**2, 1000, 9)
    images_only = seed_image_interval(correct[:1], EXACT, seed=0)
    one_seed, four_seeds = seed_image_interval(correct[:1], training, seed=0), seed_image_interval(correct, training, 0)
    width = {name: i.high - i.low for name, i in {"images": images_only, "1": one_seed, "4": four_seeds}.items()}
    # sd of the image term about sqrt(0.7 * 0.3 / 300) = 0.026; the training term adds 0.02 / sqrt(seeds)
    assert width["1"] == pytest.approx(2 * 1.96 * math.hypot(0.026, 0.02), rel=0.15)
    assert width["images"] < width["1"] and width["4"] < width["1"]
    assert width["4"] > seed_image_interval(correct, EXACT, seed=0).high - seed_image_interval(correct, EXACT, 0).low
    assert one_seed.estimate == images_only.estimate == pytest.approx(correct[0].mean())


def test_seed_image_bootstrap_rejects_unpaired_sides():
    with pytest.raises(LayerscopeError, match=r"same images, got \(1, 3\) and \(1, 4\)"):
        seed_image_bootstrap(np.ones((1, 3)), np.ones((1, 4)), EXACT, seed=0)


def test_resample_counts_draw_each_resample_n_times_and_percentiles_by_hand():
    counts = resample_counts(np.random.default_rng(0), 7, resamples=50)
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    # 0..100: the 2.5% and 97.5% quantiles (linear interpolation) are 2.5 and 97.5
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert percentile_interval(np.arange(101.0), confidence=0.5) == pytest.approx((25.0, 75.0))


@pytest.mark.parametrize(
    ("ours", "rho", "p"),
    [
        ([1, 2, 3, 4, 5], 1.0, 2 / 120),  # only the ordering itself and its reverse are as extreme
        ([2, 1, 3, 4, 5], 0.9, 10 / 120),  # rho >= 0.9: sum of squared rank gaps <= 2, 5 orderings each way
        ([5, 4, 3, 2, 1], -1.0, 2 / 120),
        ([0.3, 0.1, 0.2, 0.5, 0.4], 0.6, None),
    ],
)
def test_spearman_counts_every_ordering_of_five_cells(ours, rho, p):
    got_rho, got_p = spearman([0.1, 0.2, 0.3, 0.4, 0.5], ours)
    assert got_rho == pytest.approx(rho)
    if p is None:  # rho 0.6: sum of squared gaps <= 8 by brute force over the 120 orderings
        from itertools import permutations

        gaps = [sum((i - j) ** 2 for i, j in enumerate(order)) for order in permutations(range(5))]
        p = sum(g <= 8 or g >= 32 for g in gaps) / 120
    assert got_p == pytest.approx(p)


def test_spearman_above_nine_cells_is_scipys_approximation():
    from scipy.stats import spearmanr

    x, y = np.arange(12.0), np.array([1, 0, 2, 3, 5, 4, 6, 8, 7, 9, 11, 10.0])
    assert spearman(x, y) == pytest.approx((spearmanr(x, y).statistic, spearmanr(x, y).pvalue))
    assert all(math.isnan(v) for v in spearman([1, 2, 3], [0.5, 0.5, 0.5]))


def test_spearman_of_nine_cells_counts_9_factorial_orderings():
    _, p = spearman(np.arange(9.0), np.arange(9.0))
    assert p == pytest.approx(2 / math.factorial(9))
