"""One training run end to end: build, train, evaluate, write the run's files.

Frozen VGG blocks whose output never changes (no augmentation) are computed once
per image and only the layers after them are fitted; the tail shares its layers
with the full model, so the saved model is the full network either way.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.provenance import sha256_file
from layerscope.core.timings import timings
from layerscope.data.prepare import load_classes, load_split
from layerscope.data.splits import SPLITS
from layerscope.train.evaluation import (
    classification_metrics,
    majority_baseline,
    predict_splits,
    predictions_table,
)
from layerscope.train.features import load_frozen_features
from layerscope.train.fit import (
    FitSettings,
    StepCheckpoints,
    check_batch_size,
    clear_state,
    discard_stale_state,
    enable_determinism,
    fingerprint_of,
    fit,
    link_or_copy,
    loaded_code_digest,
    publish,
)
from layerscope.train.health import run_health
from layerscope.train.models import lenet5, load_model, set_frozen_blocks, split_at_block, vgg16
from layerscope.train.optimizers import make_optimizer
from layerscope.train.plots import plot_history
from layerscope.train.precision import policy_name, use_policy
from layerscope.train.runs import RunSpec, cached_blocks, run_epochs, run_patience
from layerscope.train.tensorboard import tensorboard_callbacks
from layerscope.weights.recorder import WeightChangeRecorder, recorded_layer_names
from layerscope.weights.store import resume_path
from layerscope.weights.store_writer import WeightStoreWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFiles:
    """Where one run writes, under ``results/<experiment>/runs/<run-id>/``.

    Attributes:
        root: the run's folder; every path below is inside it.
    """

    root: Path

    @property
    def model(self) -> Path:
        """The trained full model (best-validation weights)."""
        return self.root / "model.keras"

    @property
    def history(self) -> Path:
        """Per-epoch loss, accuracy, learning rate and time."""
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        """Test, validation and training metrics with the majority baseline."""
        return self.root / "metrics.json"

    @property
    def predictions(self) -> Path:
        """Per test image: path, true and predicted class, probabilities."""
        return self.root / "predictions.csv"

    @property
    def curves(self) -> Path:
        """The training-curve figure."""
        return self.root / "training_curves.png"

    @property
    def weight_changes(self) -> Path:
        """The published weight-change store (study C)."""
        return self.root / "weight_changes.h5"

    @property
    def checkpoints(self) -> Path:
        """The published step checkpoints for the feature-onset study (study B)."""
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files, with ``training.tensorboard`` (a resumed run's begin at the resumed epoch)."""
        return self.root / "tensorboard"

    @property
    def state(self) -> Path:
        """Resume state of an unfinished attempt (not a Snakemake output, so it survives a failure)."""
        return self.root / "resume"

    @property
    def pending_weight_changes(self) -> Path:
        """The weight-change store while the run is unfinished, published to :attr:`weight_changes`.

        It is kept with the resume state, so a kill after the store is finished but before
        the outputs are written (Snakemake then deletes the outputs) loses nothing.
        """
        return self.state / "weight_changes.h5"

    @property
    def pending_checkpoints(self) -> Path:
        """Step checkpoints of the current attempt; moved to :attr:`checkpoints` on success."""
        return self.state / "checkpoints"


def build_model(
    spec: RunSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    training: dict,
    start_from: Path | None = None,
) -> keras.Model:
    """The untrained (or pretrained) model of a run; fine-tuning loads ``start_from``."""
    if spec.family == "lenet5":
        return lenet5(input_shape, num_classes, activation=spec.activation)
    if spec.family == "finetune":
        if start_from is None:
            raise LayerscopeError("fine-tuning needs the trained model of runs.finetune_from")
        model = load_model(start_from)
        set_frozen_blocks(model, 0)
        return model
    return vgg16(
        input_shape,
        num_classes,
        weights=training["weights"] if spec.pretrained else "none",
        freeze_blocks=spec.freeze_blocks,
        head=spec.head,
        dense_units=training["dense_units"],
        dropout=training["dropout"],
    )


