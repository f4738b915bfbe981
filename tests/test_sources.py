import os
from pathlib import Path

import pytest
from helpers.images import write_png

from layerscope.core.errors import LayerscopeError
from layerscope.data.sources import ELPV_CLASSES, listing_digest, load_source


def test_elpv_source_reads_the_packaged_labels():
    source = load_source("elpv")
    table = source.table
    assert len(table) == 2624
    assert source.classes == ELPV_CLASSES
    assert table["label"].value_counts().to_dict() == {"0.00": 1508, "1.00": 715, "0.33": 295, "0.67": 106}
    assert set(table["group"]) == {"mono", "poly"}
    assert all(p.is_file() for p in source.files[:5])
    assert table["path"][0] == "images/cell0001.png"  # relative to the package's data folder


def test_folder_source(image_folder):
    source = load_source("folder", str(image_folder))
    assert source.classes == ("crack", "inclusion", "scratch")
    assert len(source.table) == 30
    assert set(source.table["group"]) == {"all"}


def test_folder_source_class_order_from_config(image_folder):
    order = ["scratch", "crack", "inclusion"]
    assert load_source("folder", str(image_folder), order).classes == tuple(order)
    with pytest.raises(LayerscopeError, match="unknown label.*scratch"):
        load_source("folder", str(image_folder), ["crack", "inclusion"])


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(LayerscopeError, match=f"folder not found: {tmp_path / 'nope'}"):
        load_source("folder", str(tmp_path / "nope"))


def test_source_without_path_names_the_key():
    with pytest.raises(LayerscopeError, match="needs data.path"):
        load_source("manifest")


def write_manifest(tmp_path: Path, lines: list[str]) -> Path:
    for i in range(4):
        write_png(tmp_path / "img" / f"{i}.png", seed=i)
    csv = tmp_path / "manifest.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def test_manifest_source_resolves_relative_paths_and_keeps_splits(tmp_path):
    csv = write_manifest(
        tmp_path,
        ["path,label,group,split", "img/0.png,ok,A,train", "img/1.png,bad,B,test", "img/2.png,ok,,val"],
    )
    source = load_source("manifest", str(csv))
    assert source.classes == ("bad", "ok")
    assert source.table["path"][0] == "img/0.png" and source.files[0] == tmp_path / "img/0.png"
    assert list(source.table["split"]) == ["train", "test", "val"]
    assert list(source.table["group"]) == ["A", "B", "all"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["path,group", "img/0.png,A"], r"lacks column\(s\) \['label'\]"),
        (["path,label,split", "img/0.png,ok,train", "img/1.png,ok,holdout"], "line 3: split 'holdout'"),
        (["path,label", "img/0.png,ok", "img/1.png,"], "line 3: empty label"),
        (["path,label,colour", "img/0.png,ok,red"], r"unknown column\(s\) \['colour'\]"),
    ],
)
def test_manifest_errors_name_the_line_or_column(tmp_path, lines, message):
    csv = write_manifest(tmp_path, lines)
    with pytest.raises(LayerscopeError, match=message):
        load_source("manifest", str(csv))


def test_manifest_unknown_label_names_line_and_label(tmp_path):
    csv = write_manifest(tmp_path, ["path,label", "img/0.png,ok", "img/1.png,dent"])
    with pytest.raises(LayerscopeError, match="line 3: unknown label 'dent'"):
        load_source("manifest", str(csv), ["ok", "bad"])


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(LayerscopeError, match="manifest not found"):
        load_source("manifest", str(tmp_path / "m.csv"))


def test_listing_digest_sees_added_removed_and_replaced_images(image_folder):
    seen = {listing_digest("folder", str(image_folder))}
    write_png(image_folder / "crack" / "new.png", seed=999)
    seen.add(listing_digest("folder", str(image_folder)))
    (image_folder / "scratch" / "scratch_00.png").unlink()
    seen.add(listing_digest("folder", str(image_folder)))
    replaced = image_folder / "inclusion" / "inclusion_03.png"
    write_png(replaced, seed=12345)
    os.utime(replaced, ns=(1, 1))  # other content; another mtime even on a coarse-clock filesystem
    seen.add(listing_digest("folder", str(image_folder)))
    assert len(seen) == 4
    assert listing_digest("folder", str(image_folder)) == listing_digest("folder", str(image_folder))


def test_listing_digest_of_a_manifest_follows_its_images(tmp_path):
    write_png(tmp_path / "img" / "a.png", seed=1)
    (tmp_path / "m.csv").write_text("path,label\nimg/a.png,x\n")
    before = listing_digest("manifest", str(tmp_path / "m.csv"))
    write_png(tmp_path / "img" / "a.png", seed=2, size=21)
    assert listing_digest("manifest", str(tmp_path / "m.csv")) != before


def test_listing_digest_never_raises(tmp_path):
    assert listing_digest("folder", str(tmp_path / "absent")) == listing_digest("folder", str(tmp_path / "gone"))
    assert listing_digest("manifest", str(tmp_path / "absent.csv"))
    assert listing_digest("folder", None) == "no-path"
    assert len(listing_digest("elpv")) == 16
