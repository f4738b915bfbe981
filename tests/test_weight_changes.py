"""Accumulated weight change: known answers by hand, Keras integration, store robustness."""

from __future__ import annotations

import textwrap
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from helpers.models import resumable_setup, weight_change_stack
from helpers.workflow import run_python

from layerscope.core.blocks import block_label
from layerscope.core.errors import LayerscopeError
from layerscope.weights.recorder import WeightChangeRecorder, recorded_layer_names
from layerscope.weights.store import WeightChangeStore, partial_path, snapshot_group

LAYERS = ["c1", "block1_conv1", "fc1", "logits"]


def variables(model):
    return {
        layer.name: [v for v in (layer.kernel, layer.bias) if v is not None]
        for layer in model.layers
        if getattr(layer, "kernel", None) is not None
    }


class HandReference:
    """The accumulation computed by hand in float64 from the weights seen at each reading."""

    def __init__(self, model):
        self.model = model
        self.prev = self._weights()
        self.initial = self.prev
        self.acc = {name: [np.zeros_like(w) for w in ws] for name, ws in self.prev.items()}
        self.readings = []

    def _weights(self):
        return {name: [np.asarray(v, dtype=np.float64) for v in vs] for name, vs in variables(self.model).items()}

    def read(self, step, epoch, epoch_end):
        current = self._weights()
        record = {
            "step": step,
            "epoch": epoch,
            "epoch_end": epoch_end,
            "units": {},
            "period": {},
            "l1": {},
            "net": {},
        }
        for name, ws in current.items():
            deltas = [np.abs(w - p) for w, p in zip(ws, self.prev[name])]
            self.acc[name] = [a + d for a, d in zip(self.acc[name], deltas)]
            kernel, *bias = self.acc[name]
            record["units"][name] = kernel.reshape(-1, kernel.shape[-1]).sum(0) + (bias[0] if bias else 0)
            record["period"][name] = sum(d.sum() for d in deltas)
            record["l1"][name] = sum(np.abs(w).sum() for w in ws)
            net_kernel, *net_bias = [np.abs(w - w0) for w, w0 in zip(ws, self.initial[name])]
            record["net"][name] = net_kernel.reshape(-1, net_kernel.shape[-1]).sum(0) + (net_bias[0] if net_bias else 0)
        record["snapshot"] = {name: [a.copy() for a in accs] for name, accs in self.acc.items()}
        self.prev = current
        self.readings.append(record)


def drive(recorder, model, epochs, batches, reference, rng, period):
    """Play a training run through the callback hooks, changing trainable weights by hand."""
    recorder.set_model(model)
    recorder.on_train_begin()
    step = last = 0
    for epoch in range(epochs):
        recorder.on_epoch_begin(epoch)
        for batch in range(batches):
            for name, vs in variables(model).items():
                if name != "c1":
                    for v in vs:
                        v.assign(np.asarray(v) + rng.normal(0, 0.1, v.shape).astype("float32"))
            recorder.on_train_batch_end(batch)
            step += 1
            if step % period == 0:
                reference.read(step, epoch + 1, False)
                last = step
        recorder.on_epoch_end(epoch)
        if step > last:
            reference.read(step, epoch + 1, True)
            last = step
        else:
            reference.readings[-1]["epoch_end"] = True
    recorder.on_train_end()