def fit_settings(spec: RunSpec, training: dict, seed: int) -> tuple[FitSettings, float]:
    """Epochs, batch size, early stopping and learning rate of a run from the config."""
    if spec.family == "finetune":
        epochs, lr = training["finetune"]["epochs"], training["finetune"]["learning_rate"]
    else:
        epochs, lr = run_epochs(spec, training["epochs"]), training["learning_rate"][spec.optimizer]
    settings = FitSettings(
        epochs=epochs,
        batch_size=training["batch_size"],
        seed=seed,
        patience=run_patience(spec, training["early_stopping_patience"]),
        class_weight=training["class_weight"],
        checkpoint_ratio=training["checkpoint_ratio"],
    )
    return settings, lr


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable parameters, parameters of frozen layers, and the total.

    Batch-norm moving statistics are neither trainable nor frozen: they count in the total only.
    """
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    frozen = int(sum(np.prod(v.shape) for layer in model.layers if not layer.trainable for v in layer.weights))
    return {"trainable": trainable, "frozen": frozen, "total": int(model.count_params())}


def train_run(
    spec: RunSpec,
    data_dir: Path,
    files: RunFiles,
    *,
    training: dict,
    seed: int,
    recording: dict,
    start_from: Path | None = None,
    provenance: dict | None = None,
    features: Path | None = None,
    step_checkpoints: bool = True,
) -> dict:
    """Train one run and write its model, history, metrics, predictions, curves and weight changes.

    Weight changes are recorded on the full model, frozen layers included. A killed
    attempt resumes from ``files.state`` when nothing that shapes the run has changed.
    The steps: prepare the data and model (:func:`_prepare`), clear a stale attempt, fit
    with the recorder (:func:`_fit`), predict every split, score it (:func:`_scores`), write.

    Args:
        spec: the run, from the run grid (:func:`layerscope.train.runs.parse_run_id`).
        data_dir: the data stage's output folder.
        files: where the run writes.
        training: the ``training`` settings of this run
            (:func:`layerscope.train.runs.run_settings`); the run reads no other key.
        seed: the run's training seed (:func:`layerscope.train.runs.run_seed`).
        recording: the weight-change recording settings (``period``, ``snapshots``).
        start_from: the trained model fine-tuning starts from (only for finetune runs).
        provenance: provenance to stamp into the weight-change store.
        features: the shared cache of this run's frozen blocks (:mod:`layerscope.train.features`);
            without it a freeze run with ``cache_frozen_features`` computes them itself.
        step_checkpoints: save the weights at log-spaced steps for the feature-onset study
            (about 0.9 GB per VGG-16 run at 64 px); off, ``checkpoints/`` stays empty.

    Returns:
        The run's metrics, as written to ``files.metrics``.

    Raises:
        LayerscopeError: a finetune run without ``start_from``, or resume state that cannot be finished.
    """
    requested = training["mixed_precision"]
    enable_determinism(seed)
    precision = use_policy(requested)
    job = _prepare(spec, data_dir, training, seed, start_from, features)
    fingerprint = run_fingerprint(spec, training, seed, recording, data_dir, start_from, step_checkpoints)
    _clear_stale_attempt(files, fingerprint)  # before anything is written there
    callbacks = _callbacks(job, files, spec, recording, provenance, bool(training.get("tensorboard")), step_checkpoints)
    history, stop_reason, train_seconds = _fit(job, files, callbacks, fingerprint)
    probabilities, evaluation_seconds = _predict(job)
    metrics = {
        "run_id": spec.run_id,
        "spec": spec.__dict__,
        "learning_rate": job.learning_rate,
        "epochs_run": int(len(history)),
        "stopped_early": stop_reason == "early_stopping",
        "diverged": stop_reason == "diverged",
        # evaluation: the forward passes over every split, after training
        **timings(train_seconds=train_seconds, evaluation_seconds=evaluation_seconds),
        "precision": precision,
        "precision_requested": policy_name(requested),
        "cached_frozen_blocks": job.cut,
        "parameters": parameter_counts(job.model),
        **_scores(job, probabilities, history, stopped_early=stop_reason == "early_stopping"),
    }
    _warn_if_unhealthy(spec.run_id, metrics["health"], len(history))
    y_test, test_probabilities = job.splits["test"][1], probabilities["test"]
    _write_outputs(files, job.model, history, metrics, y_test, test_probabilities, data_dir, job.classes)
    clear_state(files.state)
    log.info(
        "%s: test accuracy %.3f, weighted F1 %.3f (majority baseline %.3f)",
        spec.run_id,
        metrics["test"]["accuracy"],
        metrics["test"]["f1_weighted"],
        metrics["majority_baseline"]["accuracy"],
    )
    return metrics


@dataclass(frozen=True)
class _Job:
    """A run ready to fit: its data, its model, and the part of the model that is fitted.

    Attributes:
        classes: the class names, index order.
        splits: ``(images, labels)`` per split.
        model: the full model (what is saved and recorded).
        fitted: what ``fit`` trains: the model, or its layers after the cached frozen blocks.
        inputs: what ``fitted`` reads per split: the images, or the cached blocks' features.
        cut: the number of frozen blocks computed once (0: none).
        settings: epochs, batch size, early stopping of the fit.
        learning_rate: the optimizer's learning rate.
    """

    classes: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    model: keras.Model
    fitted: keras.Model
    inputs: dict[str, np.ndarray]
    cut: int
    settings: FitSettings
    learning_rate: float


def _prepare(
    spec: RunSpec, data_dir: Path, training: dict, seed: int, start_from: Path | None, features: Path | None
) -> _Job:
    """Read the data, build the model, compute (or read) the frozen blocks' features, compile what is fitted."""
    classes = load_classes(data_dir)
    splits = {name: load_split(data_dir, name) for name in SPLITS}
    check_batch_size(training["batch_size"], len(splits["train"][1]))
    model = build_model(spec, splits["train"][0].shape[1:], len(classes), training, start_from)
    settings, learning_rate = fit_settings(spec, training, seed)
    cut = cached_blocks(spec, training)
    fitted, inputs = model, {name: x for name, (x, _) in splits.items()}
    if cut:
        extractor, fitted = split_at_block(model, cut)
        inputs = _frozen_features(extractor, cut, inputs, features, training)
    fitted.compile(
        optimizer=make_optimizer(spec.optimizer, learning_rate, training["momentum"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return _Job(classes, splits, model, fitted, inputs, cut, settings, learning_rate)


def _frozen_features(
    extractor: keras.Model, cut: int, images: dict[str, np.ndarray], features: Path | None, training: dict
) -> dict[str, np.ndarray]:
    """The output of the first ``cut`` frozen blocks per split: read from the shared cache, or computed here."""
    started = time.perf_counter()
    if features is not None:
        inputs = load_frozen_features(features, cut, training["weights"], training["mixed_precision"])
        log.info("read block-%d features from %s", cut, features)
        return inputs
    inputs = {name: extractor.predict(x.astype(np.float32), batch_size=64, verbose=0) for name, x in images.items()}
    log.info(
        "cached block-%d features of %d images in %.1f s",
        cut,
        sum(len(x) for x in inputs.values()),
        time.perf_counter() - started,
    )
    return inputs


def _clear_stale_attempt(files: RunFiles, fingerprint: str) -> None:
    """Discard resume state of another fingerprint and half-written temporaries of a killed attempt."""
    discard_stale_state(files.state, fingerprint)
    for leftover in files.root.glob(".*.tmp*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def _callbacks(
    job: _Job,
    files: RunFiles,
    spec: RunSpec,
    recording: dict,
    provenance: dict | None,
    tensorboard: bool,
    step_checkpoints: bool,
) -> list[keras.callbacks.Callback]:
    """Step checkpoints (for the onset study), the weight-change recorder and TensorBoard's writers."""
    callbacks = (
        [StepCheckpoints(job.model, files.pending_checkpoints, job.settings.checkpoint_ratio)]
        if step_checkpoints
        else []
    )
    recorder = WeightChangeRecorder(
        files.pending_weight_changes,
        period=recording["period"],
        snapshot_readings=recording["snapshots"],
        model=job.model,
        run_id=spec.run_id,
        provenance=provenance,
    )
    return [*callbacks, recorder, *(tensorboard_callbacks(files.tensorboard, recorder) if tensorboard else [])]


def _fit(
    job: _Job, files: RunFiles, callbacks: list[keras.callbacks.Callback], fingerprint: str
) -> tuple[pd.DataFrame, str | None, float]:
    """Fit (resuming from ``files.state`` where it can) and finish the weight-change store.

    Returns:
        The history, why training stopped, and the fit's seconds.
    """
    files.pending_checkpoints.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history, stop_reason = fit(
        job.fitted,
        (job.inputs["train"], job.splits["train"][1]),
        (job.inputs["val"], job.splits["val"][1]),
        job.settings,
        len(job.classes),
        files.state,
        callbacks=callbacks,
        fingerprint=fingerprint,
        resume_files=[resume_path(files.pending_weight_changes)],
    )
    seconds = time.perf_counter() - started
    _finish_interrupted_store(files.pending_weight_changes, job.model, len(history))
    return history, stop_reason, seconds


def _predict(job: _Job) -> tuple[dict[str, np.ndarray], float]:
    """Class probabilities of every split from the trained model, and the seconds it took."""
    started = time.perf_counter()
    probabilities = predict_splits(job.fitted, job.inputs)
    seconds = time.perf_counter() - started
    log.info(
        "predicted the %d images of the %d splits in %.1f s",
        sum(len(p) for p in probabilities.values()),
        len(probabilities),
        seconds,
    )
    return probabilities, seconds


def _scores(job: _Job, probabilities: dict[str, np.ndarray], history: pd.DataFrame, stopped_early: bool) -> dict:
    """Every split's classification figures, the majority baseline, whether the run beats it, and its health."""
    scores = {name: classification_metrics(job.splits[name][1], p, job.classes) for name, p in probabilities.items()}
    y_train, y_test = job.splits["train"][1], job.splits["test"][1]
    scores["majority_baseline"] = majority_baseline(y_train, y_test, len(job.classes), job.classes)
    scores["beats_majority"] = {
        key: scores["test"][key] > scores["majority_baseline"][key] for key in ("accuracy", "f1_weighted")
    }
    scores["health"] = run_health(
        history.to_dict("records"),
        probabilities["test"].argmax(axis=1),
        scores["test"]["accuracy"],
        scores["majority_baseline"]["accuracy"],
        stopped_early=stopped_early,
    )
    return scores


def _warn_if_unhealthy(run_id: str, health: dict, epochs: int) -> None:
    """Log a warning naming what is wrong with a run the health check flags."""
    if health["flags"]:
        log.warning(
            "%s is %s (best epoch %s of %d, %d distinct test predictions): the tables mark it",
            run_id,
            " and ".join(health["flags"]),
            health["best_epoch"],
            epochs,
            health["predicted_classes"],
        )


def _write_outputs(
    files: RunFiles,
    model,
    history: pd.DataFrame,
    metrics: dict,
    y_test: np.ndarray,
    test_probs: np.ndarray,
    data_dir: Path,
    classes: list[str],
) -> None:
    manifest = pd.read_csv(data_dir / "manifest.csv")
    test_paths = manifest.loc[manifest["split"] == "test", "path"].tolist()
    with atomic_path(files.predictions) as tmp:
        predictions_table(test_paths, y_test, test_probs, classes).to_csv(tmp, index=False)
    with atomic_path(files.history) as tmp:
        history.to_csv(tmp, index=False)
    plot_history(history, files.curves, title=metrics["run_id"])
    with atomic_path(files.model) as tmp:
        model.save(tmp)
    write_text(files.metrics, json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    # Copies (hard links), not moves: until clear_state the resume state still holds
    # everything, so a kill here reruns to the same outputs.
    publish(files.pending_weight_changes, files.weight_changes)
    files.pending_checkpoints.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(files.checkpoints, ignore_errors=True)
    tmp = files.root / ".checkpoints.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(files.pending_checkpoints, tmp, copy_function=link_or_copy)
    tmp.rename(files.checkpoints)


def run_fingerprint(
    spec: RunSpec,
    training: dict,
    seed: int,
    recording: dict,
    data_dir: Path,
    start_from: Path | None,
    step_checkpoints: bool = True,
) -> str:
    """Digest of everything that shapes a run; resume state of another fingerprint is discarded.

    That is its spec, the training settings that apply to it (and the content of a weights
    file named there), its seed, the weight-change recording, the prepared data, the start
    model of fine-tuning and the library code.
    """
    data = sorted(
        p
        for p in Path(data_dir).iterdir()
        if p.suffix in (".csv", ".json", ".npy") and p.name not in ("class_counts.csv", "provenance.json")
    )
    weights = training.get("weights")
    return fingerprint_of(
        spec=spec.__dict__,
        training=training,
        seed=seed,
        weights_file=sha256_file(weights) if weights and Path(weights).is_file() else None,
        recording=dict(recording),
        data={p.name: sha256_file(p) for p in data},
        start_from=sha256_file(start_from) if start_from else None,
        step_checkpoints=step_checkpoints,
        code=loaded_code_digest(),
    )


def _finish_interrupted_store(store: Path, model: keras.Model, epochs_done: int) -> None:
    """Finish a store whose run was killed after its last epoch was committed but before the store was.

    ``fit`` then has nothing left to run; this does what the recorder's ``on_train_end``
    would have done, from the accumulators saved at that epoch end.
    """
    if store.is_file() or epochs_done == 0:
        return
    resumed = WeightStoreWriter.resume(store, recorded_layer_names(model), epochs_done)
    if resumed is None:
        raise LayerscopeError(
            f"the resume state of {store.parent.parent.name} has no weight-change store to finish "
            f"({store}.partial); delete {store.parent} and rerun"
        )
    writer, _, accumulators = resumed
    last = writer.n_readings - 1
    if writer.has_snapshot(last):  # written after the commit, so a kill may have cut it short
        del writer._file[f"snapshots/r{last:06d}"]
    writer.write_snapshot(last, accumulators)
    writer.finish()
    log.info("finished the weight-change store of an interrupted run at reading %d (%s)", last, store)
