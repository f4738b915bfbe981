"""The data stage: source -> subsample -> hash and decode once -> split -> files.

Outputs (all written atomically, byte-identical on rerun):
``manifest.csv`` (path, label, group, split, sha256), ``<split>_images.npy``
(uint8, N x H x W x 3, in manifest order), ``<split>_labels.npy`` (int64 class
indices), ``classes.json``, ``class_counts.csv`` and ``class_counts.png``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.provenance import sha256_file
from layerscope.data.counts import class_counts, plot_class_counts
from layerscope.data.images import FULL_16_BIT, BadImageError, load_image
from layerscope.data.sources import Source, load_source
from layerscope.data.splits import SPLITS, assign_splits, check_no_leakage, interleaved_order

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section of the config, plus the experiment seed.

    Attributes:
        source: the dataset source name (see :func:`layerscope.data.sources.load_source`).
        path: the dataset's folder, for sources read from disk.
        classes: the class names to keep, in index order (None: every label found).
        image_size: (H, W) every image is decoded to.
        test_fraction: share of each class held out for testing.
        val_fraction: share of each class held out for validation.
        max_per_class: cap on images per class (None: all), subsampled with ``seed``.
        on_bad_image: "error" stops on an unreadable image, "skip" drops and counts it.
        bit_depth_range: the raw value that becomes 255 in images of more than 8 bits per pixel.
        seed: the experiment seed, for subsampling and splitting.
    """

    source: str = "elpv"
    path: str | None = None
    classes: list[str] | None = None
    image_size: tuple[int, int] = (128, 128)
    test_fraction: float = 0.25
    val_fraction: float = 0.1
    max_per_class: int | None = None
    on_bad_image: str = "error"
    bit_depth_range: int = FULL_16_BIT
    seed: int = 42

    @classmethod
    def from_config(cls, data: dict, seed: int) -> DataSettings:
        """Settings from a validated config's ``data`` mapping.

        Args:
            data: the config's ``data`` section; unknown keys are ignored.
            seed: the experiment seed.

        Returns:
            The settings, ``image_size`` as a tuple.
        """
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["image_size"] = tuple(fields.get("image_size", cls.image_size))
        return cls(**fields, seed=seed)


def output_files(out_dir: str | os.PathLike) -> list[Path]:
    """Every file the data stage writes, in a fixed order.

    Args:
        out_dir: the data stage's output folder.

    Returns:
        The paths, so the rule and the stage agree on one list.
    """
    out = Path(out_dir)
    arrays = [split_file(out, split, kind) for split in SPLITS for kind in ("images", "labels")]
    names = ["manifest.csv", "classes.json", "class_counts.csv", "class_counts.png"]
    return [out / name for name in names] + arrays


def split_file(data_dir: str | os.PathLike, split: str, kind: str) -> Path:
    """The data stage's array file ``<split>_<kind>.npy`` (kind "images" or "labels")."""
    return Path(data_dir) / f"{split}_{kind}.npy"


