"""Snakemake's planning of the smoke config, and its refusals before any job: dry runs and
start-ups that stop at the config (no TensorFlow job runs, but Snakemake starts in a child)."""

from pathlib import Path

import pytest
import yaml
from helpers import REPO
from helpers.workflow import dry_run, run_snakemake

pytestmark = pytest.mark.pipeline(minutes=1)  # conftest schedules the longest first

SMOKE = REPO / "config/smoke.yaml"
SMOKE_GRID = 6  # the smoke config's training runs


def smoke_with(tmp_path: Path, change) -> Path:
    """config/smoke.yaml with ``change`` applied, written under ``tmp_path``."""
    config = yaml.safe_load(SMOKE.read_text())
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_plain_snakemake_uses_the_default_profile(tmp_path):
    """No flag but a config: Snakemake finds workflow/Snakefile and, beside it, the default profile."""
    run = run_snakemake(tmp_path, "-n", "--configfile", "config/smoke.yaml")  # two cores: threads are not capped
    assert run.returncode == 0, run.stderr[-2000:]
    output = run.stdout + run.stderr
    assert "Using workflow specific profile workflow/profiles/default" in output
    train = output[output.index("rule train:") :].split("\n\n")[0]
    assert "threads: 2" in train and "gpu_jobs=1" in train  # set-threads and set-resources in effect


def test_slurm_profile_gives_each_training_job_a_gpu(tmp_path):
    run = dry_run(tmp_path, SMOKE, profile="slurm")
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout + run.stderr
    train_jobs = out.count("rule train:")
    assert train_jobs == SMOKE_GRID
    feature_jobs = out.count("rule frozen_features:")
    assert feature_jobs == 2  # blocks 3 and 5, each computed once for the runs that freeze them
    assert out.count("gpu=1") == train_jobs + feature_jobs and "runtime=240" in out and "mem_mb=32000" in out


def test_snakemake_trains_each_run_once_per_seed(tmp_path):
    run = dry_run(tmp_path, smoke_with(tmp_path, lambda c: c["runs"].update(seeds=[7, 8, 9])))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = dict(line.split() for line in run.stdout.splitlines() if line.startswith(("train ", "tables ")))
    assert counts == {"train": str(3 * SMOKE_GRID), "tables": "1"}
    # a replicate of fine-tuning starts from the freeze run of the same seed
    finetune = run.stdout.split("wildcards: run=vgg16-finetune-seed9")[0].rsplit("rule train:", 1)[1]
    assert "runs/vgg16-freeze3-momentum-seed9/model.keras" in finetune


def test_snakemake_stops_before_any_job_on_a_bad_value(tmp_path):
    bad = smoke_with(tmp_path, lambda c: c["data"].update(image_size=[0, 64]))
    run = run_snakemake(tmp_path, "--configfile", str(bad), cores=1)
    assert run.returncode != 0
    assert "image_size" in run.stderr + run.stdout
    assert not (tmp_path / "results").exists()


def test_unknown_run_in_config_stops_before_any_job(tmp_path):
    bad = smoke_with(tmp_path, lambda c: c["runs"].update(freeze_blocks=[3, 6]))
    run = run_snakemake(tmp_path, "--configfile", str(bad))
    assert run.returncode != 0 and "freeze_blocks" in run.stderr
    assert not (tmp_path / "results").exists()


def test_a_missing_weights_file_stops_snakemake_before_any_job(tmp_path):
    missing = tmp_path / "nonexistent.h5"
    run = dry_run(tmp_path, smoke_with(tmp_path, lambda c: c["training"].update(weights=str(missing))))
    assert run.returncode != 0
    assert f"training.weights: VGG-16 weights file not found: {missing}" in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()
