"""Training speed figures (prints, asserts nothing).

1. freeze3 epoch time with the frozen-feature cache vs the plain full model
   (target: cache at least 1.5x faster, feature extraction included);
2. our fit loop (per-epoch seeded order, resume state, step checkpoints) vs plain
   ``model.fit`` on the same model and data (target: at most 5% slower).

Usage: python benchmarks/bench_training.py [--size 64] [--images 256] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from layerscope.train.fit import FitSettings, enable_determinism, fit  # noqa: E402
from layerscope.train.models import split_at_block, vgg16  # noqa: E402


def data(n: int, size: int, classes: int = 4):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return x, rng.integers(0, classes, n).astype(np.int64)


def compiled(model):
    model.compile(keras.optimizers.SGD(1e-3, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def epoch_seconds(run, epochs: int) -> float:
    """Median wall time of epochs 2..n (epoch 1 includes tracing)."""
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    run(Timer())
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    enable_determinism(0)
    x, y = data(args.images, args.size)
    xv, yv = data(64, args.size)
    print(f"VGG-16 fc head, {args.size}px, {args.images} train images, batch {args.batch}, float32")

    # 1. frozen-feature cache
    model = compiled(vgg16((args.size, args.size, 3), 4, weights="none", freeze_blocks=3))
    full = epoch_seconds(
        lambda cb: model.fit(
            x.astype(np.float32),
            y,
            batch_size=args.batch,
            epochs=args.epochs,
            validation_data=(xv.astype(np.float32), yv),
            callbacks=[cb],
            verbose=0,
        ),
        args.epochs,
    )
    model = vgg16((args.size, args.size, 3), 4, weights="none", freeze_blocks=3)
    extractor, tail = split_at_block(model, 3)
    start = time.perf_counter()
    fx = extractor.predict(x.astype(np.float32), batch_size=64, verbose=0)
    fv = extractor.predict(xv.astype(np.float32), batch_size=64, verbose=0)
    extract = time.perf_counter() - start
    compiled(tail)
    cached = epoch_seconds(
        lambda cb: tail.fit(
            fx,
            y,
            batch_size=args.batch,
            epochs=args.epochs,
            validation_data=(fv, yv),
            callbacks=[cb],
            verbose=0,
        ),
        args.epochs,
    )
    print(f"freeze3 epoch, full model         : {full:7.2f} s")
    print(f"freeze3 epoch, cached features    : {cached:7.2f} s (+ {extract:.2f} s one-off extraction)")
    print(f"speed-up per epoch                : {full / cached:7.2f}x")
    n = args.epochs
    print(f"speed-up over {n} epochs incl. cache: {n * full / (n * cached + extract):7.2f}x")

    # 2. our fit loop vs plain model.fit, all layers trainable
    def fresh():
        enable_determinism(0)
        return compiled(vgg16((args.size, args.size, 3), 4, weights="none", freeze_blocks=0))

    plain_model = fresh()
    plain = epoch_seconds(
        lambda cb: plain_model.fit(
            x.astype(np.float32),
            y,
            batch_size=args.batch,
            epochs=args.epochs,
            validation_data=(xv.astype(np.float32), yv),
            callbacks=[cb],
            verbose=0,
        ),
        args.epochs,
    )
    ours_model = fresh()
    settings = FitSettings(epochs=args.epochs, batch_size=args.batch, seed=0, class_weight="none")
    with tempfile.TemporaryDirectory() as state:
        ours = epoch_seconds(
            lambda cb: fit(ours_model, (x, y), (xv, yv), settings, 4, Path(state), callbacks=[cb], verbose=0),
            args.epochs,
        )
    print(f"all-trainable epoch, plain fit    : {plain:7.2f} s ({args.images / plain:.1f} img/s)")
    print(f"all-trainable epoch, layerscope   : {ours:7.2f} s ({args.images / ours:.1f} img/s)")
    print(f"ratio layerscope / plain          : {ours / plain:7.3f}")


if __name__ == "__main__":
    main()
