import json
import logging

import numpy as np
import pandas as pd
import pytest
from helpers.images import write_png
from PIL import Image

from layerscope.core.errors import LayerscopeError
from layerscope.data.prepare import DataSettings, load_classes, load_split, output_files, prepare


def settings(path, **overrides):
    return DataSettings(source="folder", path=str(path), image_size=(16, 24), seed=3, **overrides)


def test_outputs_shapes_and_types(image_folder, tmp_path):
    out = tmp_path / "data"
    manifest = prepare(settings(image_folder), out).manifest
    assert all(p.is_file() for p in output_files(out))
    assert list(manifest.columns) == ["path", "label", "group", "split", "sha256"]
    assert load_classes(out) == ["crack", "inclusion", "scratch"]
    # 10 per class: test round(2.5) = 3 (half up), val round(0.7) = 1, train 6
    for split, n in (("train", 18), ("val", 3), ("test", 9)):
        x, y = load_split(out, split)
        assert x.dtype == np.uint8 and x.shape == (n, 16, 24, 3)
        assert y.dtype == np.int64 and len(y) == n == (manifest["split"] == split).sum()
    counts = pd.read_csv(out / "class_counts.csv", index_col="class")
    assert counts.loc["crack"].tolist() == [6, 1, 3, 10]
    assert Image.open(out / "class_counts.png").size[0] > 100


def test_arrays_match_manifest_order(image_folder, tmp_path):
    out = tmp_path / "data"
    manifest = prepare(settings(image_folder), out).manifest
    x, y = load_split(out, "test")
    rows = manifest[manifest["split"] == "test"]
    classes = load_classes(out)
    assert [classes[i] for i in y] == list(rows["label"])
    first = np.asarray(
        Image.open(image_folder / rows["path"].iloc[0]).convert("RGB").resize((24, 16), Image.Resampling.BILINEAR)
    )
    np.testing.assert_array_equal(x[0], first)