@pytest.mark.parametrize("batches", [7, 6])  # 6: the epoch ends exactly on a reading
def test_accumulation_matches_hand_computation(tmp_path, batches):
    model = weight_change_stack()
    reference = HandReference(model)
    store_path = tmp_path / "run.h5"
    recorder = WeightChangeRecorder(
        store_path, period=3, run_id="tiny", snapshot_dtype="float32", provenance={"seed": 1}
    )
    drive(
        recorder,
        model,
        epochs=2,
        batches=batches,
        reference=reference,
        rng=np.random.default_rng(0),
        period=3,
    )

    store = WeightChangeStore(store_path, expected_layers=LAYERS)
    assert store.complete and store.run_id == "tiny" and store.period == 3
    assert store.provenance == {"seed": 1}
    assert not partial_path(store_path).exists()
    expected = reference.readings
    assert store.readings["step"].tolist() == [r["step"] for r in expected]
    assert store.readings["epoch"].tolist() == [r["epoch"] for r in expected]
    assert store.readings["epoch_end"].tolist() == [r["epoch_end"] for r in expected]
    steps = [3, 6, 7, 9, 12, 14] if batches == 7 else [3, 6, 9, 12]
    assert store.readings["step"].tolist() == steps

    summary = store.layer_summary().set_index(["reading", "layer"])
    for i, record in enumerate(expected):
        for name in LAYERS:
            np.testing.assert_allclose(store.unit_changes(name, i), record["units"][name], rtol=1e-5)
            net = store.unit_changes(name, i, mode="net")
            np.testing.assert_allclose(net, record["net"][name], rtol=1e-5, atol=1e-7)
            assert (net <= store.unit_changes(name, i) * (1 + 1e-5)).all()  # triangle inequality
            row = summary.loc[(i, name)]
            np.testing.assert_allclose(row["accumulated"], record["units"][name].sum(), rtol=1e-5)
            np.testing.assert_allclose(row["period_change"], record["period"][name], rtol=1e-5)
            np.testing.assert_allclose(row["net"], record["net"][name].sum(), rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(row["period_change_rel"], record["period"][name] / record["l1"][name], rtol=1e-5)
            np.testing.assert_allclose(
                row["accumulated_rel"], record["units"][name].sum() / record["l1"][name], rtol=1e-5
            )
    frozen = store.layer_summary().query("layer == 'c1'")
    assert (frozen["accumulated"] == 0).all() and (frozen["period_change"] == 0).all()
    assert (store.layer_summary().query("layer != 'c1'")["period_change"] > 0).all()

    epoch_ends = [i for i, r in enumerate(expected) if r["epoch_end"]]
    assert store.snapshot_readings == epoch_ends
    for i in epoch_ends:
        for name in LAYERS:
            kernel, *bias = expected[i]["snapshot"][name]
            np.testing.assert_allclose(store.snapshot(name, i), kernel, rtol=1e-5)
            if bias:
                np.testing.assert_allclose(store.snapshot(name, i, part="bias"), bias[0], rtol=1e-5)
    assert not store.snapshot("c1").any()
    with h5py.File(store_path) as handle:  # the frozen layer's snapshots take no space, nor its W_0
        assert sorted(handle["initial"]) == sorted(set(LAYERS) - {"c1"})
        assert all(handle[f"{snapshot_group(i)}/c1/kernel"].id.get_storage_size() == 0 for i in epoch_ends)
        assert handle[f"{snapshot_group(epoch_ends[-1])}/block1_conv1/kernel"].id.get_storage_size() > 0


def test_layer_table_and_blocks(tmp_path):
    model = weight_change_stack()
    recorder = WeightChangeRecorder(tmp_path / "run.h5", period=2, snapshot_readings="final")
    drive(recorder, model, 1, 4, HandReference(model), np.random.default_rng(1), period=2)
    store = WeightChangeStore(tmp_path / "run.h5")
    table = store.layers.set_index("name")
    assert list(table.index) == LAYERS == recorded_layer_names(model)
    assert table.loc["block1_conv1", "shape"] == (2, 2, 3, 4)
    assert table.loc["block1_conv1", "n_params"] == 2 * 2 * 3 * 4 + 4
    assert table.loc["fc1", "n_params"] == 36 * 3 and table.loc["fc1", "n_units"] == 3
    assert table["block"].tolist() == ["c1", "block1", "head", "head"]
    assert store.snapshot_readings == [1]  # only the final reading
    assert store.snapshot("fc1").dtype == np.float16
    with pytest.raises(LayerscopeError, match="no snapshot at reading 0"):
        store.snapshot("fc1", 0)
    with pytest.raises(LayerscopeError, match="no 'bias' snapshot"):
        store.snapshot("fc1", part="bias")


def test_block_of():
    assert block_label("block3_conv2") == "block3"
    assert block_label("block5_pool") == "block5"
    assert block_label("c3") == "c3"
    assert [block_label(n) for n in ("fc1", "fc2", "logits", "f6", "conv")] == ["head"] * 5


def test_fit_on_tail_records_whole_model_and_appends_across_fits(tmp_path):
    """The training stage fits only the tail on cached features; the recorder still covers the
    frozen front (zero change); a second fit (fine-tuning) continues the same store."""
    full = weight_change_stack()
    features = keras.Model(full.input, full.get_layer("flatten").output)
    tail_in = keras.Input(features.output.shape[1:])
    tail = keras.Model(tail_in, full.get_layer("logits")(full.get_layer("fc1")(tail_in)))
    tail.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5, 5, 2)).astype("float32")
    y = rng.normal(size=(40, 2)).astype("float32")
    cached = features.predict(x, verbose=0)
    path = tmp_path / "run.h5"
    recorder = WeightChangeRecorder(path, period=4, model=full, run_id="tail")
    tail.fit(cached, y, batch_size=4, epochs=2, callbacks=[recorder], verbose=0)

    store = WeightChangeStore(path, expected_layers=LAYERS)
    assert store.complete
    assert store.readings["step"].tolist() == [4, 8, 10, 12, 16, 20]
    assert store.readings["epoch_end"].tolist() == [False, False, True, False, False, True]
    summary = store.layer_summary()
    assert (summary.query("layer in ['c1', 'block1_conv1']")["accumulated"] == 0).all()
    assert (summary.query("layer in ['fc1', 'logits']")["period_change"] > 0).all()

    full.get_layer("block1_conv1").trainable = True
    unfrozen_at = np.asarray(full.get_layer("block1_conv1").kernel).copy()
    full.compile(keras.optimizers.SGD(0.01), "mse")
    full.fit(x, y, batch_size=8, epochs=1, callbacks=[recorder], verbose=0)
    again = WeightChangeStore(path)
    assert again.complete
    with h5py.File(path) as handle:  # W_0 of the layer the second fit unfroze: its weights when it began
        assert "c1" not in handle["initial"]
        np.testing.assert_array_equal(handle["initial/block1_conv1/kernel"][()], unfrozen_at)
    assert again.readings["step"].tolist()[6:] == [24, 25]
    after = again.layer_summary().query("reading == 7").set_index("layer")
    assert after.loc["c1", "accumulated"] == 0
    assert after.loc["block1_conv1", "accumulated"] > 0
    assert np.all(
        after.loc[["fc1", "logits"], "accumulated"].to_numpy()
        > summary.query("reading == 5").set_index("layer").loc[["fc1", "logits"], "accumulated"].to_numpy()
    )


