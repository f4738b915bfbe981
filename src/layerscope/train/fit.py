"""The fit loop: seeded per-epoch shuffling, resumable epochs, early stopping, step checkpoints.

It wraps plain ``model.fit`` (Keras progress bars, Keras optimizers); what it adds
is state that survives a killed job: after every epoch the weights, optimizer,
RNG and history are saved, and a rerun continues from there with the same result
as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.train.stopping import stopping_step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """How one run trains."""

    epochs: int
    batch_size: int
    seed: int
    patience: int | None = None
    class_weight: str = "balanced"
    checkpoint_ratio: float = 1.5


def check_batch_size(batch_size: int, n_train: int) -> None:
    """Refuse a batch larger than the training split, which would train on one short batch per epoch.

    The split's size is first known once the data stage has run, so each training job
    checks it before it builds anything.

    Raises:
        LayerscopeError: ``batch_size`` exceeds ``n_train``, naming ``training.batch_size``.
    """
    if batch_size > n_train:
        raise LayerscopeError(
            f"training.batch_size {batch_size} is larger than the training split ({n_train} images): "
            f"set training.batch_size to at most {n_train}, or give the data stage more images "
            "(data.max_per_class, data.test_fraction, data.val_fraction)"
        )


def enable_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic.

    Args:
        seed: the run's seed.
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def set_threads(threads: int) -> None:
    """Keep TensorFlow to the cores Snakemake gave the job (call before any op runs).

    Args:
        threads: the job's core count.
    """
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
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
) -> tf.data.Dataset:
    """Batches for epochs ``first_epoch .. epochs-1``, shuffled per epoch by :func:`epoch_order`.

    A generator reads one batch at a time, so a frozen-feature cache stays memory-mapped
    (a block-1 cache at paper scale is many GB). tf.data's autotuning is off:
    its thread held each long fit 30-60 s in the iterator's teardown (py-spy on real
    training jobs), and a fixed prefetch leaves it nothing to tune.
    """

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
    return untuned(tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2))


def array_batches(arrays: tuple[np.ndarray, ...], batch_size: int) -> tf.data.Dataset:
    """In-memory arrays in order, in batches, for validation and prediction, untuned (see :func:`untuned`).

    Keras builds the same batches from NumPy arrays, but with autotuning on, and every
    such dataset's teardown waited for the tuning thread.
    """
    return untuned(tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size))


def untuned(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's autotuning off: its thread held iterator teardowns for up to a minute."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


class ResumableEpochs(keras.callbacks.Callback):
    """Per-epoch history, early stopping on val_loss, and the state a rerun resumes from.

    After every epoch it writes, under names carrying the epoch, the weights with the
    optimizer (``last-eNNNN.weights.h5``), the best weights, the dropout RNG state and
    hard links to ``resume_files`` (what other callbacks resume from, e.g. the
    weight-change store's accumulators), then commits them all at once by replacing
    ``state.json``, and only then removes the previous epoch's files. A kill at any
    instant leaves a ``state.json`` that names complete files of one epoch. The state
    carries the ``fingerprint`` of what shaped the run; state of another fingerprint is
    never resumed (see :func:`discard_stale_state`). Run it after the other callbacks
    so their per-epoch files exist when it commits.

    Args:
        directory: the run's resume-state folder.
        patience: epochs without a val_loss improvement before stopping (None: never stop early).
        fingerprint: digest of what shaped the run; only state with the same one is resumed.
        resume_files: files other callbacks resume from, kept per epoch with the state.
    """

    def __init__(self, directory: Path, patience: int | None, fingerprint: str = "", resume_files: Sequence[Path] = ()):
        """Start with no history; :meth:`restore` loads any committed state."""
        super().__init__()
        self.directory = Path(directory)
        self.patience = patience
        self.fingerprint = fingerprint
        self.resume_files = [Path(p) for p in resume_files]
        self.history: list[dict] = []
        self.best = np.inf
        self.wait = 0
        self.stop_reason: str | None = None  # "early_stopping" or "diverged"
        self._start = 0.0
        self._files: dict[str, str] = {}  # role -> file name of the committed state

    @property
    def state_file(self) -> Path:
        """The commit point: replacing it commits one epoch's files at once."""
        return self.directory / "state.json"

    @property
    def best_weights(self) -> Path | None:
        """The committed best weights, if any epoch improved."""
        name = self._files.get("best")
        return self.directory / name if name else None

    def _rng_variables(self) -> list[tf.Variable]:
        return [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]

    def restore(self) -> int:
        """Load the saved state into the model; returns the first epoch still to run."""
        if not self.state_file.is_file():
            return 0
        state = json.loads(self.state_file.read_text())
        if state.get("fingerprint") != self.fingerprint:
            discard_stale_state(self.directory, self.fingerprint)
            return 0
        self._files = state["files"]
        self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.directory / self._files["last"])
        with np.load(self.directory / self._files["rng"]) as saved:
            for i, variable in enumerate(self._rng_variables()):
                variable.assign(saved[f"v{i}"])
        for i, target in enumerate(self.resume_files):
            if (kept := self._files.get(f"resume{i}")) is not None:
                publish(self.directory / kept, target)
        self.history, self.best, self.wait = state["history"], state["best"], state["wait"]
        self.stop_reason = state["stop_reason"]
        log.info("resuming from the end of epoch %d (%s)", state["epoch"] + 1, self.directory)
        return state["epoch"] + 1

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock, for the history's ``seconds`` column."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch, decide on stopping, save its state and commit it via ``state.json``."""
        logs = dict(logs or {})
        row = {"epoch": epoch + 1}
        row.update({key: float(logs[key]) for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs})
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = round(time.perf_counter() - self._start, 3)
        self.history.append(row)
        files = dict(self._files)
        tag = f"e{epoch + 1:04d}"
        monitored = logs.get("val_loss", logs.get("loss"))
        diverged = not np.isfinite(logs.get("loss", np.nan))
        improved = False
        if diverged:
            self.model.stop_training = True
            self.stop_reason = "diverged"
            log.warning("training diverged in epoch %d (loss is not finite): stopped", epoch + 1)
        else:
            self.best, self.wait, stop = stopping_step(self.best, self.wait, float(monitored), self.patience)
            improved = self.wait == 0
            if stop:
                self.model.stop_training = True
                self.stop_reason = "early_stopping"
                log.info(
                    "early stopping after epoch %d: val_loss has not improved for %d epochs",
                    epoch + 1,
                    self.wait,
                )
        files["last"] = self._save_weights(f"last-{tag}.weights.h5")
        if improved:  # this epoch's weights: a link, not a second save
            files["best"] = f"best-{tag}.weights.h5"
            publish(self.directory / files["last"], self.directory / files["best"])
        files["rng"] = f"rng-{tag}.npz"
        with atomic_path(self.directory / files["rng"]) as tmp:
            np.savez(tmp, **{f"v{i}": v.numpy() for i, v in enumerate(self._rng_variables())})
        for i, source in enumerate(self.resume_files):
            if source.is_file():
                files[f"resume{i}"] = f"resume{i}-{tag}{''.join(source.suffixes)}"
                publish(source, self.directory / files[f"resume{i}"])
        state = {
            "epoch": epoch,
            "history": self.history,
            "best": self.best,
            "wait": self.wait,
            "stop_reason": self.stop_reason,
            "fingerprint": self.fingerprint,
            "files": files,
        }
        write_text(self.state_file, json.dumps(state, indent=1))  # the commit
        for name in set(self._files.values()) - set(files.values()):
            (self.directory / name).unlink(missing_ok=True)
        self._files = files

    def _save_weights(self, name: str) -> str:
        with atomic_path(self.directory / name) as tmp:
            self.model.save_weights(tmp)
        return name


