"""Fault injection, round two: odd images and manifests, damaged and unwritable
files, configs that used to fail late, and results that named the install folder.

Each test builds its case by hand (a folder of images, a manifest, a file cut short, an
``OSError`` of errno 28 injected where the disk would fill) and asserts the right result
or one line naming the culprit and the fix.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import weakref
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.images import prepared_tiny_folder, write_png
from PIL import Image
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from layerscope.core.atomic import DiskFullError, atomic_path
from layerscope.core.errors import LayerscopeError
from layerscope.core.scripting import JOB_GC_THRESHOLD, run_job
from layerscope.data.images import load_image
from layerscope.data.prepare import DataSettings, prepare
from layerscope.data.sources import listing_digest, load_source
from layerscope.explain.explanations import read_maps
from layerscope.train.features import extract_frozen_features
from layerscope.train.models import lenet5
from layerscope.train.run import RunFiles, train_run
from layerscope.train.runs import job_settings, parse_run_id
from layerscope.weights.store import LayerInfo
from layerscope.weights.store_writer import WeightStoreWriter

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
FULL_DISK = "no space left on device writing {}: free space and rerun"


def disk_full(*_args, **_kwargs):
    """What h5py, numpy and zipfile raise when the device is full."""
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Three classes of ten 32 x 32 images, prepared: 18 training images."""
    return prepared_tiny_folder(tmp_path_factory.mktemp("tiny"), seed=70)


def lenet_config(**training) -> dict:
    config = {
        "experiment": "t",
        "seed": 3,
        "training": {"weights": "none", "batch_size": 4, "epochs": {"lenet5": 1}, **training},
        "weight_changes": {"period": 2},
    }
    validate(config, SCHEMA, set_default=True)
    return config


# hidden files and folders


def test_hidden_files_and_folders_are_skipped_at_every_depth_and_counted(tmp_path, caplog):
    root = tmp_path / "images"
    for c, label in enumerate(["a", "b"]):
        for i in range(6):
            write_png(root / label / f"img{i:02d}.png", seed=10 * c + i)
    hidden = [
        write_png(root / "a" / ".ipynb_checkpoints" / "img00-checkpoint.png", seed=99),  # Jupyter
        write_png(root / "b" / "sub" / ".cache" / "deep.png", seed=98),  # nested two levels
        write_png(root / ".trash" / "x.png", seed=97),  # a hidden "class" folder
        write_png(root / "b" / ".backup.png", seed=96),
    ]
    (root / "a" / "._img00.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork
    before = listing_digest("folder", str(root))
    with caplog.at_level(logging.INFO, logger="layerscope.data.prepare"):
        prepared = prepare(
            DataSettings(source="folder", path=str(root), image_size=(8, 8), val_fraction=0.5), tmp_path / "out"
        )
    assert sorted(prepared.manifest["path"]) == [f"{label}/img{i:02d}.png" for label in "ab" for i in range(6)]
    assert prepared.files.counts() == {"read": 12, "skipped-hidden": len(hidden) + 1}
    assert f"17 file(s): 12 read, {len(hidden) + 1} skipped-hidden" in caplog.text
    (root / "a" / ".ipynb_checkpoints" / "img01-checkpoint.png").write_bytes(hidden[0].read_bytes())
    assert listing_digest("folder", str(root)) == before  # a new hidden file reruns nothing


# one rule for bit depth


def write_16_bit(path, values) -> None:
    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path)
    assert Image.open(path).mode in ("I;16", "I")


def test_16_bit_images_map_by_a_fixed_range_not_their_own_maximum(tmp_path):
    dark, full = tmp_path / "dark.png", tmp_path / "full.png"
    write_16_bit(dark, [[0, 3000], [1000, 2000]])  # per-image max scaling gave 0, 255, 85, 170
    write_16_bit(full, [[0, 3000], [65535, 257]])
    assert load_image(dark, (2, 2))[..., 0].tolist() == [[0, 12], [4, 8]]  # round(v / 257)
    assert load_image(full, (2, 2))[..., 0].tolist() == [[0, 12], [255, 1]]
    twelve_bit = load_image(dark, (2, 2), full_scale=4095)
    assert twelve_bit[..., 0].tolist() == [[0, 187], [62, 125]]  # round(255 v / 4095)
    assert (twelve_bit == twelve_bit[..., :1]).all()  # grey: three equal channels
    with pytest.raises(
        LayerscopeError, match=r"full.png has values 0..65535, outside 0..4095 \(data.bit_depth_range\)"
    ):
        load_image(full, (2, 2), full_scale=4095)


