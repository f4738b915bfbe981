"""What a real image folder holds: every file read as a viewer shows it, or named with its reason.

Each test writes tiny files with Pillow (or by hand where Pillow cannot write the kind)
and calls the data stage's library directly: the decoded array equals the viewer's image
(turned, composited, scaled), or the file account names the file and the reason.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import struct
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from helpers import REPO
from helpers.images import write_png
from PIL import ExifTags, Image, ImageCms
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from layerscope.core.config_types import integers_as_int
from layerscope.core.errors import LayerscopeError
from layerscope.data import images
from layerscope.data.images import BadImageError, read_image
from layerscope.data.prepare import DataSettings, FileReport, prepare
from layerscope.data.sources import list_folder, listing_digest, load_source, readable_suffixes

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def settings(root, **overrides) -> DataSettings:
    fields = {"image_size": (8, 8), "val_fraction": 0.5, "seed": 1, **overrides}
    return DataSettings(source="folder", path=str(root), **fields)


def two_classes(root: Path, per_class: int = 6) -> Path:
    for c, label in enumerate("ab"):
        for i in range(per_class):
            write_png(root / label / f"{i}.png", seed=100 * c + i)
    return root


def pattern(height: int, width: int) -> np.ndarray:
    """A smooth, asymmetric RGB image: every turn and flip of it differs (JPEG keeps it closely)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 90)]).astype(np.uint8)


def write_png16(path: Path, array) -> Path:
    """A 16-bit PNG of grey (H, W), grey + alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4) values.

    Written by hand: Pillow writes 16-bit grey PNGs only.
    """
    array = np.asarray(array, dtype=">u2")
    channels = 1 if array.ndim == 2 else array.shape[2]
    rows = b"".join(b"\x00" + row.tobytes() for row in array.reshape(array.shape[0], -1))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", array.shape[1], array.shape[0], 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


# EXIF orientation


@pytest.mark.parametrize(("tag", "turns"), [(3, 2), (6, -1), (8, 1)])  # 180, 90 clockwise, 90 anticlockwise
def test_exif_orientation_is_applied_as_a_viewer_does(tmp_path, tag, turns):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = tag
    Image.fromarray(pattern(16, 24)).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))  # the raw pixels, as before
    upright = np.rot90(stored, turns)
    decoded = read_image(tmp_path / "phone.jpg", upright.shape[:2])
    np.testing.assert_array_equal(decoded.pixels, upright)
    assert decoded.notes == (images.ORIENTED,)
    if tag == 3:
        assert np.abs(decoded.pixels.astype(int) - stored).mean() > 40  # what the raw read was off by


def test_a_jpeg_without_orientation_is_read_as_stored(tmp_path):
    Image.fromarray(pattern(16, 24)).save(tmp_path / "plain.jpg", quality=95)
    decoded = read_image(tmp_path / "plain.jpg", (16, 24))
    np.testing.assert_array_equal(decoded.pixels, np.asarray(Image.open(tmp_path / "plain.jpg")))
    assert decoded.notes == ()


# floating-point images