def publish(source: Path, target: Path) -> None:
    """Make ``target`` a copy of ``source`` atomically (see :func:`link_or_copy`)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        link_or_copy(source, tmp)


def link_or_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A hard link where the filesystem allows, else a copy.

    A link copies no bytes, and every writer here replaces files rather than editing
    them, so linked names never change together.
    """
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def discard_stale_state(state_dir: Path, fingerprint: str) -> str | None:
    """Remove resume state a rerun must not continue from, and say why (logged, returned).

    Stale: made with another fingerprint (settings, data or code changed since the kill),
    unreadable, or holding an HDF5 file (weights, partial weight-change store) that no
    longer opens, as a kill in the middle of an HDF5 write can leave. A folder without
    ``state.json`` (killed during the first epoch) holds nothing to resume and is
    emptied too, so files of an older attempt never mix into this one.
    """
    state_dir = Path(state_dir)
    if not state_dir.exists():
        return None
    reason = None
    try:
        state = json.loads((state_dir / "state.json").read_text())
    except FileNotFoundError:
        reason = "no epoch was finished" if any(p.is_file() for p in state_dir.rglob("*")) else None
    except (OSError, ValueError) as err:
        reason = f"its state.json is unreadable ({err})"
    else:
        if state.get("fingerprint") != fingerprint:
            reason = (
                f"it was made with other settings, data or code (fingerprint {state.get('fingerprint')}, "
                f"this run {fingerprint})"
            )
        else:
            needed = [state_dir / name for name in state.get("files", {}).values()]
            needed += sorted(state_dir.rglob("*.h5.partial"))
            for path in needed:
                if not path.is_file():
                    reason = f"{path.name} is missing"
                elif path.name.endswith((".h5", ".h5.partial")) and not _hdf5_opens(path):
                    reason = f"{path.name} is unreadable"
                if reason:
                    break
    if reason:
        log.warning(
            "discarding the resume state in %s (partial weight-change store included): %s; "
            "training starts from epoch 1",
            state_dir,
            reason,
        )
        clear_state(state_dir)
    return reason