CRASHING_RUN = """
import os, sys
import keras, numpy as np, tensorflow as tf
assert not tf.config.list_physical_devices("GPU"), "the test hides every GPU"
sys.path.insert(0, {tests!r})
from helpers.models import weight_change_stack
from layerscope.weights.recorder import WeightChangeRecorder

class Crash(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 6:
            os._exit(3)  # like a killed job: no cleanup, no on_train_end

model = weight_change_stack()
model.compile(keras.optimizers.SGD(0.1), "mse")
x = np.random.default_rng(0).normal(size=(40, 5, 5, 2)).astype("float32")
y = np.zeros((40, 2), "float32")
model.fit(x, y, batch_size=4, epochs=1, verbose=0,
          callbacks=[WeightChangeRecorder({path!r}, period=2, run_id="crashed"), Crash()])
"""


@pytest.mark.pipeline(minutes=1)  # a training child process
def test_interrupted_run_leaves_readable_incomplete_store(tmp_path):
    path = tmp_path / "run.h5"
    script = CRASHING_RUN.format(tests=str(Path(__file__).parent), path=str(path))
    result = run_python("-c", textwrap.dedent(script))
    assert result.returncode == 3, result.stderr
    assert not path.exists() and partial_path(path).exists()
    store = WeightChangeStore(path)
    assert not store.complete and store.run_id == "crashed"
    assert store.readings["step"].tolist() == [2, 4, 6]
    assert store.unit_changes("logits").shape == (2,)
    assert store.unit_changes("logits").sum() > 0
    assert len(store.layer_summary()) == 3 * len(LAYERS)
    assert store.snapshot_readings == []


def test_reader_rejects_foreign_files(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(LayerscopeError, match="notes.h5"):
        WeightChangeStore(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = 1
    with pytest.raises(LayerscopeError, match="other.h5 is not a weight-change store"):
        WeightChangeStore(other)
    with pytest.raises(LayerscopeError, match="missing.h5"):
        WeightChangeStore(tmp_path / "missing.h5")


def test_reader_checks_layout_and_indices(tmp_path):
    model = weight_change_stack()
    path = tmp_path / "run.h5"
    drive(WeightChangeRecorder(path, period=2), model, 1, 4, HandReference(model), np.random.default_rng(3), 2)
    with pytest.raises(LayerscopeError, match=r"run.h5 records another layer layout.*missing \['fc2'\]"):
        WeightChangeStore(path, expected_layers=LAYERS + ["fc2"])
    with pytest.raises(LayerscopeError, match="different order"):
        WeightChangeStore(path, expected_layers=LAYERS[::-1])
    store = WeightChangeStore(path)
    with pytest.raises(LayerscopeError, match="there is no reading 5"):
        store.unit_changes("fc1", 5)
    with pytest.raises(LayerscopeError, match="no layer 'fc9'"):
        store.unit_changes("fc9")
    np.testing.assert_array_equal(store.unit_changes("fc1", -1), store.unit_changes("fc1", 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"period": 0}, "period"),
        ({"period": 2.5}, "period"),
        ({"snapshot_readings": "often"}, "often"),
        ({"snapshot_dtype": "int8"}, "int8"),
    ],
)
def test_recorder_rejects_bad_settings(tmp_path, kwargs, match):
    with pytest.raises(LayerscopeError, match=match):
        WeightChangeRecorder(tmp_path / "x.h5", **{"period": 1, **kwargs})


