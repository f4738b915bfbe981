"""The data stage: source -> subsample -> hash and decode once -> split -> files.

Outputs (all written atomically, byte-identical on rerun):
``manifest.csv`` (path, label, group, split, sha256), ``<split>_images.npy``
(uint8, N x H x W x 3, in manifest order), ``<split>_labels.npy`` (int64 class
indices), ``classes.json``, ``class_counts.csv`` and ``class_counts.png``.

Every file of the source is accounted for (:class:`FileReport`): read, or left out for a
named reason, counted per reason in the log and the stage's provenance record.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.provenance import sha256_file
from layerscope.data.counts import class_counts, plot_class_counts
from layerscope.data.images import FULL_16_BIT, UNIT_RANGE, BadImageError, read_image
from layerscope.data.sources import UNLISTABLE, Source, load_source
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
        bit_depth_range: the raw value that becomes 255 in integer images of more than 8 bits per pixel.
        float_range: the (low, high) values that become 0 and 255 in floating-point images.
        background: grey level that transparent pixels and ``pad`` margins become.
        resize: ``stretch``, ``pad`` or ``crop`` (see :func:`layerscope.data.images.fit`).
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
    float_range: tuple[float, float] = UNIT_RANGE
    background: int = 0
    resize: str = "stretch"
    seed: int = 42

    def __post_init__(self) -> None:
        """Refuse a float range the schema cannot check (low below high)."""
        low, high = self.float_range
        if not low < high:
            raise LayerscopeError(f"data.float_range: low {low} must be below high {high}")

    @classmethod
    def from_config(cls, data: dict, seed: int) -> DataSettings:
        """Settings from a validated config's ``data`` mapping.

        Args:
            data: the config's ``data`` section; unknown keys are ignored.
            seed: the experiment seed.

        Returns:
            The settings, ``image_size`` and ``float_range`` as tuples.
        """
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("image_size", "float_range"):
            fields[key] = tuple(fields.get(key, getattr(cls, key)))
        return cls(**fields, seed=seed)


READ = "read"
UNREADABLE = "skipped-unreadable"
SUBSAMPLED = "skipped-max-per-class"
SAME_CONTENT = "same-content-as-another-file"
"""A note: identical bytes read under several paths (one split holds them all; two labels stop the stage)."""
SHOWN = 5
"""Paths named per reason in the log (beyond unreadable files, all named) and provenance."""

REASON_TEXT = {
    "skipped-hidden": "a path part starts with '.'",
    "skipped-suffix": "not a suffix Pillow reads, see docs/own-images.md",
    "skipped-outside-class": "not inside a class folder",
    "skipped-symlink-loop": "a linked folder inside itself, not walked again",
    UNLISTABLE: "a folder that cannot be listed, data.on_bad_image: skip",
    UNREADABLE: "a bad image, data.on_bad_image: skip",
    SUBSAMPLED: "beyond data.max_per_class",
}


@dataclass
class FileReport:
    """Why each file of the source was or was not read, and what was done to those read.

    Attributes:
        reasons: reason -> paths (as the manifest names them): ``read`` and the reasons of
            :data:`REASON_TEXT`.
        notes: note -> paths of files read with that departure from their stored pixels
            (the notes of :mod:`layerscope.data.images`).
        why: path -> message, for the unreadable files.
    """

    reasons: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, path: str) -> None:
        """Record ``path`` under ``reason``."""
        self.reasons.setdefault(reason, []).append(path)

    def counts(self) -> dict[str, int]:
        """Files per reason, ``read`` first, then by reason name."""
        order = sorted(self.reasons, key=lambda reason: (reason != READ, reason))
        return {reason: len(self.reasons[reason]) for reason in order}

    def record(self) -> dict:
        """The report for the provenance record: counts, notes and the first paths of each."""
        return {
            "counts": self.counts(),
            "notes": {note: len(paths) for note, paths in sorted(self.notes.items())},
            "examples": {
                key: paths[:SHOWN] for key, paths in sorted({**self.reasons, **self.notes}.items()) if key != READ
            },
        }

    def write_log(self, where: str) -> None:
        """One line of counts, then a line per reason and note naming its first files (every unreadable one)."""
        counts = self.counts()
        summary = ", ".join(f"{n} {reason}" for reason, n in counts.items())
        level = logging.INFO if set(counts) <= {READ, SUBSAMPLED} else logging.WARNING
        log.log(level, "%s: %d file(s): %s", where, sum(counts.values()), summary)
        for reason in counts:
            if reason == READ:
                continue
            paths = self.reasons[reason]
            extra = ""
            if reason == "skipped-suffix":
                extra = "; suffixes " + ", ".join(sorted({Path(p).suffix.lower() or "(none)" for p in paths}))
            log.log(level, "  %s (%d, %s%s): %s", reason, len(paths), REASON_TEXT[reason], extra, _first(paths))
            for path in paths if reason == UNREADABLE else ():
                log.warning("    %s", self.why[path])
        for note, paths in sorted(self.notes.items()):
            log.info("  read with %s (%d): %s", note, len(paths), _first(paths))


def _first(paths: list[str]) -> str:
    more = len(paths) - SHOWN
    return ", ".join(paths[:SHOWN]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Prepared:
    """What the data stage made: the manifest it wrote and the account of every file."""

    manifest: pd.DataFrame
    files: FileReport


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


def decode_all(
    table: pd.DataFrame, root: Path, settings: DataSettings, report: FileReport
) -> tuple[pd.DataFrame, np.ndarray]:
    """Hash and decode every file once (paths relative to ``root``), recording each in ``report``.

    Bad images stop the stage, or are dropped and recorded when ``data.on_bad_image`` is
    ``skip``. A path that does not exist at all (no file, no link) always stops it.
    """
    images, hashes, kept = [], [], []
    for index, name in enumerate(tqdm(table["path"], desc="decoding images", unit="img", mininterval=2)):
        path = root / name
        if not os.path.lexists(path):
            raise LayerscopeError(f"image file not found: {path}")
        try:
            decoded = read_image(
                path,
                settings.image_size,
                settings.bit_depth_range,
                float_range=settings.float_range,
                background=settings.background,
                resize=settings.resize,
            )
        except BadImageError as err:
            if settings.on_bad_image != "skip":
                raise
            report.add(UNREADABLE, name)
            report.why[name] = str(err)
            continue
        images.append(decoded.pixels)
        for note in decoded.notes:
            report.notes.setdefault(note, []).append(name)
        hashes.append(sha256_file(path))
        kept.append(index)
        report.add(READ, name)
    out = table.iloc[kept].reset_index(drop=True).assign(sha256=hashes)
    if out.empty:
        raise LayerscopeError("no readable images left after skipping bad ones")
    return out, np.stack(images)


def account_left_out(source: Source, settings: DataSettings, report: FileReport) -> None:
    """Record the files a folder source left out; an unlistable folder is a bad image."""
    for reason, paths in source.left_out.items():
        if reason == UNLISTABLE and settings.on_bad_image != "skip":
            raise BadImageError(
                f"cannot list folder {source.root / paths[0]} (no permission?); data.on_bad_image: skip leaves it out"
            )
        for path in paths:
            report.add(reason, path)


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


def prepare(settings: DataSettings, out_dir: str | os.PathLike) -> Prepared:
    """Run the data stage into ``out_dir``: every file of :func:`output_files`, written atomically.

    Args:
        settings: the data settings, usually :meth:`DataSettings.from_config`.
        out_dir: the folder to write into (created if missing).

    Returns:
        The manifest: one row per kept image with path (relative to the source's root, see
        :class:`layerscope.data.sources.Source`), label, group, split and sha256; and the
        account of every file of the source (also in the log).

    Raises:
        LayerscopeError: an unknown source, a missing or (unless skipped) unreadable image,
            fewer than two classes, a class with no images or too few to split, or a leak
            between splits.
    """
    source: Source = load_source(settings.source, settings.path, settings.classes)
    report = FileReport()
    account_left_out(source, settings, report)
    table = source.table
    log.info("source %s: %d images in %d classes", settings.source, len(table), len(source.classes))
    if settings.max_per_class:
        kept = subsample(table, settings.max_per_class, settings.seed)
        for path in sorted(set(table["path"]) - set(kept["path"])):
            report.add(SUBSAMPLED, path)
        table = kept
        log.info("subsampled to at most %d per class: %d images", settings.max_per_class, len(table))
    check_classes(table, source.classes, settings)
    log.info(
        "decoding to %d x %d (data.resize: %s, data.background: %d)",
        *settings.image_size,
        settings.resize,
        settings.background,
    )
    table, images = decode_all(table, source.root, settings, report)
    same = table.loc[table["sha256"].duplicated(keep=False), "path"]
    if len(same):
        report.notes[SAME_CONTENT] = sorted(same)
    report.write_log(f"{settings.source} source {settings.path or ''}".rstrip())
    check_classes(table, source.classes, settings)
    if "split" not in table.columns:
        table["split"] = assign_splits(table, settings.test_fraction, settings.val_fraction, settings.seed)
    check_no_leakage(table)
    manifest = table[["path", "label", "group", "split", "sha256"]]
    _write(manifest, images, source.classes, Path(out_dir))
    return Prepared(manifest, report)


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
