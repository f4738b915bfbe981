"""What a run will cost on the machine at hand, said before its first job starts.

Per training job: multiply-adds of one training step per image, counted from the built
model (:mod:`layerscope.train.macs`; with the feature cache only the layers after the
cut train), times the training images, plus one forward pass over the validation images,
per epoch; times the epochs: from the earliest early stopping allows (patience + 1),
through the likely count (:data:`LIKELY_STOP` x (patience + 1), as the default run's
runs stopped), to the cap. Each frozen-feature cache costs one forward pass over every
image, each job the predictions it ends with. A training job's seconds are timed: a few
training steps of each distinct part the jobs train (the whole VGG-16, its tail after each
cached depth, the GAP model, LeNet-5), at the config's image size and batch in the
precision the jobs will compute in, a forward pass counted as a third of a step. No one
rate serves them all: per multiply-add, the kernels' speed depends on the feature maps'
size and the batch (on an AMX Xeon in bfloat16, block 5 alone trained at about a third of
blocks 4-5's rate, and blocks 4-5 at batch 8 at about half their rate at batch 32). Timed
steps leave out the fit loop's own cost (weight-change readings, the resume state, the data
pipeline): the jobs' epochs took 1.35-2.4x the estimate's there
(``benchmarks/estimate_against_run.py``). The caches' multiply-adds become seconds at the
rate of VGG-16's blocks 4-5 and head; each epoch adds the resume state's save (timed on
the same part, per parameter). Every job also pays start-ups: :data:`JOB_STARTUPS` times
this process's own (importing TensorFlow). Explanation work beyond that is not counted.

Usage: ``python -m layerscope.train.estimate config/paper.yaml`` (the whole grid of a
config, as the workflow resolves it); the workflow runs ``--plan plan.json`` with the jobs
it is about to run and stops when :func:`long_run_refusal` says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from layerscope.core.durations import rough

T0 = time.perf_counter()
LIKELY_STOP = 2.8
"""Likely epochs over (patience + 1): the median of the default run's 34 early-stopped runs
(1.0-4.5 x; ``benchmarks/estimate_against_run.py`` prints it for any finished run)."""
JOB_STARTUPS = {"train": 2, "other": 1}
"""Seconds outside a job's epochs, in TensorFlow imports: imports, model build, tracing,
evaluation, writing. Set between tiny runs of 4 jobs on a busy 2-core CPU (43, 60 and 92 s
of jobs) and on an idle one from a fresh clone (35 s, where the estimate's own first import
is the slowest), so the estimate falls within 2x of each."""


@dataclass(frozen=True)
class Images:
    """Images per split the data stage will prepare (per class, as the split rounds them)."""

    train: int
    val: int
    total: int


@dataclass(frozen=True)
class Device:
    """This device's measured speed: FLOP/s of VGG-16 training steps, and a fixed cost per step."""

    flops_per_second: float
    step_seconds: float
    save_seconds_per_parameter: float = 0.0
    precision: str = "float32"


@dataclass(frozen=True)
class JobCost:
    """One job's work, before the device turns it into seconds.

    Attributes:
        job: the run id (or ``features block<k>``).
        fixed: multiply-adds done once (feature extraction, final predictions).
        per_epoch: multiply-adds of one epoch (training steps and validation).
        steps: batches per epoch (training and validation).
        parameters: the trained part's parameters, saved with the optimizer's slots every epoch.
        epochs: (earliest early stopping, likely, epoch cap).
        epoch_seconds, fixed_seconds: measured seconds of an epoch and of the work done once, for
            jobs whose steps were timed (None: from the multiply-adds at the device's rate).
    """

    job: str
    fixed: float
    per_epoch: float
    steps: int
    parameters: int
    epochs: tuple[int, int, int]
    epoch_seconds: float | None = None
    fixed_seconds: float | None = None

    def fixed_and_epoch_seconds(self, device: Device) -> tuple[float, float]:
        """Seconds on ``device`` of the work done once and of one epoch (2 FLOPs per multiply-add)."""
        fixed = self.fixed_seconds
        if fixed is None:
            fixed = 2 * self.fixed / device.flops_per_second
        per_epoch = self.epoch_seconds
        if per_epoch is None:
            per_epoch = 2 * self.per_epoch / device.flops_per_second + self.steps * device.step_seconds
        return fixed, per_epoch + 2 * self.parameters * device.save_seconds_per_parameter

    def seconds(self, device: Device) -> tuple[float, ...]:
        """(earliest, likely, cap) seconds on ``device``."""
        fixed, per_epoch = self.fixed_and_epoch_seconds(device)
        return tuple(fixed + epochs * per_epoch for epochs in self.epochs)


