"""Training-step overhead of WeightChangeRecorder on a VGG-16-shaped CNN.

Two measurements, because step times on a shared 2-core machine drift by more than the
effect measured:

* end to end: mean step time of ``fit`` with no recorder, recording every step and at the
  default period, runs interleaved so drift hits all alike;
* per reading: the cost of one reading (device update + HDF5 append) timed alone; the
  overhead at period P is that cost / (P x step time).

Usage: ``python benchmarks/bench_weight_changes.py [--image-size 64] [--steps 20] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from layerscope.weights.recorder import DEFAULT_PERIOD, WeightChangeRecorder  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch ends (so it includes the recorder's work), and
    from the last batch end to the epoch end (the recorder's epoch-end snapshot and resume
    point)."""

    def on_train_begin(self, logs=None):
        self.ends: list[float] = []
        self.epoch_end = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end = time.perf_counter() - self.ends[-1]


def build_model(size: int) -> keras.Model:
    """VGG-16 conv base (random init, all trainable) with a small dense head, built flat."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    x = keras.layers.Flatten(name="flatten")(base.output)
    x = keras.layers.Dense(256, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(4, name="logits")(x)
    model = keras.Model(base.input, out)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per fit")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--period", type=int, default=DEFAULT_PERIOD)
    args = parser.parse_args()

    model = build_model(args.image_size)
    rng = np.random.default_rng(0)
    n = args.batch * (args.steps + 1)
    x = rng.random((n, args.image_size, args.image_size, 3), dtype=np.float32)
    y = rng.integers(0, 4, n)
    print(
        f"model: VGG-16 conv base + fc1(256) + logits(4) at {args.image_size}px, "
        f"{model.count_params():,} parameters, batch {args.batch}"
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench_wc_"))
    configs = {"none": None, "period 1": 1, f"period {args.period}": args.period}
    times: dict[str, list[float]] = {name: [] for name in configs}
    epoch_ends: dict[str, list[float]] = {name: [] for name in configs}
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)  # compile and warm up
    for repeat in range(args.repeats):
        for name, period in configs.items():
            timer = StepTimer()
            callbacks = [timer]
            if period is not None:
                store = tmp / f"{name.replace(' ', '')}_{repeat}.h5"
                callbacks.insert(0, WeightChangeRecorder(store, period=period, run_id="bench"))
            model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, callbacks=callbacks)
            times[name].extend(np.diff(timer.ends))  # first step excluded (fit start-up)
            epoch_ends[name].append(timer.epoch_end)
    base_step = float(np.mean(times["none"]))
    print("\nend to end (mean step time over", len(times["none"]), "steps each):")
    for name, values in times.items():
        mean = float(np.mean(values))
        print(
            f"  {name:>10}: {mean * 1e3:8.1f} ms/step  overhead {100 * (mean / base_step - 1):+6.1f}%  "
            f"epoch end {np.median(epoch_ends[name]) * 1e3:6.1f} ms"
        )

    recorder = WeightChangeRecorder(tmp / "reading.h5", period=1, run_id="bench")
    recorder.set_model(model)
    recorder.on_train_begin()
    recorder.on_epoch_begin(0)
    costs = []
    for _ in range(30):
        recorder._step += 1
        start = time.perf_counter()
        recorder._read(epoch_end=False)
        costs.append(time.perf_counter() - start)
    recorder.on_train_end()
    cost = float(np.median(costs[3:]))
    print(
        f"\nper reading (median of {len(costs) - 3}): {cost * 1e3:.1f} ms "
        f"(step without recording {base_step * 1e3:.1f} ms)"
    )
    for period in (1, 5, 10, args.period):
        print(f"  period {period:>3}: overhead {100 * cost / (period * base_step):5.2f}%")
    size = (tmp / "reading.h5").stat().st_size
    print(f"\nstore with 30 readings + 1 float16 snapshot: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
