"""The cost estimate: multiply-adds counted from built models, seconds on a simulated device,
and the stop before a long run on a machine without a GPU."""

import dataclasses
import re
import subprocess
import sys

import keras
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import cpu_env

from layerscope.train import estimate as estimate_module
from layerscope.train.estimate import (
    JOB_STARTUPS,
    Device,
    JobCost,
    epoch_counts,
    estimate,
    image_counts,
    long_run_refusal,
    part_timer,
    training_job_cost,
)
from layerscope.train.macs import forward_macs, training_macs
from layerscope.train.resolved import load_config
from layerscope.train.runs import replicate_grid, run_grid


def tiny_model(frozen_first: bool = False) -> keras.Model:
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="c1")(inputs)  # 4*4*2 outputs x 9 x 1 channel = 288
    x = keras.layers.Conv2D(3, 1, name="c2")(x)  # 4*4*3 outputs x 1 x 2 channels = 96
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="d")(x))  # 48 inputs x 5 units = 240
    model.get_layer("c1").trainable = not frozen_first
    return model


def test_multiply_adds_are_counted_from_the_layers():
    assert forward_macs(tiny_model()) == [288, 96, 240]
    # the first trained layer needs no input gradient: 2 x 288 + 3 x (96 + 240)
    assert training_macs(tiny_model()) == 2 * 288 + 3 * (96 + 240)
    # a frozen first layer costs its forward pass only, and c2 is then the first trained layer
    assert training_macs(tiny_model(frozen_first=True)) == 288 + 2 * 96 + 3 * 240


def test_epochs_range_from_the_earliest_stop_to_the_cap():
    assert epoch_counts(60, 3) == (4, 11, 60)  # LIKELY_STOP 2.8 x 4 = 11.2
    assert epoch_counts(5, 3) == (4, 5, 5)
    assert epoch_counts(10, None) == (10, 10, 10)


def test_seconds_are_work_over_the_device_plus_start_ups():
    device = Device(flops_per_second=1e9, step_seconds=0.5, save_seconds_per_parameter=0.01)
    job = JobCost("vgg16-freeze5-sgd", fixed=1e9, per_epoch=2e9, steps=4, parameters=100, epochs=(1, 2, 3))
    # fixed 2 s; an epoch 4 s of arithmetic + 4 x 0.5 s of steps + 2 x 100 x 0.01 s of saving = 8 s
    assert job.seconds(device) == pytest.approx((10, 18, 26))
    features = JobCost("features block5", 5e8, 0, 0, 0, (0, 0, 0))
    result = estimate([job, features], device, startup_s=2.0, other_jobs=3)
    start_ups = 2.0 * (JOB_STARTUPS["train"] + 4 * JOB_STARTUPS["other"])
    assert (result.low, result.likely, result.high) == pytest.approx((11 + start_ups, 19 + start_ups, 27 + start_ups))
    assert (result.training_jobs, result.other_jobs) == (1, 4)
    assert result.by_run() == [("vgg16-freeze5-sgd", 1, 18)]  # the likely 18 s; caches and start-ups left out
    seeded = estimate([job, dataclasses.replace(job, job="vgg16-freeze5-sgd-seed43"), features], device, 0.0, 0)
    assert seeded.by_run() == [("vgg16-freeze5-sgd", 2, 36)]
    assert result.line() == (
        "cost estimate: 1 training jobs and 4 others, likely 31 s on this machine (from 23 s if every run stops "
        "at its earliest to 39 s at the epoch caps; 1 GFLOP/s measured in float32)"
    )


def test_a_timed_job_costs_its_measured_steps():
    config = load_config(REPO / "config/config.yaml")
    images = image_counts(config)
    job = training_job_cost("vgg16-freeze3-momentum", config, images, 4, timed=lambda part: 0.01)
    # an epoch: 1,770 training images at 0.01 s, 197 validation images at a third of that
    assert job.epoch_seconds == pytest.approx(0.01 * (1770 + 197 / 3))
    assert job.fixed_seconds == pytest.approx(0.01 * 2624 / 3)  # the final predictions of every image
    device = Device(flops_per_second=1e9, step_seconds=0.5, save_seconds_per_parameter=1e-9)
    per_epoch = 0.01 * (1770 + 197 / 3) + 2 * job.parameters * 1e-9  # the rate and step cost play no part
    assert job.seconds(device)[2] == pytest.approx(0.01 * 2624 / 3 + 60 * per_epoch)