@dataclass(frozen=True)
class Estimate:
    """A run's estimated seconds: every run stopping at its earliest, likely, at its cap."""

    low: float
    likely: float
    high: float
    training_jobs: int
    other_jobs: int
    device: Device
    likely_by_training_job: tuple[tuple[str, float], ...] = ()

    def by_run(self) -> list[tuple[str, int, float]]:
        """(run, seeds, likely seconds of all its seeds) per training run, costliest first.

        Seed replicates count with their run; start-ups are left out.
        """
        from layerscope.train.runs import split_replicate

        runs: dict[str, list[float]] = {}
        for job, seconds in self.likely_by_training_job:
            runs.setdefault(split_replicate(job)[0], []).append(seconds)
        rows = [(run, len(seconds), sum(seconds)) for run, seconds in runs.items()]
        return sorted(rows, key=lambda row: -row[2])

    def line(self) -> str:
        """The estimate in one line."""
        jobs = f"cost estimate: {self.training_jobs} training jobs and {self.other_jobs} others"
        rate = f"{self.device.flops_per_second / 1e9:.0f} GFLOP/s measured in {self.device.precision}"
        if self.low == self.high:
            return f"{jobs}, {rough(self.likely)} on this machine (no early stopping; {rate})"
        return (
            f"{jobs}, likely {rough(self.likely)} on this machine (from {rough(self.low)} if every run "
            f"stops at its earliest to {rough(self.high)} at the epoch caps; {rate})"
        )


def image_counts(config: dict) -> Images:
    """Training, validation and total images of the config's data (listing the source, reading no image)."""
    from layerscope.data.sources import load_source
    from layerscope.data.splits import split_sizes

    data = config["data"]
    counts = load_source(data["source"], data["path"], data["classes"]).table.groupby("label").size()
    if data["max_per_class"]:
        counts = counts.clip(upper=data["max_per_class"])
    sizes = [split_sizes(int(n), data["test_fraction"], data["val_fraction"]) for n in counts]
    return Images(sum(s[0] for s in sizes), sum(s[1] for s in sizes), int(counts.sum()))


def epoch_counts(cap: int, patience: int | None) -> tuple[int, int, int]:
    """(earliest, likely, cap) epochs: early stopping ends a run after patience epochs without improvement."""
    if not patience:
        return cap, cap, cap
    earliest = min(cap, patience + 1)
    return earliest, min(cap, round(LIKELY_STOP * earliest)), cap


def training_part(run_id: str, config: dict, classes: int):
    """The part of a run's model that trains on its inputs, at the config's image size with random weights.

    With the feature cache a freeze run trains only the layers after its cut (as the job does).
    """
    from layerscope.train.models import lenet5, split_at_block, vgg16
    from layerscope.train.runs import cached_blocks, parse_run_id

    training = config["training"]
    spec = parse_run_id(run_id, training)
    shape = (*config["data"]["image_size"], 3)
    if spec.family == "lenet5":
        return lenet5(shape, classes, activation=spec.activation)
    model = vgg16(
        shape,
        classes,
        weights="none",
        freeze_blocks=spec.freeze_blocks,
        head=spec.head,
        dense_units=training["dense_units"],
        dropout=training["dropout"],
    )
    k = cached_blocks(spec, training) if training["weights"] != "none" else 0
    return split_at_block(model, k)[1] if k else model


