"""Seed replicates: the grid, each replicate's seed, and what Snakemake schedules for them."""

import subprocess
import sys

import pytest
import yaml
from helpers import REPO

from layerscope.core.errors import LayerscopeError
from layerscope.train.runs import parse_run_id, replicate_grid, run_seed, split_replicate

RUNS = {
    "lenet5": ["tanh-sgd"],
    "scratch_optimizers": [],
    "freeze_blocks": [3],
    "freeze_optimizers": ["momentum"],
    "finetune_from": "vgg16-freeze3-momentum",
    "gap_freeze_blocks": [],
}


def test_replicates_follow_the_extra_seeds():
    config = {"seed": 42, "runs": {**RUNS, "seeds": [5, 6, 7]}}
    assert replicate_grid(config) == [
        f"{run}-seed{s}" for run in ("lenet5-tanh-sgd", "vgg16-freeze3-momentum", "vgg16-finetune") for s in (6, 7)
    ]
    assert run_seed("vgg16-finetune", config) == 5 and run_seed("vgg16-finetune-seed7", config) == 7
    assert replicate_grid({"seed": 42, "runs": {**RUNS, "seeds": None}}) == []
    assert run_seed("lenet5-tanh-sgd", {"seed": 42, "runs": RUNS}) == 42


def test_only_the_seeded_runs_get_replicates():
    runs = {**RUNS, "freeze_blocks": [3, 5], "seeds": [5, 6], "seeded": ["vgg16-freeze*-momentum", "lenet5-tanh-sgd"]}
    assert replicate_grid({"seed": 42, "runs": runs}) == [
        "lenet5-tanh-sgd-seed6",
        "vgg16-freeze3-momentum-seed6",
        "vgg16-freeze5-momentum-seed6",
    ]
    with pytest.raises(LayerscopeError, match=r"runs.seeded: \['vgg16-freeze4-\*'\] match\(es\) no run"):
        replicate_grid({"seed": 42, "runs": {**runs, "seeded": ["vgg16-freeze4-*"]}})


def test_replicate_parses_as_its_base_run():
    spec = parse_run_id("vgg16-freeze3-momentum-seed6", {})
    assert (spec.run_id, spec.family, spec.freeze_blocks, spec.optimizer) == (
        "vgg16-freeze3-momentum-seed6",
        "freeze",
        3,
        "momentum",
    )
    assert split_replicate("vgg16-finetune-seed12") == ("vgg16-finetune", 12)
    assert split_replicate("vgg16-finetune") == ("vgg16-finetune", None)


def test_snakemake_trains_each_run_once_per_seed(tmp_path):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["runs"]["seeds"] = [7, 8, 9]
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    grid = 6  # the smoke grid's runs
    counts = dict(line.split() for line in run.stdout.splitlines() if line.startswith(("train ", "tables ")))
    assert counts == {"train": str(3 * grid), "tables": "1"}
    # a replicate of fine-tuning starts from the freeze run of the same seed
    finetune = run.stdout.split("wildcards: run=vgg16-finetune-seed9")[0].rsplit("rule train:", 1)[1]
    assert "runs/vgg16-freeze3-momentum-seed9/model.keras" in finetune
