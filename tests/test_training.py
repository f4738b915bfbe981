"""Training loop invariants on tiny data: determinism, resume, frozen-feature cache."""

import json
import re

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from helpers.training import config, model_only

from layerscope.core.errors import LayerscopeError
from layerscope.train.fit import (
    FitSettings,
    StepCheckpoints,
    array_batches,
    discard_stale_state,
    enable_determinism,
    epoch_order,
    fit,
    sample_weights,
    training_dataset,
)
from layerscope.train.models import load_model
from layerscope.train.run import RunFiles, train_run
from layerscope.train.runs import job_settings, parse_run_id
from layerscope.train.stopping import early_stop
from layerscope.weights.store import WeightChangeStore


def tiny_model(seed: int) -> keras.Model:
    enable_determinism(seed)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def arrays(n=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 6, 6, 3)).astype(np.uint8), rng.integers(0, 3, n).astype(np.int64)


SETTINGS = FitSettings(epochs=4, batch_size=8, seed=11)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert np.array_equal(epoch_order(10, 1, 2), epoch_order(10, 1, 2))
    assert not np.array_equal(epoch_order(10, 1, 2), epoch_order(10, 1, 3))
    assert sorted(epoch_order(10, 1, 2)) == list(range(10))


def test_training_dataset_batches_each_epoch_in_its_order():
    x, y = arrays(20)
    weights = np.linspace(0.5, 2.0, 20).astype(np.float32)
    dataset = training_dataset(x, y, weights, batch_size=8, seed=5, first_epoch=1, epochs=3)
    assert dataset.options().autotune.enabled is False  # its thread held each job 30-60 s at the end of fit
    validation = array_batches((x, y), 16)
    assert validation.options().autotune.enabled is False
    assert [len(b[0]) for b in validation.as_numpy_iterator()] == [16, 4]
    batches = list(dataset.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [8, 8, 4, 8, 8, 4]  # the last batch of each epoch is short
    for epoch, chunk in zip((1, 2), (batches[:3], batches[3:]), strict=True):
        order = epoch_order(20, 5, epoch)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in chunk]), x[order].astype(np.float32))
        np.testing.assert_array_equal(np.concatenate([b[1] for b in chunk]), y[order])
        np.testing.assert_array_equal(np.concatenate([b[2] for b in chunk]), weights[order])
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


def test_balanced_sample_weights():
    w = sample_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    np.testing.assert_allclose(w, [4 / 6, 4 / 6, 4 / 6, 2.0])
    assert (sample_weights(np.array([0, 1]), 2, "none") == 1).all()


def test_same_seed_same_weights_and_history(tmp_path):
    x, y = arrays()
    runs = []
    for attempt in ("a", "b"):
        model = tiny_model(5)
        history, _ = fit(model, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / attempt, verbose=0)
        runs.append((weights_of(model), history.drop(columns="seconds")))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])