def training_job_cost(run_id: str, config: dict, images: Images, classes: int, timed=None) -> JobCost:
    """A training job's :class:`JobCost`, counted from its built model.

    Args:
        run_id: the run (or a seed replicate: same cost).
        config: the validated config.
        images: the split sizes.
        classes: the number of classes.
        timed: a callable giving a model's measured seconds per training image (None: the
            multiply-adds are counted and the device's rate turns them into seconds).
    """
    from layerscope.train.macs import forward_macs, training_macs
    from layerscope.train.runs import parse_run_id, run_epochs, run_patience

    training = config["training"]
    spec = parse_run_id(run_id, training)
    part = training_part(run_id, config, classes)
    cap = training["finetune"]["epochs"] if spec.family == "finetune" else run_epochs(spec, training["epochs"])
    forward, batch = sum(forward_macs(part)), training["batch_size"]
    epoch_seconds = fixed_seconds = None
    if timed is not None:
        step = timed(part)  # a forward pass is about a third of a step
        epoch_seconds, fixed_seconds = step * (images.train + images.val / 3), step * images.total / 3
    return JobCost(
        run_id,
        fixed=forward * images.total,
        per_epoch=training_macs(part) * images.train + forward * images.val,
        steps=-(-images.train // batch) + -(-images.val // batch),
        parameters=part.count_params(),
        epochs=epoch_counts(cap, run_patience(spec, training["early_stopping_patience"])),
        epoch_seconds=epoch_seconds,
        fixed_seconds=fixed_seconds,
    )


def feature_cache_cost(k: int, config: dict, images: Images, classes: int) -> JobCost:
    """The frozen-feature job of depth ``k``: blocks 1..k once over every image."""
    from layerscope.train.macs import forward_macs
    from layerscope.train.models import split_at_block, vgg16

    model = vgg16((*config["data"]["image_size"], 3), classes, weights="none", freeze_blocks=k)
    extractor = split_at_block(model, k)[0]
    return JobCost(f"features block{k}", sum(forward_macs(extractor)) * images.total, 0, 0, 0, (0, 0, 0))


def estimate(costs: list[JobCost], device: Device, startup_s: float, other_jobs: int) -> Estimate:
    """Sum the jobs' seconds on ``device`` and their start-ups (``other_jobs``: start-ups only)."""
    per_job = [(cost.job, cost.seconds(device)) for cost in costs]
    likely = tuple((job, seconds[1]) for job, seconds in per_job if not job.startswith("features"))
    others = other_jobs + len(costs) - len(likely)
    start_ups = startup_s * (JOB_STARTUPS["train"] * len(likely) + JOB_STARTUPS["other"] * others)
    totals = [start_ups + sum(seconds[i] for _, seconds in per_job) for i in range(3)]
    return Estimate(*totals, len(likely), others, device, likely)


def long_run_refusal(result: Estimate, has_gpu: bool, config: dict) -> str | None:
    """Why a run must not start here, or None: no GPU and even its low end beyond ``long_run_hours``."""
    limit = config.get("long_run_hours")
    if has_gpu or limit is None or config.get("confirm_long_run") or result.low <= limit * 3600:
        return None
    return (
        f"stopped before the first job: without a GPU this run takes {rough(result.low)} to "
        f"{rough(result.high)} here (likely {rough(result.likely)}), beyond long_run_hours: {limit}. "
        "Run it on a GPU (docs/gpus-and-clusters.md), or confirm with --config confirm_long_run=True"
    )


def seconds_per_image(model, batch: int, steps: int = 2) -> float:
    """Measured seconds of one training step per image (random inputs; the first, tracing step left out)."""
    import numpy as np

    from layerscope.train.optimizers import make_optimizer

    rng = np.random.default_rng(0)
    x = rng.random((batch, *model.input.shape[1:]), dtype=np.float32) * 255
    y = rng.integers(0, model.output.shape[-1], batch)
    model.compile(make_optimizer("momentum", 1e-3, 0.9), "sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / (steps * batch)


def measure_device(config: dict, classes: int, precision: str = "float32") -> Device:
    """Time training steps here: VGG-16's blocks 4-5 and head (the rate, and saving its weights).

    The fc head alone, whose arithmetic is negligible, gives the fixed cost of a step.
    ``precision`` names the Keras policy already set, under which the steps are timed.
    """
    import tempfile

    from layerscope.train.macs import training_macs
    from layerscope.train.models import split_at_block, vgg16

    size, batch = config["data"]["image_size"], config["training"]["batch_size"]
    model = vgg16((*size, 3), classes, weights="none", freeze_blocks=3)
    step_seconds = seconds_per_image(split_at_block(model, 5)[1], batch, steps=5) * batch
    part = split_at_block(model, 3)[1]
    probe_batch = 8 if size[0] * size[1] <= 128 * 128 else 2
    probe_seconds = seconds_per_image(part, probe_batch) * probe_batch - step_seconds
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        part.save_weights(f"{tmp}/probe.weights.h5")
        save = (time.perf_counter() - start) / part.count_params()
    return Device(2 * training_macs(part) * probe_batch / max(probe_seconds, 1e-9), step_seconds, save, precision)


def part_timer(config: dict):
    """A callable giving a trained part's seconds per training image.

    Each distinct part is timed on its first call (fine-tuning trains scratch's network), at
    the config's image size and batch (2 above 128 x 128 px), in the Keras policy already set.
    """
    size, timed = config["data"]["image_size"], {}
    batch = config["training"]["batch_size"] if size[0] * size[1] <= 128 * 128 else 2

    def seconds(part) -> float:
        key = (tuple(part.input.shape), part.count_params(), len(part.trainable_weights), len(part.layers))
        if key not in timed:
            timed[key] = seconds_per_image(part, batch)
        return timed[key]

    return seconds


def class_count(config: dict) -> int:
    """The number of classes the config's data has (listing the source, reading no image)."""
    from layerscope.data.sources import load_source

    data = config["data"]
    return len(data["classes"] or load_source(data["source"], data["path"]).classes)


def training_job_costs(config: dict, train: list[str], images: Images, classes: int) -> list[JobCost]:
    """A timed :class:`JobCost` per run id, in the Keras policy already set.

    Runs of one architecture (any optimizer, any seed) cost the same: each is built once,
    and each distinct trained part timed once (:func:`part_timer`).
    """
    from layerscope.train.runs import parse_run_id

    timed, built, costs = part_timer(config), {}, []
    for run in train:
        spec = parse_run_id(run, config["training"])
        key = (spec.family, spec.freeze_blocks, spec.head, spec.activation)
        if key not in built:
            built[key] = training_job_cost(run, config, images, classes, timed)
        costs.append(dataclasses.replace(built[key], job=run))
    return costs


def plan_estimate(config: dict, train: list[str], feature_blocks: list[int], other_jobs: int, startup_s: float):
    """(:class:`Estimate`, the device line, whether a GPU computes) for the jobs about to run."""
    from layerscope.core.gpu_check import device_verdict, gather_facts
    from layerscope.train.precision import use_policy

    classes = class_count(config)
    has_gpu, device_line = device_verdict(gather_facts())
    if not (train or feature_blocks):
        return estimate([], Device(1.0, 0.0), startup_s, other_jobs), device_line, has_gpu
    precision = use_policy(config["training"]["mixed_precision"])  # before any model is built
    images = image_counts(config)
    costs = [feature_cache_cost(k, config, images, classes) for k in sorted(set(feature_blocks))]
    costs += training_job_costs(config, train, images, classes)
    return estimate(costs, measure_device(config, classes, precision), startup_s, other_jobs), device_line, has_gpu


def main(argv: list[str] | None = None) -> int:
    """Print the device line and the estimate; exit 3 when :func:`long_run_refusal` stops the run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="a config file: estimate its whole grid")
    parser.add_argument(
        "--plan", help="JSON of the workflow: config, train (run ids), features (depths), other (count)"
    )
    parser.add_argument("--by-run", action="store_true", help="also list each run's likely hours, its seeds together")
    args = parser.parse_args(argv)
    from layerscope.core.scripting import use_onednn

    use_onednn()  # the kernels the jobs run
    import tensorflow  # noqa: F401 (every job pays this start-up: it is measured here)

    startup_s = time.perf_counter() - T0
    if args.plan:
        plan = json.loads(Path(args.plan).read_text())
        config, train, features, other = plan["config"], plan["train"], plan["features"], plan["other"]
    else:
        from layerscope.train.resolved import load_config
        from layerscope.train.runs import cached_blocks, parse_run_id, replicate_grid, run_grid

        config = load_config(args.config)
        train = run_grid(config["runs"]) + replicate_grid(config)
        features = [cached_blocks(parse_run_id(run, config["training"]), config["training"]) for run in train]
        features, other = [k for k in features if k and config["training"]["weights"] != "none"], 0
    result, device, has_gpu = plan_estimate(config, train, features, other, startup_s)
    print(device)
    print(result.line())
    if args.by_run:
        print("likely hours per run (all its seeds; start-ups not included):")
        for run, seeds, seconds in result.by_run():
            print(f"  {run:28s} {seeds} seed{'s' if seeds > 1 else ' '}  {seconds / 3600:6.2f} h")
    refusal = long_run_refusal(result, has_gpu, config)
    if refusal:
        print(refusal, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
