"""Seed replicates: the grid, each replicate's seed, and what Snakemake schedules for them."""

import pytest

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