def test_rerun_is_byte_identical(image_folder, tmp_path):
    prepare(settings(image_folder), tmp_path / "a")
    prepare(settings(image_folder), tmp_path / "b")
    for a, b in zip(output_files(tmp_path / "a"), output_files(tmp_path / "b")):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_no_leakage_between_splits(image_folder, tmp_path):
    manifest = prepare(settings(image_folder), tmp_path / "d").manifest
    sets = [set(manifest[manifest["split"] == s]["sha256"]) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_grayscale_images_become_three_channels(tmp_path):
    for label in ("a", "b"):
        for i in range(4):
            write_png(tmp_path / "g" / label / f"{i}.png", seed=ord(label) * 10 + i, mode="L")
    out = tmp_path / "data"
    prepare(settings(tmp_path / "g", val_fraction=0.5), out)
    x, _ = load_split(out, "train")
    assert x.shape[-1] == 3
    np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_corrupt_image_is_named_and_nothing_is_written(image_folder, tmp_path):
    bad = image_folder / "crack" / "crack_03.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "data"
    with pytest.raises(LayerscopeError, match="cannot read image .*crack_03.png"):
        prepare(settings(image_folder), out)
    assert not out.exists() or not any(out.iterdir())


def test_corrupt_image_skipped_when_asked(image_folder, tmp_path, caplog):
    (image_folder / "crack" / "crack_03.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING):
        prepared = prepare(settings(image_folder, on_bad_image="skip"), tmp_path / "data")
    assert len(prepared.manifest) == 29
    assert prepared.files.counts() == {"read": 29, "skipped-unreadable": 1}
    assert "30 file(s): 29 read, 1 skipped-unreadable" in caplog.text
    assert "cannot read image" in caplog.text and "crack_03.png" in caplog.text


def test_manifest_split_column_wins(tmp_path):
    lines = ["path,label,split"]
    for i in range(6):
        write_png(tmp_path / f"{i}.png", seed=i)
        lines.append(f"{i}.png,{'ab'[i % 2]},{['train', 'train', 'val', 'val', 'test', 'test'][i]}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    manifest = prepare(
        DataSettings(source="manifest", path=str(tmp_path / "m.csv"), image_size=(8, 8)), tmp_path / "o"
    ).manifest
    assert list(manifest["split"]) == ["train", "train", "val", "val", "test", "test"]


def test_duplicate_across_manifest_splits_is_refused(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", seed=i)
    (tmp_path / "copy.png").write_bytes((tmp_path / "0.png").read_bytes())
    (tmp_path / "m.csv").write_text("path,label,split\n0.png,a,train\n1.png,b,val\n2.png,a,test\ncopy.png,a,test\n")
    with pytest.raises(LayerscopeError, match="leak test data.*copy.png"):
        prepare(DataSettings(source="manifest", path=str(tmp_path / "m.csv"), image_size=(8, 8)), tmp_path / "o")
    assert not (tmp_path / "o" / "manifest.csv").exists()


def test_max_per_class_subsamples_and_is_seeded(image_folder, tmp_path):
    a = prepare(settings(image_folder, max_per_class=8), tmp_path / "a")
    b = prepare(settings(image_folder, max_per_class=8), tmp_path / "b")
    assert a.manifest["label"].value_counts().tolist() == [8, 8, 8]
    assert a.manifest.equals(b.manifest)
    assert a.files.counts() == {"read": 24, "skipped-max-per-class": 6}


def test_settings_from_config_ignores_nothing_it_needs():
    s = DataSettings.from_config({"source": "elpv", "image_size": [32, 48], "max_per_class": 5}, seed=9)
    assert s.image_size == (32, 48) and s.seed == 9 and s.max_per_class == 5
    assert json.loads(json.dumps(s.__dict__))["test_fraction"] == 0.25


def test_one_class_stops_the_data_stage(tmp_path):
    for i in range(4):
        write_png(tmp_path / "only" / "crack" / f"{i}.png", seed=i)
    message = r"1 class\(es\) \(crack\).*at least 2.*data.path: .*only.*on_bad_image: error"
    with pytest.raises(LayerscopeError, match=message):
        prepare(settings(tmp_path / "only"), tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_class_emptied_by_skipping_is_named(image_folder, tmp_path):
    for file in (image_folder / "inclusion").iterdir():
        file.write_bytes(b"not a png")
    with pytest.raises(LayerscopeError) as err:
        prepare(settings(image_folder, on_bad_image="skip"), tmp_path / "data")
    message = str(err.value)
    assert "'inclusion' have no images left after skipping" in message
    assert f"data.path: {image_folder}" in message and "data.on_bad_image: skip" in message
    assert not (tmp_path / "data" / "manifest.csv").exists()


def test_configured_class_without_images_is_named(tmp_path):
    lines = ["path,label"] + [f"{i}.png,{'ab'[i % 2]}" for i in range(6)]
    for i in range(6):
        write_png(tmp_path / f"{i}.png", seed=i)
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    config = DataSettings(source="manifest", path=str(tmp_path / "m.csv"), classes=["a", "b", "c"], image_size=(8, 8))
    message = r"class\(es\) 'c' have no images \(data.source: manifest, data.path: .*m.csv"
    with pytest.raises(LayerscopeError, match=message):
        prepare(config, tmp_path / "o")


def test_a_truncated_or_missing_array_is_named_with_the_command_that_rewrites_it(image_folder, tmp_path):
    out = tmp_path / "data"
    prepare(settings(image_folder), out)
    images = out / "train_images.npy"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(LayerscopeError, match=r"train_images\.npy is missing or damaged.*--forcerun prepare_data"):
        load_split(out, "train")
    (out / "test_labels.npy").unlink()
    with pytest.raises(LayerscopeError, match=r"test_labels\.npy is missing or damaged"):
        load_split(out, "test")