def subsample(table: pd.DataFrame, max_per_class: int, seed: int) -> pd.DataFrame:
    """At most ``max_per_class`` rows per label, groups kept in proportion (seeded)."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted(table["label"].unique()):
        keep.extend(interleaved_order(table[table["label"] == label], rng)[:max_per_class])
    return table.loc[sorted(keep)].reset_index(drop=True)


def decode_all(table: pd.DataFrame, root: Path, settings: DataSettings) -> tuple[pd.DataFrame, np.ndarray]:
    """Hash and decode every file once (paths relative to ``root``); drop (and count) bad ones when asked to skip."""
    images, hashes, kept, skipped = [], [], [], []
    for index, name in enumerate(tqdm(table["path"], desc="decoding images", unit="img", mininterval=2)):
        path = root / name
        if not path.is_file():
            raise LayerscopeError(f"image file not found: {path}")
        try:
            images.append(load_image(path, settings.image_size, settings.bit_depth_range))
        except BadImageError:
            if settings.on_bad_image != "skip":
                raise
            skipped.append(path)
            continue
        hashes.append(sha256_file(path))
        kept.append(index)
    if skipped:
        log.warning("skipped %d unreadable image(s) (data.on_bad_image: skip):", len(skipped))
        for path in skipped:
            log.warning("  skipped %s", path)
    out = table.iloc[kept].reset_index(drop=True).assign(sha256=hashes)
    if out.empty:
        raise LayerscopeError("no readable images left after skipping bad ones")
    return out, np.stack(images)


def check_classes(table: pd.DataFrame, classes: tuple[str, ...], settings: DataSettings) -> None:
    """Stop before training on a dataset that lost a class.

    At least two classes, and every class of the order (``data.classes`` or the labels
    found) keeps at least one image after unreadable ones are skipped (else a classifier of
    k classes trains on fewer, silently).
    """
    where = f"data.source: {settings.source}, data.path: {settings.path}, data.on_bad_image: {settings.on_bad_image}"
    if len(classes) < 2:
        raise LayerscopeError(
            f"the dataset has {len(classes)} class(es) ({', '.join(classes) or 'none'}); "
            f"a classifier needs at least 2 ({where})"
        )
    present = set(table["label"])
    empty = [label for label in classes if label not in present]
    if empty:
        raise LayerscopeError(
            f"class(es) {', '.join(repr(c) for c in empty)} have no images"
            f"{' left after skipping unreadable ones' if settings.on_bad_image == 'skip' else ''} ({where}); "
            "add images, fix the unreadable ones, or drop the class from data.classes"
        )


def prepare(settings: DataSettings, out_dir: str | os.PathLike) -> pd.DataFrame:
    """Run the data stage into ``out_dir``: every file of :func:`output_files`, written atomically.

    Args:
        settings: the data settings, usually :meth:`DataSettings.from_config`.
        out_dir: the folder to write into (created if missing).

    Returns:
        The manifest: one row per kept image with path (relative to the source's root, see
        :class:`layerscope.data.sources.Source`), label, group, split and sha256.

    Raises:
        LayerscopeError: an unknown source, a missing or (unless skipped) unreadable image,
            fewer than two classes, a class with no images or too few to split, or a leak
            between splits.
    """
    source: Source = load_source(settings.source, settings.path, settings.classes)
    table = source.table
    log.info("source %s: %d images in %d classes", settings.source, len(table), len(source.classes))
    if settings.max_per_class:
        table = subsample(table, settings.max_per_class, settings.seed)
        log.info("subsampled to at most %d per class: %d images", settings.max_per_class, len(table))
    check_classes(table, source.classes, settings)
    table, images = decode_all(table, source.root, settings)
    check_classes(table, source.classes, settings)
    if "split" not in table.columns:
        table["split"] = assign_splits(table, settings.test_fraction, settings.val_fraction, settings.seed)
    check_no_leakage(table)
    manifest = table[["path", "label", "group", "split", "sha256"]]
    _write(manifest, images, source.classes, Path(out_dir))
    return manifest


def _write(manifest: pd.DataFrame, images: np.ndarray, classes: tuple[str, ...], out: Path) -> None:
    """Write every output atomically; the manifest last so its presence means done."""
    index_of = {name: i for i, name in enumerate(classes)}
    for split in SPLITS:
        rows = (manifest["split"] == split).to_numpy()
        labels = manifest.loc[rows, "label"].map(index_of).to_numpy(dtype=np.int64)
        for kind, array in (("images", images[rows]), ("labels", labels)):
            with atomic_path(split_file(out, split, kind)) as tmp:
                np.save(tmp, array)
        log.info("%s: %d images", split, int(rows.sum()))
    write_text(out / "classes.json", json.dumps(list(classes), indent=1) + "\n")
    counts = class_counts(manifest, classes)
    with atomic_path(out / "class_counts.csv") as tmp:
        counts.to_csv(tmp)
    plot_class_counts(counts, out / "class_counts.png", title=f"class frequency per split ({len(manifest)} images)")
    with atomic_path(out / "manifest.csv") as tmp:
        manifest.to_csv(tmp, index=False)


def load_split(data_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The decoded images and integer labels of one split.

    Args:
        data_dir: the data stage's output folder.
        split: a split name from :data:`layerscope.data.splits.SPLITS`.

    Returns:
        ``(images, labels)``: uint8 (N, H, W, C) images and int64 (N,) class indices.

    Raises:
        LayerscopeError: a missing or damaged array, named with the command that rewrites it.
    """
    return _load_array(split_file(data_dir, split, "images")), _load_array(split_file(data_dir, split, "labels"))


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path)
    except (OSError, ValueError, EOFError) as error:
        raise LayerscopeError(
            f"{path} is missing or damaged ({error}); rerun the data stage: snakemake --forcerun prepare_data"
        ) from error


def load_classes(data_dir: str | os.PathLike) -> list[str]:
    """The class names, index order.

    Args:
        data_dir: the data stage's output folder.

    Returns:
        The class names; a label ``i`` is ``classes[i]``.
    """
    return json.loads((Path(data_dir) / "classes.json").read_text())