class Killed(Exception):
    pass


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def test_interrupted_fit_resumes_to_the_same_result(tmp_path):
    x, y = arrays()
    model = tiny_model(5)
    history, _ = fit(model, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / "whole", verbose=0)
    expected = weights_of(model)

    model = tiny_model(5)
    with pytest.raises(Killed):
        fit(model, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / "cut", callbacks=[KillAfter(1)], verbose=0)
    # killed in epoch 2's end, before the state commit (ResumableEpochs runs last): epoch 1 is the state
    assert json.loads((tmp_path / "cut/state.json").read_text())["epoch"] == 0
    model = tiny_model(99)  # a fresh process: different init, state comes from disk
    resumed, _ = fit(model, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / "cut", verbose=0)
    for a, b in zip(expected, weights_of(model)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert resumed["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed["loss"], history["loss"], atol=1e-6)


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    x, y = arrays()
    model = tiny_model(5)
    settings = FitSettings(epochs=30, batch_size=8, seed=1, patience=2)
    history, stopped = fit(model, (x, y), (x[:8], 2 - y[:8]), settings, 3, tmp_path, verbose=0)
    assert stopped and len(history) < 30
    best = history["val_loss"].min()
    assert history["val_loss"].iloc[-2:].min() > best  # the last `patience` epochs did not improve
    # the loop stopped where the rule, replayed over its history, says (the patience study relies on it)
    assert early_stop(history["val_loss"], 2) == (len(history), int(history["val_loss"].idxmin()) + 1)
    val_loss = model.evaluate(x[:8].astype(np.float32), 2 - y[:8], verbose=0)[0]
    assert val_loss == pytest.approx(best, rel=1e-5)


def test_train_run_writes_every_output(tmp_path, data_dir):
    files = RunFiles(tmp_path / "lenet")
    run_id = "lenet5-relu-adam"
    metrics = train_run(parse_run_id(run_id, config()["training"]), data_dir, files, **job_settings(run_id, config()))
    for path in (files.model, files.history, files.metrics, files.predictions, files.curves):
        assert path.is_file(), path
    names = sorted(p.name for p in files.checkpoints.iterdir())  # final_<last step>, then step_<step>
    last = int(names[0].split("_")[1].split(".")[0])
    assert names[0].startswith("final_") and last == WeightChangeStore(files.weight_changes).readings["step"].iloc[-1]
    assert [int(n.split("_")[1].split(".")[0]) for n in names[1:]] == [
        0,
        *StepCheckpoints.schedule(last)[:-1],
    ]
    assert not files.state.exists()
    history = pd.read_csv(files.history)
    assert history.columns.tolist() == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    ]
    assert len(history) == 2
    saved = json.loads(files.metrics.read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert set(saved) >= {"train", "val", "test", "parameters", "majority_baseline", "beats_majority"}
    assert saved["parameters"]["frozen"] == 0
    assert saved["train_seconds"] > 0 and saved["evaluation_seconds"] > 0
    assert "accuracy_ci" not in saved["test"]  # intervals are the tables' reading of predictions.csv
    assert len(saved["test"]["confusion_matrix"]) == 3
    predictions = pd.read_csv(files.predictions)
    assert len(predictions) == saved["test"]["n"] == 9
    np.testing.assert_allclose(predictions[["p_a", "p_b", "p_c"]].sum(axis=1), 1, atol=1e-4)


def test_frozen_feature_cache_trains_the_same_model(tmp_path, data_dir):
    spec = parse_run_id("vgg16-freeze3-sgd", config()["training"])
    results = {}
    for cache in (True, False):
        files = RunFiles(tmp_path / str(cache))
        settings = model_only(job_settings(spec.run_id, config(cache_frozen_features=cache)))
        metrics = train_run(spec, data_dir, files, **settings)
        results[cache] = (keras.models.load_model(files.model), metrics)
    assert results[True][1]["cached_frozen_blocks"] == 3 and results[False][1]["cached_frozen_blocks"] == 0
    for a, b in zip(results[True][0].get_weights(), results[False][0].get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-5)  # features computed in other batches round differently
    assert results[True][1]["parameters"] == results[False][1]["parameters"]
    assert results[True][1]["parameters"]["frozen"] == 1_735_488  # blocks 1-3 of VGG-16


def test_bad_weights_file_fails_before_training(tmp_path, data_dir):
    bad = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="block1_conv1")]).save_weights(bad)
    files = RunFiles(tmp_path / "run")
    with pytest.raises(LayerscopeError, match="other.weights.h5"):
        train_run(
            parse_run_id("vgg16-freeze3-sgd", config()["training"]),
            data_dir,
            files,
            **job_settings("vgg16-freeze3-sgd", config(weights=str(bad))),
        )
    assert not files.model.exists() and not files.state.exists()


