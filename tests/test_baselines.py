"""The linear-probe baselines: on hand-built features, and on each VGG-16 block's pooled features."""

import numpy as np
import pytest
from helpers.images import prepared_tiny_folder
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from layerscope.data.prepare import load_split
from layerscope.train.features import frozen_extractor
from layerscope.train.probe import (
    BLOCK_PROBE_COLUMNS,
    PROBE_C_GRID,
    block_pooled_features,
    block_probe_table,
    fit_probe,
    pooled_features,
)


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


def test_every_block_probe_reads_the_same_features_as_the_cache(tmp_path):
    data_dir = prepared_tiny_folder(tmp_path, seed=51)
    splits = {name: load_split(data_dir, name) for name in ("train", "val", "test")}
    pooled = block_pooled_features({name: x for name, (x, _) in splits.items()}, "hed-bsds500")
    assert [pooled[k]["val"].shape[1] for k in range(1, 6)] == [128, 256, 512, 1024, 1024]
    val_images = splits["val"][0].astype("float32")
    for k, channels in enumerate((64, 128, 256, 512, 512), start=1):  # the cut after block k, by VGG-16's layout
        side = 32 // 2**k
        assert tuple(frozen_extractor((32, 32, 3), k, "hed-bsds500").output.shape) == (None, side, side, channels)
    for k in (2, 5):  # the multi-output pass equals the cut the feature cache makes
        maps = frozen_extractor(val_images.shape[1:], k, "hed-bsds500").predict(val_images)
        np.testing.assert_allclose(pooled[k]["val"], pooled_features(maps), rtol=1e-4, atol=1e-4)
    table = block_probe_table(data_dir, "hed-bsds500", "none", seed=0).set_index("block")
    assert list(table.reset_index().columns) == BLOCK_PROBE_COLUMNS and table.index.tolist() == [1, 2, 3, 4, 5]
    (_, y_train), (_, y_val) = splits["train"], splits["val"]
    for k in range(1, 6):  # scikit-learn's own probe per C, its validation accuracy counted by hand
        accuracy = {}
        for c in PROBE_C_GRID:
            reference = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, random_state=0))
            reference.fit(pooled[k]["train"], y_train)
            accuracy[c] = float(np.mean(reference.predict(pooled[k]["val"]) == y_val))
        best = max(accuracy.values())
        chosen = min(c for c in PROBE_C_GRID if accuracy[c] == best)  # ties: the stronger regularisation
        assert (table.loc[k, "C"], table.loc[k, "val_accuracy"]) == (chosen, pytest.approx(best)), k
