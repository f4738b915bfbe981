"""The fit loop: seeded per-epoch shuffling, resumable epochs, early stopping, step checkpoints.

It wraps plain ``model.fit`` (Keras progress bars, Keras optimizers); what it adds
is state that survives a killed job: after every epoch the weights, optimizer,
RNG and history are saved, and a rerun continues from there with the same result
as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from layerscope.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """How one run trains."""

    epochs: int
    batch_size: int
    seed: int
    patience: int | None = None
    class_weight: str = "balanced"
    checkpoint_steps: tuple[int, ...] = ()


def enable_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def set_threads(threads: int) -> None:
    """Keep TensorFlow to the cores Snakemake gave the job (call before any op runs)."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))


def sample_weights(y: np.ndarray, num_classes: int, mode: str) -> np.ndarray:
    """Per-sample weights: ``balanced`` inverse class frequency, or ``none`` (all ones)."""
    if mode == "none":
        return np.ones(len(y), dtype=np.float32)
    present = np.unique(y)
    weights = np.ones(num_classes, dtype=np.float32)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return weights[y]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a function of (seed, epoch) only, so resuming repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def training_dataset(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, batch_size: int, seed: int, first_epoch: int, epochs: int
) -> tf.data.Dataset:
    """Batches for epochs ``first_epoch .. epochs-1``, shuffled per epoch by :func:`epoch_order`."""

    def batches():
        for epoch in range(first_epoch, epochs):
            order = epoch_order(len(x), seed, epoch)
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                yield x[idx].astype(np.float32), y[idx], weights[idx]

    signature = (
        tf.TensorSpec((None, *x.shape[1:]), tf.float32),
        tf.TensorSpec((None,), tf.int64),
        tf.TensorSpec((None,), tf.float32),
    )
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


class ResumableEpochs(keras.callbacks.Callback):
    """Per-epoch history, early stopping on val_loss, and the state a rerun resumes from.

    ``directory`` holds ``last.weights.h5`` (weights and optimizer), ``best.weights.h5``,
    ``rng.npz`` (dropout seed states) and ``state.json``,
    written last, so a state file always describes complete weights.
    """

    def __init__(self, directory: Path, patience: int | None):
        super().__init__()
        self.directory = Path(directory)
        self.patience = patience
        self.history: list[dict] = []
        self.best = np.inf
        self.wait = 0
        self.stop_reason: str | None = None  # "early_stopping" or "diverged"
        self._start = 0.0

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    def _rng_variables(self) -> list[tf.Variable]:
        return [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]

    def restore(self) -> int:
        """Load the saved state into the model; returns the first epoch still to run."""
        if not self.state_file.is_file():
            return 0
        state = json.loads(self.state_file.read_text())
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.directory / "last.weights.h5")
        with np.load(self.directory / "rng.npz") as saved:
            for i, variable in enumerate(self._rng_variables()):
                variable.assign(saved[f"v{i}"])
        self.history, self.best, self.wait = state["history"], state["best"], state["wait"]
        self.stop_reason = state["stop_reason"]
        log.info("resuming from the end of epoch %d (%s)", state["epoch"] + 1, self.directory)
        return state["epoch"] + 1

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1}
        row.update({key: float(logs[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs})
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.history.append(row)
        monitored = logs.get("val_loss", logs.get("loss"))
        if not np.isfinite(logs.get("loss", np.nan)):
            self.model.stop_training = True
            self.stop_reason = "diverged"
            log.warning("training diverged in epoch %d (loss is not finite): stopped", epoch + 1)
        elif monitored < self.best:
            self.best, self.wait = float(monitored), 0
            self._save_weights("best.weights.h5")
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.model.stop_training = True
                self.stop_reason = "early_stopping"
                log.info("early stopping after epoch %d: val_loss has not improved for %d epochs", epoch + 1, self.wait)
        self._save_weights("last.weights.h5")
        with atomic_path(self.directory / "rng.npz") as tmp:
            np.savez(tmp, **{f"v{i}": v.numpy() for i, v in enumerate(self._rng_variables())})
        state = {"epoch": epoch, "history": self.history, "best": self.best, "wait": self.wait,
                 "stop_reason": self.stop_reason}
        write_text(self.state_file, json.dumps(state, indent=1))

    def _save_weights(self, name: str) -> None:
        with atomic_path(self.directory / name) as tmp:
            self.model.save_weights(tmp)


class StepCheckpoints(keras.callbacks.Callback):
    """Saves the full model's weights at the listed global training steps (feature-onset study)."""

    def __init__(self, model: keras.Model, directory: Path, steps: Sequence[int]):
        super().__init__()
        self.full_model = model
        self.directory = Path(directory)
        self.steps = set(steps)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self.params["steps"] + batch + 1
        if step in self.steps:
            with atomic_path(self.directory / f"step_{step:06d}.weights.h5") as tmp:
                self.full_model.save_weights(tmp)


def fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    settings: FitSettings,
    num_classes: int,
    state_dir: Path,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> tuple[pd.DataFrame, str | None]:
    """Train a compiled ``model``; resume from ``state_dir`` if a previous attempt left state there.

    Returns the per-epoch history and what ended training early (None, "early_stopping"
    or "diverged": a non-finite loss). The model ends with the weights of its best
    epoch (lowest val_loss).
    """
    x_train, y_train = train
    weights = sample_weights(y_train, num_classes, settings.class_weight)
    resumable = ResumableEpochs(state_dir, settings.patience)
    resumable.set_model(model)
    first_epoch = resumable.restore()
    if first_epoch < settings.epochs and resumable.stop_reason is None:
        steps = steps_per_epoch(len(x_train), settings.batch_size)
        data = training_dataset(x_train, y_train, weights, settings.batch_size, settings.seed, first_epoch,
                                settings.epochs)
        model.fit(
            data,
            epochs=settings.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            shuffle=False,  # the dataset is already shuffled, per epoch, by epoch_order
            validation_data=(val[0].astype(np.float32), val[1]),
            validation_batch_size=max(settings.batch_size, 64),
            callbacks=[resumable, *callbacks],
            verbose=verbose,
        )
    if (state_dir / "best.weights.h5").is_file():
        model.load_weights(state_dir / "best.weights.h5")
    return pd.DataFrame(resumable.history), resumable.stop_reason


def clear_state(state_dir: Path) -> None:
    """Remove resume state once a run's outputs are written."""
    shutil.rmtree(state_dir, ignore_errors=True)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be short)."""
    return int(np.ceil(n / batch_size))