def test_float_images_map_the_float_range_to_0_255(tmp_path):
    Image.fromarray(np.array([[0, 0.5], [1, 0.25]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    decoded = read_image(tmp_path / "f.tif", (2, 2))
    assert decoded.pixels[..., 0].tolist() == [[0, 128], [255, 64]]  # round(255 v): 127.5 -> 128, 63.75 -> 64
    assert decoded.notes == (images.FLOAT_SCALED,)
    signed = read_image(tmp_path / "f.tif", (2, 2), float_range=(-1.0, 1.0)).pixels
    assert signed[..., 0].tolist() == [[128, 191], [255, 159]]  # round(127.5 (v + 1))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([[0, 1.5]], r"f.tif has values 0..1.5, outside 0..1 \(data.float_range\)"),
        ([[-0.25, 1]], r"f.tif has values -0.25..1, outside 0..1"),
        ([[0, np.nan]], "f.tif holds NaN or infinite values"),
    ],
)
def test_float_values_outside_the_range_are_refused_naming_the_file(tmp_path, values, message):
    Image.fromarray(np.array(values, dtype=np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(LayerscopeError, match=message):
        read_image(tmp_path / "f.tif", (2, 2))


def test_a_float_range_that_is_not_increasing_names_the_key():
    with pytest.raises(LayerscopeError, match="data.float_range: low 1.0 must be below high 0.0"):
        DataSettings(float_range=(1.0, 0.0))
    assert DataSettings.from_config({"float_range": [0, 4095]}, 1).float_range == (0, 4095)


# transparency


def rgba_half_transparent() -> np.ndarray:
    """2 x 4 RGBA: left half opaque, right half transparent over a hidden colour, one pixel half transparent."""
    pixels = np.zeros((2, 4, 4), dtype=np.uint8)
    pixels[:, :2] = (200, 100, 50, 255)
    pixels[:, 2:] = (9, 9, 9, 0)  # what a raw read used to show
    pixels[1, 1, 3] = 128
    return pixels


@pytest.mark.parametrize(("background", "half"), [(0, [100, 50, 25]), (255, [227, 177, 152])])
def test_transparency_is_composited_on_the_background(tmp_path, background, half):
    Image.fromarray(rgba_half_transparent()).save(tmp_path / "cutout.png")
    decoded = read_image(tmp_path / "cutout.png", (2, 4), background=background)
    assert decoded.pixels[0, 0].tolist() == [200, 100, 50]
    assert (decoded.pixels[:, 2:] == background).all()
    # a * colour + (1 - a) * background with a = 128 / 255: 200 -> 100.4 on black, 227.4 on white
    assert decoded.pixels[1, 1].tolist() == half
    assert decoded.notes == (images.COMPOSITED,)


def test_every_kind_of_transparency_is_composited(tmp_path):
    palette = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), mode="L").convert("P")
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.save(tmp_path / "palette.png", transparency=0)  # index 0 (red) transparent
    Image.new("RGB", (2, 1), (10, 20, 30)).save(tmp_path / "key.png", transparency=(10, 20, 30))
    Image.fromarray(np.array([[[90, 255], [90, 0]]], dtype=np.uint8), mode="LA").save(tmp_path / "la.png")
    write_png16(tmp_path / "la16.png", [[[40000, 65535], [40000, 0]]])
    Image.fromarray(np.array([[500, 40000]], dtype=np.uint16)).save(tmp_path / "key16.png", transparency=500)
    Image.new("RGBA", (2, 1), (1, 2, 3, 255)).save(tmp_path / "opaque.png")
    read = {name: read_image(tmp_path / name, (1, 2), background=255) for name in os.listdir(tmp_path)}
    assert read["palette.png"].pixels[0].tolist() == [[255, 255, 255], [0, 0, 255]]
    assert read["key.png"].pixels[0].tolist() == [[255, 255, 255]] * 2
    assert read["la.png"].pixels[0].tolist() == [[90, 90, 90], [255, 255, 255]]
    assert read["la16.png"].pixels[0, 1].tolist() == [255, 255, 255]
    assert read["key16.png"].pixels[0].tolist() == [[255, 255, 255], [156, 156, 156]]  # 40000 / 257 = 155.6
    composited = ("palette.png", "key.png", "la.png", "la16.png")
    assert all(read[name].notes == (images.COMPOSITED,) for name in composited)
    assert read["key16.png"].notes == (images.HIGH_BIT_SCALED, images.COMPOSITED)
    assert read["opaque.png"].notes == ()  # an alpha channel that hides nothing is no composite


# suffixes


def test_every_suffix_pillow_reads_is_read_and_the_rest_are_counted_and_named(tmp_path, caplog):
    root = two_classes(tmp_path / "img", per_class=4)
    Image.fromarray(pattern(8, 8)).save(root / "a" / "camera.jfif", format="JPEG")
    Image.fromarray(pattern(8, 8)).save(root / "a" / "scan.ppm")
    Image.fromarray(pattern(8, 8)).save(root / "a" / "UPPER.PNG")
    Image.fromarray(pattern(8, 8)).save(root / "b" / "web.webp", lossless=True)
    (root / "a" / "notes.txt").write_text("exposure 20 ms\n")
    (root / "b" / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    Image.fromarray(pattern(8, 8)).save(root / "b" / "no_suffix", format="PNG")
    with caplog.at_level(logging.INFO, logger="layerscope.data.prepare"):
        prepared = prepare(settings(root), tmp_path / "out")
    assert prepared.files.counts() == {"read": 12, "skipped-suffix": 3}
    assert {"a/camera.jfif", "a/scan.ppm", "a/UPPER.PNG", "b/web.webp"} <= set(prepared.manifest["path"])
    assert prepared.files.reasons["skipped-suffix"] == ["a/notes.txt", "b/no_suffix", "b/phone.heic"]
    assert "15 file(s): 12 read, 3 skipped-suffix" in caplog.text
    assert "suffixes (none), .heic, .txt): a/notes.txt, b/no_suffix, b/phone.heic" in caplog.text


def test_readable_suffixes_are_pillows_less_the_formats_it_cannot_decode():
    suffixes = readable_suffixes()
    read = {".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".bmp", ".mpo"}
    not_read = {".pdf", ".h5", ".hdf", ".grib", ".bufr", ".wmf", ".emf", ".mpg", ".eps", ".ps", ".txt"}
    assert read <= suffixes and not not_read & suffixes
    assert all(suffix == suffix.lower() for suffix in suffixes)


# symlinks


def test_symlinked_subfolders_and_class_folders_are_followed(tmp_path):
    root = tmp_path / "img"
    for i in range(8):
        write_png(root / "a" / f"{i}.png", seed=i)
    for i in range(10):
        write_png(tmp_path / "shared" / "more" / f"{i}.png", seed=100 + i)
        write_png(tmp_path / "elsewhere" / f"{i}.png", seed=200 + i)
    os.symlink(tmp_path / "shared" / "more", root / "a" / "more")
    os.symlink(tmp_path / "elsewhere", root / "b")
    before = listing_digest("folder", str(root))
    prepared = prepare(settings(root), tmp_path / "out")
    assert prepared.manifest["label"].value_counts().to_dict() == {"a": 18, "b": 10}
    assert prepared.files.counts() == {"read": 28}
    write_png(tmp_path / "shared" / "more" / "new.png", seed=300)
    assert listing_digest("folder", str(root)) != before  # an image added behind a link reruns the stage


def test_a_folder_link_back_to_an_ancestor_is_cut_and_named(tmp_path):
    root = two_classes(tmp_path / "img")
    os.symlink("..", root / "a" / "up")
    os.symlink(root, root / "b" / "root")
    prepared = prepare(settings(root, on_bad_image="error"), tmp_path / "out")
    assert len(prepared.manifest) == 12
    assert prepared.files.reasons["skipped-symlink-loop"] == ["a/up/", "b/root/"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda a: os.symlink("gone.png", a / "x.png"),
            "x.png: a dangling symlink \\(to gone.png, which does not exist\\)",
        ),
        (lambda a: (os.symlink("y.png", a / "x.png"), os.symlink("x.png", a / "y.png")), "x.png: a symlink loop"),
    ],
    ids=["dangling", "loop"],
)
def test_a_broken_symlink_is_a_bad_image(tmp_path, make, message):
    root = two_classes(tmp_path / "img")
    make(root / "a")
    with pytest.raises(BadImageError, match=message):
        prepare(settings(root), tmp_path / "stop")
    assert not (tmp_path / "stop" / "manifest.csv").exists()
    skipped = prepare(settings(root, on_bad_image="skip"), tmp_path / "skip")
    assert "a/x.png" in skipped.files.reasons["skipped-unreadable"]
    assert len(skipped.manifest) == 12


def test_a_manifest_row_naming_a_dangling_link_is_a_bad_image(tmp_path):
    csv = manifest_of(tmp_path, ["a", "b"] * 3)
    os.symlink("gone.png", tmp_path / "link.png")
    csv.write_text(csv.read_text() + "link.png,a\n")
    with pytest.raises(BadImageError, match="link.png: a dangling symlink"):
        prepare(DataSettings(source="manifest", path=str(csv), image_size=(8, 8), val_fraction=0.5), tmp_path / "o")
    skipped = prepare(
        DataSettings(source="manifest", path=str(csv), image_size=(8, 8), val_fraction=0.5, on_bad_image="skip"),
        tmp_path / "o",
    )
    assert skipped.files.counts() == {"read": 6, "skipped-unreadable": 1}


# whatever Pillow refuses


def _zero_bytes(a: Path) -> None:
    (a / "x.png").write_bytes(b"")


def _text(a: Path) -> None:
    (a / "x.png").write_text("not an image\n")


def _truncated(a: Path) -> None:
    whole = (a / "0.png").read_bytes()
    (a / "x.png").write_bytes(whole[: len(whole) // 2])


def _fifo(a: Path) -> None:
    os.mkfifo(a / "x.png")  # opening it would wait forever


def _float_rgb(a: Path) -> None:
    tifffile.imwrite(a / "x.tif", np.zeros((4, 4, 3), np.float32), photometric="rgb")


def _signed_8_bit(a: Path) -> None:
    tifffile.imwrite(a / "x.tif", np.full((4, 4), -5, np.int8))  # Pillow would read 251


BAD_KINDS = {
    "zero-byte": (_zero_bytes, "x.png: empty file"),
    "text": (_text, "x.png: cannot identify image file"),
    "truncated": (_truncated, "x.png: image file is truncated"),
    "fifo": (_fifo, "x.png: not a regular file"),
    "float-rgb-tiff": (_float_rgb, "x.tif: cannot identify image file"),
    "signed-8-bit-tiff": (_signed_8_bit, "x.tif: signed 8-bit TIFF"),
}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_whatever_pillow_refuses_is_one_line_naming_the_file_or_skipped_and_named(tmp_path, kind):
    make, message = BAD_KINDS[kind]
    root = two_classes(tmp_path / "img")
    make(root / "a")
    with pytest.raises(BadImageError, match=message) as stopped:
        prepare(settings(root), tmp_path / "stop")
    assert "\n" not in str(stopped.value)
    skipped = prepare(settings(root, on_bad_image="skip"), tmp_path / "skip")
    assert skipped.files.counts() == {"read": 12, "skipped-unreadable": 1}
    name = next(iter(skipped.files.why))
    assert name.startswith("a/x.") and message.split(": ")[1] in skipped.files.why[name]


def test_an_image_past_pillows_decompression_bomb_guard_is_a_bad_image(tmp_path, monkeypatch):
    write_png(tmp_path / "big.png", seed=1, size=20)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 pixels > twice the guard: Pillow raises
    with pytest.raises(BadImageError, match=r"big.png: Image size \(400 pixels\) exceeds limit"):
        read_image(tmp_path / "big.png", (8, 8))


def test_files_outside_class_folders_hidden_ones_and_unlistable_folders_are_named(tmp_path, monkeypatch):
    root = two_classes(tmp_path / "img")
    write_png(root / "stray.png", seed=50)
    (root / "README.md").write_text("the data\n")
    write_png(root / "a" / ".backup" / "0.png", seed=51)
    write_png(root / "b" / "locked" / "0.png", seed=52)
    scandir = os.scandir

    def no_permission(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", no_permission)
    with pytest.raises(BadImageError, match="cannot list folder .*b/locked"):
        prepare(settings(root), tmp_path / "stop")
    prepared = prepare(settings(root, on_bad_image="skip"), tmp_path / "out")
    assert prepared.files.reasons == {
        "skipped-outside-class": ["README.md", "stray.png"],
        "skipped-hidden": ["a/.backup/0.png"],
        "skipped-unlistable-folder": ["b/locked/"],
        "read": sorted(prepared.manifest["path"]),
    }


# the account: log and provenance


def test_the_file_account_counts_per_reason_for_the_provenance_record():
    report = FileReport()
    for i in range(7):
        report.add("read", f"a/{i}.png")
    report.add("skipped-suffix", "a/notes.txt")
    report.add("skipped-hidden", "a/.x.png")
    report.notes["exif-orientation-applied"] = ["a/3.png"]
    assert report.record() == {
        "counts": {"read": 7, "skipped-hidden": 1, "skipped-suffix": 1},
        "notes": {"exif-orientation-applied": 1},
        "examples": {
            "exif-orientation-applied": ["a/3.png"],
            "skipped-hidden": ["a/.x.png"],
            "skipped-suffix": ["a/notes.txt"],
        },
    }


def test_identical_files_are_named_and_kept_in_one_split(tmp_path):
    root = two_classes(tmp_path / "img")
    shutil.copy(root / "a" / "0.png", root / "a" / "copy of 0.png")
    prepared = prepare(settings(root), tmp_path / "out")
    assert prepared.files.notes["same-content-as-another-file"] == ["a/0.png", "a/copy of 0.png"]
    assert prepared.manifest.groupby("sha256")["split"].nunique().max() == 1


# resize modes


def bands() -> Image.Image:
    """20 x 60 (height x width): red, green and blue bands of 20 columns each."""
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    for band in range(3):
        pixels[:, 20 * band : 20 * (band + 1), band] = 255
    return Image.fromarray(pixels)


def test_resize_modes_stretch_pad_and_crop(tmp_path):
    bands().save(tmp_path / "bands.png")

    def decode(mode: str, background: int = 0) -> np.ndarray:
        return read_image(tmp_path / "bands.png", (20, 20), resize=mode, background=background).pixels

    stretch, pad, crop = decode("stretch"), decode("pad", background=7), decode("crop")
    assert stretch[10, 0].tolist() == [255, 0, 0] and stretch[10, 10].tolist() == [0, 255, 0]
    assert stretch[10, 19].tolist() == [0, 0, 255]  # all three bands, squeezed 3:1
    assert (crop == [0, 255, 0]).all()  # the centre 20 x 20: the green band alone
    # the whole image at 1/3: 20 x 7 (width x height), pasted at row (20 - 7) // 2 = 6
    assert (pad[:6] == 7).all() and (pad[13:] == 7).all()
    assert [pad[9, column].tolist() for column in (0, 10, 19)] == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    with pytest.raises(LayerscopeError, match="data.resize: unknown mode 'squash'"):
        decode("squash")


def test_pad_keeps_a_thin_strip_at_least_one_pixel_wide(tmp_path):
    Image.new("RGB", (1, 400), (255, 255, 255)).save(tmp_path / "strip.png")
    padded = read_image(tmp_path / "strip.png", (40, 40), resize="pad").pixels
    assert (padded.max(axis=(0, 2)) > 0).sum() == 1  # one column of the strip, the rest background


def test_resize_is_a_config_key_with_stretch_by_default():
    config = {"experiment": "x"}
    validate(config, str(SCHEMA), set_default=True)
    assert (config["data"]["resize"], config["data"]["background"], config["data"]["float_range"]) == (
        "stretch",
        0,
        [0.0, 1.0],
    )
    assert DataSettings.from_config({"resize": "pad"}, 1).resize == "pad"
    with pytest.raises(WorkflowError, match="resize"):
        validate({"experiment": "x", "data": {"resize": "squash"}}, str(SCHEMA))


# numeric labels


def manifest_of(tmp_path: Path, labels: list[str]) -> Path:
    lines = ["path,label"]
    for i, label in enumerate(labels):
        write_png(tmp_path / f"{i}.png", seed=i)
        lines.append(f"{i}.png,{label}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "m.csv"


def test_numeric_labels_are_ordered_by_value(tmp_path):
    csv = manifest_of(tmp_path, ["10", "2", "1", "0.5"] * 3)
    assert load_source("manifest", str(csv)).classes == ("0.5", "1", "2", "10")  # as text: 0.5, 1, 10, 2
    text = manifest_of(tmp_path / "t", ["b", "10", "a", "2"])
    assert load_source("manifest", str(text)).classes == ("10", "2", "a", "b")  # not all numbers: as text


def test_two_spellings_of_one_number_are_refused_naming_them(tmp_path):
    csv = manifest_of(tmp_path, ["1", "2", "1.0", "2"])
    with pytest.raises(LayerscopeError, match=r"labels '1' \(line 2\) and '1.0' \(line 4\) spell one number \(1\)"):
        load_source("manifest", str(csv))


def test_numeric_class_folders_are_ordered_by_value(tmp_path):
    for label in ("10", "9", "100"):
        write_png(tmp_path / label / "0.png", seed=int(label))
    assert load_source("folder", str(tmp_path)).classes == ("9", "10", "100")
    write_png(tmp_path / "09" / "0.png", seed=1)
    with pytest.raises(LayerscopeError, match="labels '09' and '9' spell one number"):
        load_source("folder", str(tmp_path))


# integer config keys written as floats


def integer_places(node: dict, root: dict, path: tuple = (), items: int = 0):
    """(path, sample, items) of every place the schema types ``integer``: a list's items have ``items`` > 0."""
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    kinds = node.get("type", [])
    if "integer" in ([kinds] if isinstance(kinds, str) else kinds):
        yield path, node.get("minimum", 1), items
    for key, child in node.get("properties", {}).items():
        yield from integer_places(child, root, (*path, key))
    if isinstance(node.get("items"), dict):
        yield from integer_places(node["items"], root, path, items=node.get("minItems", 1))
    for alternative in node.get("oneOf", []):
        yield from integer_places(alternative, root, path)


def required_keys(schema: dict, path: tuple) -> set:
    """The keys an object at ``path`` must hold, through ``properties`` and ``oneOf`` alternatives."""
    nodes = [schema]
    for key in path:
        nodes = [alt for node in nodes for alt in (node, *node.get("oneOf", []))]
        nodes = [node["properties"][key] for node in nodes if key in node.get("properties", {})]
    return {key for node in nodes for alt in (node, *node.get("oneOf", [])) for key in alt.get("required", [])}


def test_every_integer_key_written_as_a_float_is_read_as_an_int():
    schema = yaml.safe_load(SCHEMA.read_text())
    places = list(integer_places(schema, schema))
    assert len(places) >= 30 and (("data", "image_size"), 32, 2) in places and (("seed",), 0, 0) in places
    defaults = {"experiment": "x"}
    validate(defaults, str(SCHEMA), set_default=True)
    validator = jsonschema.Draft202012Validator(schema)
    for path, sample, items in places:
        config = copy.deepcopy(defaults)
        parent = config
        for depth, key in enumerate(path[:-1], start=1):
            if not isinstance(parent.get(key), dict):  # a number's alternative: one per family, say
                parent[key] = dict.fromkeys(required_keys(schema, path[:depth]), float(sample))
            parent = parent[key]
        parent[path[-1]] = [float(sample)] * items if items else float(sample)
        validator.validate(config)  # the schema lets 40.0 through ...
        integers_as_int(config, schema)
        values = parent[path[-1]] if items else [parent[path[-1]]]
        assert all(type(value) is int for value in values), path  # ... and every library gets an int


def test_integral_floats_reach_the_data_stage_as_ints(tmp_path):
    root = two_classes(tmp_path / "img", per_class=8)
    config = {"experiment": "x", "seed": 7.0, "data": {"image_size": [40.0, 40], "max_per_class": 6.0}}
    validate(config, str(SCHEMA), set_default=True)
    integers_as_int(config, SCHEMA)
    config["data"].update(source="folder", path=str(root), val_fraction=0.5)
    prepared = prepare(DataSettings.from_config(config["data"], config["seed"]), tmp_path / "out")
    assert prepared.files.counts() == {"read": 12, "skipped-max-per-class": 4}
    assert np.load(tmp_path / "out" / "train_images.npy").shape[1:] == (40, 40, 3)
    assert config["training"]["epochs"]["freeze"] == 8 and type(config["training"]["momentum"]) is float


def test_a_fractional_integer_key_is_refused_naming_it():
    with pytest.raises(WorkflowError, match=r"40.5 is not of type 'integer'[\s\S]*image_size"):
        validate({"experiment": "x", "data": {"image_size": [40.5, 40]}}, str(SCHEMA))


# a folder of every odd kind


def odd_folder(root: Path) -> dict[str, str]:
    """One file of every odd kind in class ``a`` (class ``b`` plain), and what the stage should do with each."""
    a = root / "a"
    two_classes(root, per_class=6)
    rng = np.random.default_rng(0)

    def noise(height=12, width=12):
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

    write_png16(a / "grey16.png", np.full((12, 12), 40000))
    Image.fromarray(np.full((12, 12), 40000, np.uint16)).save(a / "grey16.tif")
    write_png16(a / "rgb16.png", np.full((12, 12, 3), 957))  # Pillow reads 16-bit colour by its high byte
    palette = Image.fromarray(rng.integers(0, 4, (12, 12), dtype=np.uint8), mode="L").convert("P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
    palette.save(a / "palette_transparent.png", transparency=0)
    Image.new("CMYK", (12, 12), (0, 255, 0, 0)).save(a / "cmyk.jpg")
    frames = [Image.new("L", (12, 12), v) for v in (10, 128, 250)]
    frames[0].save(a / "animated.gif", save_all=True, append_images=frames[1:])
    frames[0].save(a / "multipage.tif", save_all=True, append_images=frames[1:])
    Image.new("LA", (12, 12), (90, 0)).save(a / "grey_alpha.png")
    Image.fromarray(noise()[..., 0] > 127).save(a / "one_bit.png")
    Image.fromarray(noise(2, 600)).save(a / "strip_2x600.png")
    (a / "zero_bytes.png").write_bytes(b"")
    (a / "text.png").write_text("not an image\n")
    Image.fromarray(noise()).save(a / "lossy.webp")
    Image.fromarray(noise()).save(a / "UPPER.PNG")
    Image.fromarray(noise()).save(a / "spaces é 日本.png")
    shutil.copy(a / "0.png", a / "copy of 0.png")
    Image.fromarray(noise()).save(a / "camera.jfif", format="JPEG")
    Image.fromarray(noise()).save(a / "scan.ppm")
    Image.fromarray(noise()).save(a / "jpeg_named.png", format="JPEG")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    Image.fromarray(noise(10, 20)).save(a / "exif6.jpg", exif=exif)
    Image.fromarray(np.full((12, 12), 0.5, np.float32)).save(a / "float01.tif")
    Image.fromarray(noise()).convert("RGBA").save(a / "opaque_rgba.png")
    Image.new("RGB", (12, 12), (10, 20, 30)).save(a / "colour_key.png", transparency=(10, 20, 30))
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.fromarray(noise()).save(a / "lab_profile.png", icc_profile=lab)
    whole = (a / "1.png").read_bytes()
    (a / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.fromarray(noise()).save(a / "no_suffix", format="PNG")
    (a / "notes.txt").write_text("n\n")
    (a / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (a / "scan.pdf").write_bytes(b"%PDF-1.4\n")
    for suffix in ("bmp", "tga", "ico", "jp2", "qoi", "avif"):
        Image.fromarray(noise()).save(a / f"x.{suffix}")
    tifffile.imwrite(a / "float_rgb.tif", np.zeros((4, 4, 3), np.float32), photometric="rgb")
    os.symlink("missing.png", a / "dangling.png")
    os.symlink("loop2.png", a / "loop1.png")
    os.symlink("loop1.png", a / "loop2.png")
    os.symlink("..", a / "up")
    os.mkfifo(a / "fifo.png")
    write_png(a / "folder.png" / "inside.png", seed=60)
    (a / "._0.png").write_bytes(b"\x00\x05\x16\x07")
    write_png(root / "stray.png", seed=61)
    plain = {f"{c}/{i}.png": "read" for c in "ab" for i in range(6)}
    return plain | {
        "a/grey16.png": "read: high-bit-depth-scaled",
        "a/grey16.tif": "read: high-bit-depth-scaled",
        "a/rgb16.png": "read",
        "a/palette_transparent.png": "read: transparency-composited",
        "a/cmyk.jpg": "read",
        "a/animated.gif": "read: first-frame-only",
        "a/multipage.tif": "read: first-frame-only",
        "a/grey_alpha.png": "read: transparency-composited",
        "a/one_bit.png": "read",
        "a/strip_2x600.png": "read",
        "a/zero_bytes.png": "skipped-unreadable",
        "a/text.png": "skipped-unreadable",
        "a/lossy.webp": "read",
        "a/UPPER.PNG": "read",
        "a/spaces é 日本.png": "read",
        "a/0.png": "read: same-content-as-another-file",
        "a/copy of 0.png": "read: same-content-as-another-file",
        "a/camera.jfif": "read",
        "a/scan.ppm": "read",
        "a/jpeg_named.png": "read",
        "a/exif6.jpg": "read: exif-orientation-applied",
        "a/float01.tif": "read: float-scaled",
        "a/opaque_rgba.png": "read",
        "a/colour_key.png": "read: transparency-composited",
        "a/lab_profile.png": "read: colour-profile-not-applied",
        "a/truncated.png": "skipped-unreadable",
        "a/no_suffix": "skipped-suffix",
        "a/notes.txt": "skipped-suffix",
        "a/photo.heic": "skipped-suffix",
        "a/scan.pdf": "skipped-suffix",
        **{f"a/x.{suffix}": "read" for suffix in ("bmp", "tga", "ico", "jp2", "qoi", "avif")},
        "a/float_rgb.tif": "skipped-unreadable",
        "a/dangling.png": "skipped-unreadable",
        "a/loop1.png": "skipped-unreadable",
        "a/loop2.png": "skipped-unreadable",
        "a/up/": "skipped-symlink-loop",
        "a/fifo.png": "skipped-unreadable",
        "a/folder.png/inside.png": "read",
        "a/._0.png": "skipped-hidden",
        "stray.png": "skipped-outside-class",
    }


def test_a_folder_of_every_odd_kind_is_accounted_for_file_by_file(tmp_path):
    expected = odd_folder(tmp_path / "odd")
    prepared = prepare(settings(tmp_path / "odd", on_bad_image="skip", test_fraction=0.4), tmp_path / "out")
    outcome = {path: reason for reason, paths in prepared.files.reasons.items() for path in paths}
    for note, paths in prepared.files.notes.items():
        for path in paths:
            outcome[path] += f": {note}"
    assert outcome == expected
    assert len(list_folder(tmp_path / "odd").images) == len(prepared.manifest) + 8  # 8 tried and skipped
    names = set(pd.read_csv(tmp_path / "out" / "manifest.csv")["path"])
    assert "a/spaces é 日本.png" in names
