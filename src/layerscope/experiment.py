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

from layerscope.atomic import atomic_path, write_text
from layerscope.data.prepare import load_classes, load_split
from layerscope.errors import LayerscopeError
from layerscope.evaluation import classification_metrics, majority_baseline, predictions_table
from layerscope.models import lenet5, load_model, set_frozen_blocks, split_at_block, vgg16
from layerscope.optimizers import make_optimizer
from layerscope.runs import RunSpec
from layerscope.training import FitSettings, StepCheckpoints, clear_state, enable_determinism, fit
from layerscope.training_plots import plot_history
from layerscope.weight_changes import WeightChangeRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFiles:
    """Where one run writes, under ``results/<experiment>/runs/<run-id>/``."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def curves(self) -> Path:
        return self.root / "training_curves.png"

    @property
    def weight_changes(self) -> Path:
        return self.root / "weight_changes.h5"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def state(self) -> Path:
        """Resume state of an unfinished attempt (not a Snakemake output, so it survives a failure)."""
        return self.root / "resume"

    @property
    def pending_checkpoints(self) -> Path:
        """Step checkpoints of the current attempt; moved to :attr:`checkpoints` on success."""
        return self.state / "checkpoints"


def build_model(spec: RunSpec, input_shape: tuple[int, ...], num_classes: int, training: dict,
                start_from: Path | None = None) -> keras.Model:
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
        epochs, lr = training["epochs"][spec.family], training["learning_rate"][spec.optimizer]
    settings = FitSettings(
        epochs=epochs,
        batch_size=training["batch_size"],
        seed=seed,
        patience=training["early_stopping_patience"],
        class_weight=training["class_weight"],
        checkpoint_steps=tuple(training["checkpoint_steps"]),
    )
    return settings, lr


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable and frozen parameter counts of the full model."""
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    frozen = int(sum(np.prod(v.shape) for v in model.non_trainable_weights))
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


def train_run(
    spec: RunSpec,
    config: dict,
    data_dir: Path,
    files: RunFiles,
    start_from: Path | None = None,
    provenance: dict | None = None,
) -> dict:
    """Train one run and write its model, history, metrics, predictions, curves and
    accumulated weight changes (recorded on the full model, frozen layers included)."""
    training, seed = config["training"], config["seed"]
    enable_determinism(seed)
    if training["mixed_precision"]:
        keras.mixed_precision.set_global_policy(training["mixed_precision"])
    classes = load_classes(data_dir)
    splits = {name: load_split(data_dir, name) for name in ("train", "val", "test")}
    model = build_model(spec, splits["train"][0].shape[1:], len(classes), training, start_from)
    settings, learning_rate = fit_settings(spec, training, seed)

    cut = spec.freeze_blocks if (spec.freeze_blocks and training["cache_frozen_features"]) else 0
    fitted, inputs = model, {name: x for name, (x, _) in splits.items()}
    if cut:
        extractor, fitted = split_at_block(model, cut)
        started = time.perf_counter()
        inputs = {name: extractor.predict(x.astype(np.float32), batch_size=64, verbose=0)
                  for name, x in inputs.items()}
        log.info("cached block-%d features of %d images in %.1f s", cut,
                 sum(len(x) for x in inputs.values()), time.perf_counter() - started)
    fitted.compile(
        optimizer=make_optimizer(spec.optimizer, learning_rate, training["momentum"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    recording = config["weight_changes"]
    callbacks = [
        StepCheckpoints(model, files.pending_checkpoints, settings.checkpoint_steps),
        WeightChangeRecorder(
            files.weight_changes,
            period=recording["period"],
            snapshot_readings=recording["snapshots"],
            model=model,
            run_id=spec.run_id,
            provenance=provenance,
        ),
    ]
    files.pending_checkpoints.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history, stop_reason = fit(
        fitted,
        (inputs["train"], splits["train"][1]),
        (inputs["val"], splits["val"][1]),
        settings,
        len(classes),
        files.state,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - started

    probabilities = {
        name: np.asarray(fitted.predict(x.astype(np.float32), batch_size=64, verbose=0), dtype=np.float64)
        for name, x in inputs.items()
    }
    metrics = {
        "run_id": spec.run_id,
        "spec": spec.__dict__,
        "learning_rate": learning_rate,
        "epochs_run": int(len(history)),
        "stopped_early": stop_reason == "early_stopping",
        "diverged": stop_reason == "diverged",
        "train_seconds": round(seconds, 2),
        "cached_frozen_blocks": cut,
        "parameters": parameter_counts(model),
        **{name: classification_metrics(splits[name][1], p, classes) for name, p in probabilities.items()},
        "majority_baseline": majority_baseline(splits["train"][1], splits["test"][1], len(classes)),
    }
    metrics["beats_majority"] = {
        key: metrics["test"][key] > metrics["majority_baseline"][key] for key in ("accuracy", "f1_weighted")
    }
    _write_outputs(files, model, history, metrics, splits["test"][1], probabilities["test"], data_dir, classes)
    clear_state(files.state)
    log.info("%s: test accuracy %.3f, weighted F1 %.3f (majority baseline %.3f)", spec.run_id,
             metrics["test"]["accuracy"], metrics["test"]["f1_weighted"], metrics["majority_baseline"]["accuracy"])
    return metrics


def _write_outputs(files: RunFiles, model, history: pd.DataFrame, metrics: dict, y_test: np.ndarray,
                   test_probs: np.ndarray, data_dir: Path, classes: list[str]) -> None:
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
    shutil.rmtree(files.checkpoints, ignore_errors=True)
    files.pending_checkpoints.rename(files.checkpoints)
