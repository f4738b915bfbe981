"""The linear-probe baseline on hand-built features."""

import numpy as np
import pytest

from layerscope.train.probe import PROBE_C_GRID, fit_probe, pooled_features


def test_pooled_features_are_channel_mean_then_max():
    maps = np.zeros((1, 2, 2, 3), dtype=np.float32)
    maps[0, :, :, 0] = [[1, 2], [3, 6]]
    maps[0, 1, 1, 2] = -1
    features = pooled_features(maps)
    assert features.shape == (1, 6)
    np.testing.assert_allclose(features[0], [3, 0, -0.25, 6, 0, 0])


def separable(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 8))
    x[:, 0] += 4 * y  # class is readable from feature 0 only
    return x, y


def test_probe_learns_a_separable_problem_and_picks_c_on_validation():
    data = {split: separable(n, seed) for split, n, seed in (("train", 300, 0), ("val", 100, 1), ("test", 100, 2))}
    features = {split: x for split, (x, _) in data.items()}
    labels = {split: y for split, (_, y) in data.items()}
    probabilities, details = fit_probe(features, labels, "none", seed=0)
    assert probabilities["test"].shape == (100, 3)
    np.testing.assert_allclose(probabilities["test"].sum(axis=1), 1.0)
    assert (probabilities["test"].argmax(axis=1) == labels["test"]).mean() > 0.95
    assert details["C"] in PROBE_C_GRID
    assert details["val_accuracy_by_C"][str(details["C"])] == max(details["val_accuracy_by_C"].values())


def test_class_missing_from_training_gets_zero_probability():
    x, y = separable(200, 3)
    keep = y != 2
    features = {"train": x[keep], "val": x[keep][:20], "test": x}
    labels = {"train": y[keep], "val": y[keep][:20], "test": y}
    probabilities, _ = fit_probe(features, labels, "balanced", seed=0)
    assert probabilities["test"].shape == (200, 3)
    assert probabilities["test"][:, 2].max() == pytest.approx(0.0)