def test_each_distinct_trained_part_is_timed_once(monkeypatch):
    config = load_config(REPO / "config/smoke.yaml")
    images = image_counts(config)
    calls = []
    monkeypatch.setattr(estimate_module, "seconds_per_image", lambda part, batch: calls.append(batch) or 0.02)
    timed = part_timer(config)
    runs = ["vgg16-scratch-sgd", "vgg16-finetune", "vgg16-freeze3-momentum", "vgg16-freeze3-sgd"]
    jobs = [training_job_cost(run, config, images, 4, timed) for run in runs]
    # fine-tuning trains scratch's network, and two optimizers of one depth train one part: two timings
    assert calls == [config["training"]["batch_size"]] * 2
    assert [job.epoch_seconds for job in jobs] == pytest.approx([0.02 * (images.train + images.val / 3)] * 4)


def test_the_default_split_sizes_are_predicted_exactly():
    images = image_counts(load_config(REPO / "config/config.yaml"))
    assert images.total == 2624
    assert (images.train, images.val) == (1770, 197)  # the data stage's split of the default run


CPU = Device(flops_per_second=300e9, step_seconds=0.01, save_seconds_per_parameter=1e-8)  # a fast 2-core CPU


def paper_estimate():
    config = load_config(REPO / "config/paper.yaml")
    images = image_counts(config)
    runs = run_grid(config["runs"]) + replicate_grid(config)
    costs = {run: training_job_cost(run, config, images, 4) for run in run_grid(config["runs"])}
    jobs = [costs[run.split("-seed")[0]] for run in runs]
    return config, estimate(jobs, CPU, startup_s=4.0, other_jobs=60)


def test_the_paper_config_stops_before_its_first_job_without_a_gpu():
    config, result = paper_estimate()
    assert result.training_jobs == 66
    refusal = long_run_refusal(result, has_gpu=False, config=config)
    assert refusal.startswith("stopped before the first job: without a GPU this run takes ")
    assert re.search(r"takes \d+\.\d h to \d+\.\d h here \(likely \d+\.\d h\), beyond long_run_hours: 12", refusal)
    assert refusal.endswith("or confirm with --config confirm_long_run=True")
    assert long_run_refusal(result, has_gpu=True, config=config) is None
    assert long_run_refusal(result, has_gpu=False, config={**config, "confirm_long_run": True}) is None
    assert long_run_refusal(result, has_gpu=False, config={**config, "long_run_hours": None}) is None


def test_the_default_config_does_not_stop_on_the_same_cpu():
    config = load_config(REPO / "config/config.yaml")
    images = image_counts(config)
    jobs = [training_job_cost(run, config, images, 4) for run in run_grid(config["runs"])]
    assert long_run_refusal(estimate(jobs, CPU, 4.0, 20), has_gpu=False, config=config) is None


TINY = {
    "experiment": "tiny",
    "seed": 7,
    "data": {"source": "elpv", "image_size": [40, 40], "max_per_class": 12},
    "runs": {"lenet5": ["tanh-sgd"], "scratch_optimizers": [], "freeze_blocks": [3], "freeze_optimizers": ["momentum"],
             "finetune_from": None, "gap_freeze_blocks": [], "seeds": None, "seeded": None},
    "training": {"epochs": {"lenet5": 3, "scratch": 3, "freeze": 3, "gap": 3}, "batch_size": 8,
                 "early_stopping_patience": None},
    "weight_changes": {"period": 2, "snapshots": "epoch_end", "animation": False},
    "explain": {"runs": [], "cam_run": None, "onset": {"runs": []}},
}  # fmt: skip


@pytest.mark.pipeline(minutes=2)
def test_the_estimate_of_a_tiny_run_is_within_a_factor_of_two_of_its_jobs_time(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    targets = [f"results/tiny/runs/{run}/metrics.json" for run in ("lenet5-tanh-sgd", "vgg16-freeze3-momentum")]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "tiny.yaml"), "--", *targets],
        cwd=REPO, capture_output=True, text=True, env=cpu_env(LAYERSCOPE_COST_ESTIMATE="on"),
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    line = re.search(r"cost estimate: 2 training jobs and 2 others, (\d+) (s|min) on this machine", output)
    assert line, output[-3000:]
    estimated = float(line.group(1)) * (60 if line.group(2) == "min" else 1)
    measured = sum(
        pd.read_csv(tsv, sep="\t")["s"].iloc[-1] for tsv in (tmp_path / "results/tiny/benchmarks").rglob("*.tsv")
    )
    assert measured / 2 <= estimated <= measured * 2, (estimated, measured)