def test_diverging_training_stops_and_says_so(tmp_path):
    x, y = arrays()
    model = tiny_model(5)
    model.compile(keras.optimizers.SGD(1e38), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history, reason = fit(
        model, (x, y), (x[:8], y[:8]), FitSettings(epochs=10, batch_size=8, seed=1), 3, tmp_path, verbose=0
    )
    assert reason == "diverged" and len(history) < 10


def test_changed_settings_discard_the_resume_state(tmp_path, caplog):
    """Kill, change the learning rate, rerun: the same result as a clean run at the new rate."""
    x, y = arrays()

    def model_with(lr, seed):
        model = tiny_model(seed)
        model.compile(keras.optimizers.SGD(lr, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    clean = model_with(0.02, 5)
    expected, _ = fit(clean, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / "clean", verbose=0, fingerprint="lr=0.02")
    killed = model_with(0.05, 5)
    with pytest.raises(Killed):
        fit(
            killed,
            (x, y),
            (x[:8], y[:8]),
            SETTINGS,
            3,
            tmp_path / "cut",
            callbacks=[KillAfter(2)],
            verbose=0,
            fingerprint="lr=0.05",
        )
    assert json.loads((tmp_path / "cut/state.json").read_text())["fingerprint"] == "lr=0.05"
    (tmp_path / "cut/weight_changes.h5.partial").write_bytes(b"a partial store of the old settings")
    rerun = model_with(0.02, 5)
    with caplog.at_level("WARNING"):
        history, _ = fit(rerun, (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path / "cut", verbose=0, fingerprint="lr=0.02")
    assert "discarding the resume state" in caplog.text and "fingerprint lr=0.05, this run lr=0.02" in caplog.text
    assert not (tmp_path / "cut/weight_changes.h5.partial").exists()
    np.testing.assert_allclose(history["learning_rate"], [0.02] * 4, rtol=1e-6)
    pd.testing.assert_frame_equal(history.drop(columns="seconds"), expected.drop(columns="seconds"))
    for a, b in zip(weights_of(clean), weights_of(rerun)):
        np.testing.assert_array_equal(a, b)


def test_damaged_resume_files_are_discarded_not_resumed(tmp_path, caplog):
    x, y = arrays()
    with pytest.raises(Killed):
        fit(tiny_model(5), (x, y), (x[:8], y[:8]), SETTINGS, 3, tmp_path, callbacks=[KillAfter(2)], verbose=0)
    state = json.loads((tmp_path / "state.json").read_text())
    assert sorted(state["files"]) == ["best", "last", "rng"] and state["files"]["last"] == "last-e0002.weights.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*state["files"].values(), "state.json"])
    (tmp_path / "store.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with caplog.at_level("WARNING"):
        assert discard_stale_state(tmp_path, "") == "store.h5.partial is unreadable"
    assert not tmp_path.exists() and "training starts from epoch 1" in caplog.text
    assert discard_stale_state(tmp_path, "") is None


def test_truncated_model_and_store_name_the_file_and_the_rerun(tmp_path):
    """Not Keras' "File not found" for a file that exists."""
    run_dir = tmp_path / "results/x/runs/lenet5-tanh-sgd"
    run_dir.mkdir(parents=True)
    model_file, store_file = run_dir / "model.keras", run_dir / "weight_changes.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(model_file)
    with h5py.File(store_file, "w") as handle:
        handle["units"] = np.arange(20_000, dtype=np.float64)
    for path in (model_file, store_file):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    hint = "rerun the training of lenet5-tanh-sgd: snakemake --forcerun {}"
    with pytest.raises(LayerscopeError, match=re.escape(f"{model_file} is not a readable Keras model")) as err:
        load_model(model_file)
    assert hint.format(model_file) in str(err.value)
    with pytest.raises(LayerscopeError, match=re.escape(f"{store_file} is not a readable HDF5")) as err:
        WeightChangeStore(store_file)
    assert hint.format(store_file) in str(err.value)
