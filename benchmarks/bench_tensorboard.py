"""Cost of ``training.tensorboard``: training time with and without the TensorBoard callbacks.

Both arms train LeNet-5 through the project's ``fit`` with the weight-change recorder, on
random images at the default config's size and batch, in one process, interleaved so the
drift of a shared machine hits both alike. LeNet-5 has the shortest epochs of the grid, so
the fixed per-epoch cost of writing events weighs most there (the worst case).

Usage: ``python benchmarks/bench_tensorboard.py [--images 1700] [--size 64] [--epochs 3] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from layerscope.train.fit import FitSettings, enable_determinism, fit  # noqa: E402
from layerscope.train.models import lenet5  # noqa: E402
from layerscope.train.optimizers import make_optimizer  # noqa: E402
from layerscope.train.tensorboard import tensorboard_callbacks  # noqa: E402
from layerscope.weights.recorder import WeightChangeRecorder  # noqa: E402


def train_once(data, size: int, epochs: int, tensorboard: bool, root: Path) -> float:
    """Seconds of one ``fit`` (model built and compiled beforehand, not timed)."""
    (x, y), (xv, yv) = data
    enable_determinism(0)
    model = lenet5((size, size, 3), 4)
    model.compile(make_optimizer("sgd", 0.01, 0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = WeightChangeRecorder(root / "store.h5", period=20, run_id="bench")
    callbacks = [recorder, *(tensorboard_callbacks(root / "tensorboard", recorder) if tensorboard else [])]
    settings = FitSettings(epochs=epochs, batch_size=32, seed=0)
    started = time.perf_counter()
    fit(model, (x, y), (xv, yv), settings, 4, root / "state", callbacks=callbacks, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1700, help="training images (the default run has ~1700)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, args.size, args.size, 3)).astype(np.uint8)
    xv = rng.integers(0, 256, (args.images // 8, args.size, args.size, 3)).astype(np.uint8)
    data = ((x, rng.integers(0, 4, args.images)), (xv, rng.integers(0, 4, len(xv))))
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        train_once(data, args.size, 1, True, Path(tmp) / "warmup")  # graph tracing, imports
        for repeat in range(args.repeats):
            for tensorboard in (False, True) if repeat % 2 == 0 else (True, False):
                times[tensorboard].append(
                    train_once(data, args.size, args.epochs, tensorboard, Path(tmp) / f"{repeat}-{tensorboard}")
                )
        events = sum(f.stat().st_size for f in Path(tmp).rglob("events.out.tfevents.*"))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"off: {' '.join(f'{t:.2f}' for t in times[False])} s; on: {' '.join(f'{t:.2f}' for t in times[True])} s")
    print(f"median {off:.2f} s without, {on:.2f} s with TensorBoard: {100 * (on / off - 1):+.1f}% training time")
    print(f"event files written: {events / 1e3:.0f} kB in all")


if __name__ == "__main__":
    main()
