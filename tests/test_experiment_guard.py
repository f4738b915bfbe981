"""A second experiment's data never replaces a finished run's results: the guard compares
this config's data with what results/<experiment>/ holds, and refuses in one line."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO
from helpers.images import write_png

from layerscope.core.errors import LayerscopeError
from layerscope.core.provenance import write_provenance
from layerscope.data.experiment import (
    check_experiment,
    check_forced,
    experiment_fingerprint,
    held_run,
    record_experiment,
)
from layerscope.data.sources import listing_digest
from layerscope.train.resolved import load_config


def fingerprint(config):
    return experiment_fingerprint(config, listing_digest(config["data"]["source"], config["data"]["path"]))


def finish_data_stage(results, config, images, runs=()):
    """What a finished run leaves: the data stage's provenance record and trained runs' metrics."""
    write_provenance(
        results / "data" / "provenance.json",
        rule="prepare_data",
        experiment=config["experiment"],
        config=config,
        seed=config["seed"],
        inputs=[],
        outputs=[],
        extra={"source": config["data"]["source"], "images": images, "resize": "stretch"},
    )
    for run in runs:
        (results / "runs" / run).mkdir(parents=True)
        (results / "runs" / run / "metrics.json").write_text("{}")


@pytest.fixture
def default_config():
    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture
def folder_config(default_config, image_folder):
    return {**default_config, "data": {**default_config["data"], "source": "folder", "path": str(image_folder)}}


def test_a_folder_config_is_refused_over_a_finished_default_run(tmp_path, default_config, folder_config):
    results = tmp_path / "results" / "default"
    finish_data_stage(results, default_config, 2624, runs=["lenet5-tanh-sgd", "vgg16-finetune"])
    with pytest.raises(LayerscopeError) as refused:
        check_experiment(results, fingerprint(folder_config))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{results}/ holds a finished run of elpv data (2624 images, prepared 20")
    assert "2 trained runs" in message
    assert "data.source folder (holds elpv)" in message
    assert "Set experiment: <a new name> to keep both" in message
    assert "--config overwrite_results=True (or --forcerun prepare_data)" in message


def test_the_same_data_or_an_override_or_an_unfinished_folder_passes(tmp_path, default_config, folder_config):
    results = tmp_path / "results" / "default"
    assert check_experiment(results, fingerprint(folder_config)) is None  # nothing there yet
    (results / "data").mkdir(parents=True)
    (results / "data" / "provenance.json").write_text("")  # what snakemake --touch leaves
    assert check_experiment(results, fingerprint(folder_config)) is None
    finish_data_stage(results, default_config, 2624)
    assert check_experiment(results, fingerprint(default_config)) is None
    assert check_experiment(results, fingerprint(folder_config), forced=True) is None


def test_overrides_are_the_config_key_forcerun_prepare_data_and_forceall(default_config):
    assert not check_forced(default_config, frozenset(), False)
    assert not check_forced(default_config, {"train"}, False)
    assert check_forced({**default_config, "overwrite_results": True}, frozenset(), False)
    assert check_forced(default_config, {"prepare_data"}, False)
    assert check_forced(default_config, {"results/default/data/manifest.csv"}, False)
    assert check_forced(default_config, frozenset(), True)


def test_a_folders_recorded_run_is_refused_once_an_image_or_a_data_setting_changes(tmp_path, folder_config):
    results = tmp_path / "results" / "mine"
    finish_data_stage(results, folder_config, 30, runs=["lenet5-tanh-sgd"])
    record_experiment(results, fingerprint(folder_config))
    assert held_run(results).fingerprint == fingerprint(folder_config)
    assert check_experiment(results, fingerprint(folder_config)) is None

    write_png(Path(folder_config["data"]["path"]) / "crack" / "extra.png", seed=999)
    with pytest.raises(
        LayerscopeError, match=r"30 images, prepared .* UTC, 1 trained run\) .*the source's files \(added, removed"
    ):
        check_experiment(results, fingerprint(folder_config))

    resized = {**folder_config, "data": {**folder_config["data"], "image_size": [32, 32]}}
    record_experiment(results, fingerprint(resized))
    with pytest.raises(LayerscopeError, match=r"data.image_size \[64, 64\] \(holds \[32, 32\]\)"):
        check_experiment(results, fingerprint(folder_config))


def test_a_dry_run_of_a_folder_config_is_refused_over_a_finished_default_run(tmp_path, default_config, image_folder):
    """The issue's first user: README's folder keys, no experiment, a finished default run."""
    finish_data_stage(tmp_path / "results" / "default", default_config, 2624, runs=["lenet5-tanh-sgd"])
    shutil.copytree(REPO / "config", tmp_path / "config")  # the workflow's configfile, under --directory
    mine = tmp_path / "mydata.yaml"
    mine.write_text(yaml.safe_dump({"data": {"source": "folder", "path": str(image_folder)}}))
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
            str(mine),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "results/default/ holds a finished run of elpv data (2624 images" in run.stdout + run.stderr
    assert not (tmp_path / "results" / "default" / "data" / "manifest.csv").exists()


def test_the_example_configs_name_their_own_experiment_and_source():
    shipped = {
        load_config(REPO / "config" / name)["experiment"] for name in ("config.yaml", "paper.yaml", "smoke.yaml")
    }
    examples = {name: load_config(REPO / "config" / "examples" / f"{name}.yaml") for name in ("folder", "manifest")}
    assert {name: config["data"]["source"] for name, config in examples.items()} == {
        "folder": "folder",
        "manifest": "manifest",
    }
    names = [config["experiment"] for config in examples.values()]
    assert len(set(names)) == 2 and not set(names) & shipped