def _hdf5_opens(path: Path) -> bool:
    """Whether an HDF5 file opens and its object tree can be walked."""
    try:
        with h5py.File(path, "r") as handle:
            handle.visit(lambda name: None)
    except Exception:  # noqa: BLE001 (h5py raises OSError, KeyError, RuntimeError ... on damage)
        return False
    return True


class StepCheckpoints(keras.callbacks.Callback):
    """Full-model weights for the feature-onset study (study B, Kwak 2021) at log-spaced steps.

    The steps come from the run's planned length (epochs x steps per epoch, known at train
    begin) by :meth:`schedule`: step 0 (before any update), then each step at most
    ``ratio`` times the one before, so an onset read off them is placed within that factor
    for a run of any length. The end-of-training weights (the onset's reference; the
    model file keeps the best-validation weights instead) are ``final_<step>.weights.h5``,
    rewritten at every epoch end before the resume state commits, so an early-stopped or
    resumed run ends with the right one.

    Args:
        model: the full model whose weights are saved (not a sub-model being trained).
        directory: the run's checkpoint folder.
        ratio: the largest factor between successive checkpoint steps.

    Raises:
        LayerscopeError: ``ratio`` <= 1.
    """

    def __init__(self, model: keras.Model, directory: Path, ratio: float = 1.5):
        """Check the spacing; the steps are planned at train begin, when the run's length is known."""
        super().__init__()
        if not float(ratio) > 1.0:
            raise LayerscopeError(f"training.checkpoint_ratio must be > 1 (spacing of onset readings), got {ratio}")
        self.full_model = model
        self.directory = Path(directory)
        self.ratio = float(ratio)
        self.steps: frozenset[int] = frozenset()
        self._epoch = 0

    @staticmethod
    def schedule(last: int, ratio: float = 1.5) -> list[int]:
        """Steps 1..``last`` with each at most ``ratio`` times the previous one, ``last`` included.

        A step is the next integer when ``ratio`` times the previous does not reach it;
        [] when ``last`` < 1.
        """
        steps = [1] if last >= 1 else []
        while steps and steps[-1] < last:
            steps.append(min(int(last), max(steps[-1] + 1, math.floor(steps[-1] * ratio))))
        return steps

    def on_train_begin(self, logs=None):
        """Plan the checkpoint steps from the run's length (epochs x steps per epoch)."""
        planned = int(self.params["epochs"]) * int(self.params["steps"])
        self.steps = frozenset(self.schedule(planned, self.ratio)[:-1])  # the last one is the final

    def on_epoch_begin(self, epoch, logs=None):
        """Remember the epoch, to turn batch numbers into global steps."""
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        """Save step 0, the weights before any update."""
        if self._epoch == 0 and batch == 0:
            self._save(f"step_{0:06d}.weights.h5")

    def on_train_batch_end(self, batch, logs=None):
        """Save the weights when the global step is a planned one."""
        step = self._epoch * self.params["steps"] + batch + 1
        if step in self.steps:
            self._save(f"step_{step:06d}.weights.h5")

    def on_epoch_end(self, epoch, logs=None):
        """Rewrite the end-of-training weights, so the last finished epoch's are the final ones."""
        name = f"final_{(epoch + 1) * self.params['steps']:06d}.weights.h5"
        self._save(name)
        for old in self.directory.glob("final_*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _save(self, name: str) -> None:
        with atomic_path(self.directory / name) as tmp:
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
    fingerprint: str = "",
    resume_files: Sequence[Path] = (),
) -> tuple[pd.DataFrame, str | None]:
    """Train a compiled ``model``, resuming from ``state_dir`` if a previous attempt left state there.

    Only state with the same ``fingerprint`` is resumed; other state is discarded. The
    model ends with the weights of its best epoch (lowest val_loss).

    Args:
        model: a compiled Keras model.
        train: training images and integer labels.
        val: validation images and integer labels.
        settings: epochs, batch size, seed, patience and class weighting.
        num_classes: the class count, for balanced class weights.
        state_dir: the run's resume-state folder.
        callbacks: further Keras callbacks, run before the resume-state commit.
        verbose: Keras ``fit`` verbosity.
        fingerprint: a digest of everything that shapes the run (see :func:`fingerprint_of`).
        resume_files: files the ``callbacks`` resume from, kept per epoch with the state.

    Returns:
        ``(history, stop_reason)``: one row per epoch, and what ended training early (None,
        "early_stopping" or "diverged": a non-finite loss).
    """
    x_train, y_train = train
    weights = sample_weights(y_train, num_classes, settings.class_weight)
    discard_stale_state(state_dir, fingerprint)
    resumable = ResumableEpochs(state_dir, settings.patience, fingerprint, resume_files)
    resumable.set_model(model)
    first_epoch = resumable.restore()
    if first_epoch < settings.epochs and resumable.stop_reason is None:
        if settings.patience is None:
            log.info("no early stopping: training runs every epoch up to %d", settings.epochs)
        steps = steps_per_epoch(len(x_train), settings.batch_size)
        data = training_dataset(
            x_train, y_train, weights, settings.batch_size, settings.seed, first_epoch, settings.epochs
        )
        model.fit(
            data,
            epochs=settings.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            shuffle=False,  # the dataset is already shuffled, per epoch, by epoch_order
            validation_data=array_batches((val[0].astype(np.float32), val[1]), max(settings.batch_size, 64)),
            callbacks=[*callbacks, resumable],  # resumable last: it commits what the others wrote
            verbose=verbose,
        )
    if resumable.best_weights is not None:
        model.load_weights(resumable.best_weights)
    return pd.DataFrame(resumable.history), resumable.stop_reason


def clear_state(state_dir: Path) -> None:
    """Remove resume state: once a run's outputs are written, or when it is stale."""
    shutil.rmtree(state_dir, ignore_errors=True)


def fingerprint_of(**parts) -> str:
    """Digest of the canonical JSON of ``parts`` (what a resume state must have been made with)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def loaded_code_digest() -> str:
    """Digest of the layerscope modules this process has loaded: the code version a resume state belongs to.

    Finer than the git commit (which does not change while files are edited) and narrower
    than the whole package (editing an explanation method must not throw away a training
    run's progress).
    """
    digest = hashlib.sha256()
    files = {
        Path(module.__file__)
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "layerscope" and getattr(module, "__file__", None)
    }
    root = Path(__file__).resolve().parents[1]  # the layerscope package
    for file in sorted(files):
        digest.update(str(file.resolve().relative_to(root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:20]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be short)."""
    return int(np.ceil(n / batch_size))