RUN_UNTIL_KILLED = """
import os, sys
import keras, numpy as np, tensorflow as tf
assert not tf.config.list_physical_devices("GPU"), "the test hides every GPU"
sys.path.insert(0, {tests!r})
from helpers.models import resumable_setup
from layerscope.weights.recorder import WeightChangeRecorder

class SaveAndDie(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights({weights!r}.format(epoch=epoch + 1))
    def on_train_batch_end(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == 15:
            os._exit(3)

model, x, y = resumable_setup()
model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
          callbacks=[WeightChangeRecorder({path!r}, period=3, run_id="resumed"), SaveAndDie()])
"""


@pytest.mark.pipeline(minutes=1)  # a training child process
def test_resumed_training_continues_the_interrupted_store_exactly(tmp_path):
    model, x, y = resumable_setup()
    reference = tmp_path / "reference.h5"
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[WeightChangeRecorder(reference, period=3, run_id="reference")],
    )

    path, weights = tmp_path / "run.h5", str(tmp_path / "epoch{epoch}.weights.h5")
    script = RUN_UNTIL_KILLED.format(tests=str(Path(__file__).parent), path=str(path), weights=weights)
    killed = run_python("-c", script)
    assert killed.returncode == 3, killed.stderr
    assert WeightChangeStore(path).readings["step"].tolist() == [3, 6, 9, 10, 12, 15]

    model, x, y = resumable_setup()
    model.load_weights(weights.format(epoch=1))
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        initial_epoch=1,
        shuffle=False,
        verbose=0,
        callbacks=[WeightChangeRecorder(path, period=3, run_id="resumed")],
    )
    resumed, expected = WeightChangeStore(path), WeightChangeStore(reference)
    assert resumed.complete and not partial_path(path).exists()
    assert not any(p.name.endswith(".resume.npz") for p in tmp_path.iterdir())
    assert resumed.readings.equals(expected.readings)
    assert resumed.snapshot_readings == expected.snapshot_readings == [3, 7, 11]
    columns = ["accumulated", "period_change", "weight_l1", "net"]
    np.testing.assert_allclose(resumed.layer_summary()[columns], expected.layer_summary()[columns], rtol=1e-5)
    for name in LAYERS:
        np.testing.assert_allclose(
            resumed.unit_changes(name, mode="net"), expected.unit_changes(name, mode="net"), rtol=1e-5
        )
        np.testing.assert_allclose(resumed.snapshot(name), expected.snapshot(name), rtol=1e-3)


def test_resume_without_a_store_starts_a_new_one_at_the_right_step(tmp_path, caplog):
    model, x, y = resumable_setup()
    path = tmp_path / "run.h5"
    with caplog.at_level("WARNING", logger="layerscope.weights.recorder"):
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            initial_epoch=1,
            shuffle=False,
            verbose=0,
            callbacks=[WeightChangeRecorder(path, period=3)],
        )
    assert "no weight-change store to resume at epoch 2" in caplog.text
    assert WeightChangeStore(path).readings["step"].tolist() == [12, 15, 18, 20]


def test_rendered_values_of_a_hand_built_layer(tmp_path):
    """Dense 2 -> 3 with bias (3 parameters per unit), weights set by hand at two readings:
    accumulated = sum of |W_t - W_prev|, net = |W_2 - W_0|, per unit, divided by 3."""
    from layerscope.weights.render3d import unit_values

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))
    layer = model.get_layer("fc")
    layer.set_weights([np.zeros((2, 3)), np.zeros(3)])
    recorder = WeightChangeRecorder(tmp_path / "hand.h5", period=1, run_id="hand")
    recorder.set_model(model)
    recorder.on_train_begin()
    recorder.on_epoch_begin(0)
    layer.set_weights([np.array([[1.0, 0, -2], [0, 0, 1]]), np.array([0.0, 3, 0])])
    recorder.on_train_batch_end(0)
    layer.set_weights([np.array([[0.0, 0, -2], [0, 0, 1]]), np.array([0.0, 3, 3])])
    recorder.on_train_batch_end(1)
    recorder.on_epoch_end(0)
    recorder.on_train_end()
    store = WeightChangeStore(tmp_path / "hand.h5")
    np.testing.assert_allclose(store.unit_changes("fc"), [2, 3, 6])  # (1 + 1), 3, (2 + 1) + 3
    np.testing.assert_allclose(store.unit_changes("fc", mode="net"), [0, 3, 6])
    np.testing.assert_allclose(store.unit_changes("fc", reading=0, mode="net"), [1, 3, 3])
    np.testing.assert_allclose(unit_values(store)[0], [2 / 3, 1, 2])
    np.testing.assert_allclose(unit_values(store, mode="net")[0], [0, 1, 2])
    np.testing.assert_allclose(unit_values(store, per_param=False, mode="net")[0], [0, 3, 6])
