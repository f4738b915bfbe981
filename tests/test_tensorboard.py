"""TensorBoard events of a tiny training run: Keras' epoch scalars and the recorder's weight change."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import tensorflow as tf

from layerscope.train.fit import FitSettings, enable_determinism, fit
from layerscope.train.models import lenet5
from layerscope.train.optimizers import make_optimizer
from layerscope.train.tensorboard import tensorboard_callbacks
from layerscope.weights.recorder import WeightChangeRecorder
from layerscope.weights.store import WeightChangeStore


def read_events(folder):
    """{tag: [(step, value)]} of every event file under ``folder``."""
    found = defaultdict(list)
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found[value.tag].append((event.step, tf.make_ndarray(value.tensor)))
    return found


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    y = rng.integers(0, 3, 24)
    enable_determinism(0)
    model = lenet5((32, 32, 3), 3)
    model.compile(make_optimizer("sgd", 0.01, 0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = WeightChangeRecorder(root / "store.h5", period=2, run_id="tb")
    history, _ = fit(
        model,
        (x, y),
        (x[:8], y[:8]),
        FitSettings(epochs=2, batch_size=8, seed=0),
        3,
        root / "state",
        callbacks=[recorder, *tensorboard_callbacks(root / "tensorboard", recorder)],
        verbose=0,
    )
    return root, history


def test_epoch_scalars_match_the_history(trained):
    root, history = trained
    train = read_events(root / "tensorboard" / "train")
    validation = read_events(root / "tensorboard" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    assert [float(v) for _, v in train["epoch_loss"]] == pytest.approx(history["loss"].tolist(), rel=1e-5)
    assert [float(v) for _, v in validation["epoch_accuracy"]] == pytest.approx(
        history["val_accuracy"].tolist(), rel=1e-5
    )
    assert [float(v) for _, v in train["epoch_learning_rate"]] == pytest.approx([0.01, 0.01])


def test_weight_change_summaries_are_the_stores_epoch_end_readings(trained):
    root, _ = trained
    events = read_events(root / "tensorboard" / "weight_changes")
    store = WeightChangeStore(root / "store.h5")
    summary = store.layer_summary().set_index(["reading", "layer"])
    ends = store.readings.index[store.readings["epoch_end"]].tolist()
    assert len(ends) == 2 and len(store.layers) == 5
    for layer in store.layers.itertuples():
        for mode in ("accumulated", "net"):
            scalars = events[f"weight_change_{mode}/{layer.name}"]
            assert [step for step, _ in scalars] == [0, 1]
            expected = [summary.loc[(reading, layer.name), f"{mode}_rel"] for reading in ends]
            assert [float(value) for _, value in scalars] == pytest.approx(expected, rel=1e-5)
            assert all(value > 0 for value in expected)
        histograms = events[f"unit_change_per_weight/{layer.name}"]
        for (_, buckets), reading in zip(histograms, ends):
            # (left edge, right edge, count) rows: every unit counted, within the units' range
            per_weight = store.unit_changes(layer.name, reading) / (layer.n_params / layer.n_units)
            assert buckets[:, 2].sum() == layer.n_units
            assert buckets[0, 0] == pytest.approx(per_weight.min(), rel=1e-4)
            assert buckets[-1, 1] == pytest.approx(per_weight.max(), rel=1e-4)