def test_bit_depth_range_is_a_config_key_read_by_the_data_stage(tmp_path):
    config = {"experiment": "x", "data": {"bit_depth_range": 4095}}
    validate(config, SCHEMA, set_default=True)
    assert DataSettings.from_config(config["data"], 1).bit_depth_range == 4095
    default = {"experiment": "x"}
    validate(default, SCHEMA, set_default=True)
    assert default["data"]["bit_depth_range"] == 65535
    with pytest.raises(WorkflowError, match="bit_depth_range"):
        validate({"experiment": "x", "data": {"bit_depth_range": 255}}, SCHEMA)


def test_8_bit_images_are_kept_as_they_are(tmp_path):
    pixels = np.array([[0, 12], [200, 255]], dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png", (2, 2))[..., 1].tolist() == pixels.tolist()


# a manifest listing one image twice


def test_a_manifest_row_listed_twice_is_refused_with_its_line_numbers(tmp_path):
    for i in range(3):
        write_png(tmp_path / "img" / f"{i}.png", seed=i)
    csv = tmp_path / "m.csv"
    csv.write_text("path,label\nimg/0.png,a\nimg/1.png,b\nimg/2.png,a\n./img/0.png,a\n")
    with pytest.raises(LayerscopeError, match=r"m.csv lists img/0.png 2 times \(lines 2, 5\)"):
        load_source("manifest", str(csv))
    csv.write_text(f"path,label\nimg/1.png,b\n{tmp_path / 'img/1.png'},b\nimg/2.png,a\n")
    with pytest.raises(LayerscopeError, match=r"\(lines 2, 3\)"):
        load_source("manifest", str(csv))


# damaged and unwritable files


def test_a_damaged_maps_file_is_named_with_the_fix(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez_compressed(path, gradcam=np.random.default_rng(0).random((4, 16, 16)), indices=np.arange(4))
    assert read_maps(path)["indices"].tolist() == [0, 1, 2, 3]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short
    with pytest.raises(LayerscopeError, match=rf"{path}: unreadable explanation maps .*--forcerun {path}$"):
        read_maps(path)
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(LayerscopeError, match="unreadable explanation maps"):
        read_maps(path)


def test_a_full_disk_in_an_atomic_write_names_the_file_and_leaves_nothing(tmp_path):
    final = tmp_path / "out" / "predictions.csv"
    with pytest.raises(DiskFullError, match=f"^{FULL_DISK.format(final)}$"), atomic_path(final) as tmp:
        tmp.write_text("half")
        disk_full()
    assert list(final.parent.iterdir()) == []


def test_a_full_disk_while_writing_the_weight_change_store_names_it(tmp_path, monkeypatch):
    path = tmp_path / "weight_changes.h5"
    writer = WeightStoreWriter.create(path, [LayerInfo("dense", (2, 3), True)], run_id="r", period=1)
    monkeypatch.setattr(h5py.File, "flush", disk_full)
    with pytest.raises(DiskFullError, match=f"^{FULL_DISK.format(str(path) + '.partial')}$"):
        writer.append(step=1, epoch=0, epoch_end=False, summaries={}, units=[np.zeros(3, np.float32)])


def test_a_full_disk_in_the_training_job_is_one_line_naming_the_store(tmp_path, tiny_data, monkeypatch):
    """The issue's case: HDF5 raised errno 28 from inside a Keras callback, as a traceback."""
    import layerscope.weights.store_writer as store

    monkeypatch.setattr(store, "_put_row", disk_full)
    config = lenet_config()
    files = RunFiles(tmp_path / "run")
    with pytest.raises(DiskFullError, match=f"^{FULL_DISK.format(str(files.pending_weight_changes) + '.partial')}$"):
        train_run(
            parse_run_id("lenet5-tanh-sgd", config["training"]),
            tiny_data,
            files,
            **job_settings("lenet5-tanh-sgd", config),
        )
    assert not files.predictions.exists() and not files.model.exists()


def test_a_full_disk_while_writing_the_feature_cache_names_it(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", disk_full)  # the cache's blocks are reserved before the map is written
    out = tmp_path / "block1.npy"
    with pytest.raises(DiskFullError, match=f"^{FULL_DISK.format(out)}$"):
        extract_frozen_features(tiny_data, 1, "none", out, False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def restored_logging():
    """``run_job`` reconfigures the root logger for its script; put pytest's handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_full_disk_no_writer_named_is_still_one_line(tmp_path, capfd, restored_logging):
    """The last resort in every script: an ``OSError`` of errno 28 from anywhere else."""
    smk = SimpleNamespace(log=[str(tmp_path / "job.log")], rule="train", output=["results/x/model.keras"])
    with pytest.raises(SystemExit) as exit_info:
        run_job(smk, lambda _: disk_full())
    assert exit_info.value.code == 1
    line = "layerscope: rule train failed: " + FULL_DISK.format("the outputs of rule train (results/x/model.keras)")
    assert capfd.readouterr().err == line + "\n"
    assert "Traceback" not in (tmp_path / "job.log").read_text()


@pytest.fixture
def python_threshold():
    """Python's own collector threshold for one test (conftest runs the tests at the job's)."""
    outside = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*outside)


def test_a_job_runs_with_the_raised_collector_threshold_and_still_collects_cycles(
    tmp_path, restored_logging, python_threshold
):
    """run_job raises only the young generation's threshold, for the job alone; a cycle is still freed."""
    before = gc.get_threshold()
    seen = {}

    class Node:
        pass

    def job(_):
        seen["threshold"] = gc.get_threshold()
        node = Node()
        node.self = node  # a cycle: only the collector can free it
        ref = weakref.ref(node)
        del node
        keep = [[] for _ in range(12 * JOB_GC_THRESHOLD)]  # live allocations: young passes, and one of gen 1
        seen["freed"] = ref() is None
        del keep

    smk = SimpleNamespace(log=[str(tmp_path / "job.log")], rule="tables", output=[])
    run_job(smk, job)
    assert seen == {"threshold": (JOB_GC_THRESHOLD, *before[1:]), "freed": True}
    assert gc.get_threshold() == before
    with pytest.raises(SystemExit):
        run_job(smk, lambda _: disk_full())
    assert gc.get_threshold() == before


# image sizes the networks cannot take


@pytest.mark.parametrize("size", [[8, 8], [31, 64], [64, 16]])
def test_an_image_size_below_vgg16s_minimum_fails_validation_naming_the_key(size):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["data"]["image_size"] = size
    with pytest.raises(WorkflowError, match="image_size"):
        validate(config, SCHEMA)
    config["data"]["image_size"] = [32, 32]
    validate(config, SCHEMA)


def test_lenet5_names_its_own_minimum_input_size():
    with pytest.raises(LayerscopeError, match="LeNet-5 needs input at least 19x19"):
        lenet5((18, 40, 3), 2)
    assert tuple(lenet5((19, 19, 3), 2).get_layer("c5").output.shape[1:]) == (1, 1, 120)


# image names relative to the data source


def test_outputs_name_images_relative_to_the_data_source(tmp_path):
    """The same folder at two places (two checkouts, two machines) gives one manifest, byte for byte."""
    for c, label in enumerate(["a", "b"]):
        for i in range(6):
            write_png(tmp_path / "one" / "images" / label / f"{i}.png", seed=10 * c + i)
    shutil.copytree(tmp_path / "one", tmp_path / "elsewhere" / "two")
    for name, folder in (("x", tmp_path / "one/images"), ("y", tmp_path / "elsewhere/two/images")):
        prepare(DataSettings(source="folder", path=str(folder), image_size=(8, 8), val_fraction=0.5), tmp_path / name)
    manifest = (tmp_path / "x/manifest.csv").read_bytes()
    assert manifest == (tmp_path / "y/manifest.csv").read_bytes()
    assert str(tmp_path).encode() not in manifest
    assert set(pd.read_csv(tmp_path / "x/manifest.csv")["path"]) == {f"{c}/{i}.png" for c in "ab" for i in range(6)}
    elpv = prepare(DataSettings(source="elpv", image_size=(8, 8), max_per_class=3, val_fraction=0.5), tmp_path / "elpv")
    assert all(path.startswith("images/cell") for path in elpv.manifest["path"])


# a missing weights file and a batch larger than the training split


def test_a_batch_larger_than_the_training_split_stops_the_job_naming_the_key(tmp_path, tiny_data):
    config = lenet_config(batch_size=19)  # the split has 18 images
    files = RunFiles(tmp_path / "run")
    with pytest.raises(
        LayerscopeError, match=r"training.batch_size 19 is larger than the training split \(18 images\)"
    ):
        train_run(
            parse_run_id("lenet5-tanh-sgd", config["training"]),
            tiny_data,
            files,
            **job_settings("lenet5-tanh-sgd", config),
        )
    assert not files.root.exists()
