"""The data stage run through Snakemake on the tiny configuration."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import run_snakemake

pytestmark = pytest.mark.pipeline(minutes=1)  # conftest schedules the longest first


def snakemake(workdir, *args):
    return run_snakemake(workdir, *args, cores=1)


@pytest.fixture
def folder_config(tmp_path, image_folder):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["data"].update(source="folder", path=str(image_folder), max_per_class=None)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_data_stage_through_snakemake(tmp_path):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["seed"] = 7.0  # integer keys written as floats reach every job as ints
    config["data"].update(image_size=[40.0, 40], max_per_class=12.0)
    (tmp_path / "floats.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "prepare_data", "--configfile", str(tmp_path / "floats.yaml"))
    assert run.returncode == 0, run.stderr
    data = tmp_path / "results/smoke/data"
    manifest = pd.read_csv(data / "manifest.csv")
    assert len(manifest) == 48 and manifest["label"].value_counts().tolist() == [12] * 4
    x, y = np.load(data / "train_images.npy"), np.load(data / "train_labels.npy")
    assert x.shape == (32, 40, 40, 3) and x.dtype == np.uint8 and y.shape == (32,)
    prov = json.loads((data / "provenance.json").read_text())
    assert prov["experiment"] == "smoke" and prov["seed"] == 7 and type(prov["seed"]) is int
    assert prov["extra"]["resize"] == "stretch"
    assert prov["extra"]["files"]["counts"] == {"read": 48, "skipped-max-per-class": 2624 - 48}
    assert str(data / "manifest.csv") in {str(tmp_path / k) if not k.startswith("/") else k for k in prov["outputs"]}
    assert (tmp_path / "results/smoke/logs/prepare_data.log").read_text().count("decoding images") >= 1
    assert (tmp_path / "results/smoke/benchmarks/prepare_data.tsv").is_file()


def test_bad_image_fails_with_its_name_and_leaves_no_outputs(tmp_path, folder_config, image_folder):
    (image_folder / "scratch" / "scratch_04.png").write_bytes(b"\x89PNG broken")
    run = snakemake(tmp_path, "--configfile", str(folder_config))
    assert run.returncode != 0
    assert "scratch_04.png" in run.stderr
    assert not (tmp_path / "results/smoke/data/manifest.csv").exists()
    assert not list((tmp_path / "results/smoke/data").glob("*.npy"))


def test_class_lost_to_skipping_stops_the_data_stage(tmp_path, image_folder):
    """No 0/0/0 class reaching training with a perfect score."""
    for file in (image_folder / "inclusion").iterdir():
        file.write_bytes(b"\x89PNG broken")
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["data"].update(source="folder", path=str(image_folder), max_per_class=None, on_bad_image="skip")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "prepare_data", "--configfile", str(tmp_path / "config.yaml"))
    assert run.returncode != 0
    assert "'inclusion' have no images left after skipping" in run.stderr
    assert f"data.path: {image_folder}" in run.stderr and "data.on_bad_image: skip" in run.stderr
    assert not (tmp_path / "results/smoke/data/manifest.csv").exists()
