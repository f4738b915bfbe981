"""Training throughput of every trainable part of the grid against this CPU's own limit (prints only).

For each part (freeze depth 5, 4, 3, 2, 1: the blocks after the cut plus the head, trained
on block-k features as the pipeline does with its feature cache; fine-tuning: the whole
VGG-16; LeNet-5) it prints, at the default's shapes (64 px, batch 32, float32, momentum
SGD, the project's head):

- **kernels**: images per second of plain ``model.fit`` on random inputs held in memory,
  the achieved GFLOP/s (multiply-adds counted from the layers: forward, weight gradient,
  input gradient except at the first trained layer; x2 FLOPs per multiply-add), and the
  ratio to a 2048 x 2048 float32 ``tf.matmul`` measured in the same process;
- **pipeline**: seconds per epoch of the project's own fit loop on the same inputs
  (:func:`layerscope.train.fit.fit` with the weight-change recorder, resume state and
  validation, as a training job runs it), per image, and its ratio to the kernels.

Compare ratios between runs, not seconds: the machine's speed varies with its neighbours.

Usage: python benchmarks/bench_throughput.py [--parts freeze5 freeze4 freeze3 lenet5] [--steps 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from layerscope.core.scripting import use_onednn  # noqa: E402

use_onednn()  # the kernels the pipeline's jobs run (TF_ENABLE_ONEDNN_OPTS=0 in the environment: TensorFlow's own)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from layerscope.core.machine import machine_line, machine_record  # noqa: E402
from layerscope.train.fit import FitSettings, enable_determinism, fit, set_threads  # noqa: E402
from layerscope.train.macs import training_macs  # noqa: E402
from layerscope.train.models import lenet5, set_frozen_blocks, split_at_block, vgg16  # noqa: E402
from layerscope.train.optimizers import make_optimizer  # noqa: E402
from layerscope.weights.recorder import WeightChangeRecorder  # noqa: E402

PARTS = ("freeze5", "freeze4", "freeze3", "freeze2", "freeze1", "finetune", "lenet5")
SIZE, BATCH, CLASSES = 64, 32, 4


def trained_part(name: str) -> tuple[keras.Model, keras.Model]:
    """(model whose weights are recorded, the part that trains) for a part of the grid."""
    if name == "lenet5":
        model = lenet5((SIZE, SIZE, 3), CLASSES, "relu")
        return model, model
    model = vgg16((SIZE, SIZE, 3), CLASSES, weights="none")
    if name == "finetune":
        set_frozen_blocks(model, 0)
        return model, model
    k = int(name.removeprefix("freeze"))
    set_frozen_blocks(model, k)
    return model, split_at_block(model, k)[1]


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """float32 matrix-product speed of this process: the CPU's practical limit."""
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        tf.matmul(a, b).numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def inputs(model: keras.Model, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = model.input.shape[1:]
    x = rng.random((n, *shape), dtype=np.float32) * (255 if len(shape) == 3 and shape[-1] == 3 else 1)
    return x, rng.integers(0, CLASSES, n)


def compiled(model: keras.Model) -> keras.Model:
    model.compile(make_optimizer("momentum", 1e-3, 0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def kernel_images_per_second(part: keras.Model, steps: int) -> float:
    """Plain ``model.fit`` on in-memory inputs, the first (tracing) epoch left out."""
    x, y = inputs(part, BATCH * steps)
    compiled(part).fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    part.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return len(x) / (time.perf_counter() - start)


def pipeline_seconds_per_image(model: keras.Model, part: keras.Model, steps: int) -> float:
    """The project's fit loop as a training job runs it (recorder, resume state, validation), epochs 2-3."""
    x, y = inputs(part, BATCH * steps)
    val = inputs(part, max(BATCH, len(x) // 9))  # the default's val/train ratio (197 / 1770)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = WeightChangeRecorder(Path(tmp) / "w.h5", period=20, model=model)
        history, _ = fit(
            compiled(part), (x, y), val, FitSettings(epochs=3, batch_size=BATCH, seed=1), CLASSES,
            Path(tmp) / "state", callbacks=[recorder], verbose=0,
        )  # fmt: skip
    return float(history["seconds"].iloc[1:].mean()) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--steps", type=int, default=12, help="training steps of 32 images measured per part")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    set_threads(args.threads)
    enable_determinism(1)
    print(f"Machine: {machine_line(machine_record())}; {args.threads} threads")
    limit = matmul_gflops()
    print(f"matmul 2048 x 2048 float32: {limit:.0f} GFLOP/s\n")
    print(f"{'part':<9} {'MFLOP/img':>10} {'kernel img/s':>13} {'GFLOP/s':>8} {'of matmul':>10} "
          f"{'pipeline img/s':>15} {'pipeline/kernel':>16}")  # fmt: skip
    for name in args.parts:
        model, part = trained_part(name)
        flops = 2 * training_macs(part)
        rate = kernel_images_per_second(part, args.steps)
        model, part = trained_part(name)  # fresh weights and optimizer for the pipeline's loop
        per_image = pipeline_seconds_per_image(model, part, args.steps)
        gflops = flops * rate / 1e9
        print(
            f"{name:<9} {flops / 1e6:>10.0f} {rate:>13.1f} {gflops:>8.1f} {gflops / limit:>10.2f} "
            f"{1 / per_image:>15.1f} {per_image * rate:>16.2f}",
            flush=True,
        )
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
