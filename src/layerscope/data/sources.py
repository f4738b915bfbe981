"""Dataset sources: the bundled elpv set, a folder per class, or a CSV manifest.

Each source yields the same table (path, label, group[, split]) and the ordered
list of class names, so everything downstream is source-agnostic. Paths in the table
are relative to the source's root (the elpv package's data folder, ``data.path`` for a
folder, the manifest's folder), so outputs that name images read the same whichever
folder or machine ran them.

Hidden files and folders (a path component starting with ``.``: ``.ipynb_checkpoints``,
macOS ``._*`` AppleDouble files, editor backups) are never read from a class folder, at
any depth; a manifest is taken as written, since each of its rows is a deliberate choice.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from layerscope.core.errors import LayerscopeError
from layerscope.data.splits import SPLITS

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}

ELPV_CLASSES = ("0.00", "0.33", "0.67", "1.00")
"""elpv labels: the defect probability an expert gave a cell, rounded to two decimals."""


@dataclass(frozen=True)
class Source:
    """A dataset as a table of files plus the class order used for integer labels.

    Attributes:
        table: columns path (relative to ``root``, or absolute where a manifest says so),
            label, group, and optionally split.
        classes: the class order; a label's integer is its position.
        root: the folder the table's paths are relative to.
    """

    table: pd.DataFrame
    classes: tuple[str, ...]
    root: Path

    @property
    def files(self) -> list[Path]:
        """The table's images as paths that open from anywhere."""
        return [self.root / p for p in self.table["path"]]


def load_source(kind: str, path: str | None = None, classes: list[str] | None = None) -> Source:
    """Load a source by its config name (``data.source``)."""
    if kind == "elpv":
        return elpv_source()
    if path is None:
        raise LayerscopeError(f"data.source '{kind}' needs data.path (a folder or CSV file)")
    if kind == "folder":
        return folder_source(path, classes)
    if kind == "manifest":
        return manifest_source(path, classes)
    raise LayerscopeError(f"data.source: unknown source '{kind}' (choose elpv, folder or manifest)")


def listing_digest(kind: str, path: str | None = None) -> str:
    """Digest of the files a source reads: relative path, size and modification time of each.

    Cheap (stat only, no reads), so the workflow computes it on every invocation and the
    data stage reruns when an image is added, removed or replaced, which the folder's own
    modification time does not show. Never raises: a missing or unreadable source digests
    to a marker and the data stage itself reports the problem.
    """
    if kind == "elpv":
        root = _elpv_root()
        files = [root / "labels.csv", *sorted((root / "images").glob("*"))] if root.is_dir() else []
    elif path is None:
        return "no-path"
    elif kind == "folder":
        root = Path(path)
        files = [root / name for name, _ in folder_images(root)[0]] if root.is_dir() else []
    else:
        root = Path(path).parent
        files = [Path(path), *_manifest_paths(Path(path))]
    digest = hashlib.sha256(f"{kind}\n".encode())
    for file in files:
        try:
            stat = file.stat()
            entry = f"{os.path.relpath(file, root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
        except OSError:
            entry = f"{os.path.relpath(file, root)}\tmissing\n"
        digest.update(entry.encode())
    return digest.hexdigest()[:16]


def _manifest_paths(csv: Path) -> list[Path]:
    """The image paths a manifest lists (relative to it), or none if it is unreadable."""
    try:
        paths = pd.read_csv(csv, dtype=str, keep_default_na=False, usecols=["path"])["path"]
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return []
    return [Path(p) if Path(p).is_absolute() else csv.parent / p for p in paths]


def _elpv_root() -> Path:
    return Path(str(importlib.resources.files("elpv_dataset") / "data"))


def elpv_source() -> Source:
    """The elpv-dataset package: 2,624 solar-cell EL images, 4 defect-probability classes."""
    root = _elpv_root()
    labels = root / "labels.csv"
    if not labels.is_file():
        raise LayerscopeError(f"elpv-dataset is installed without its labels file: {labels}")
    raw = pd.read_csv(labels, sep=r"\s+", header=None, names=["path", "probability", "type"])
    table = pd.DataFrame(
        {
            "path": raw["path"].astype(str),
            "label": [f"{p:.2f}" for p in raw["probability"]],
            "group": raw["type"].astype(str),
        }
    )
    return Source(table, ELPV_CLASSES, root)


def folder_source(path: str, classes: list[str] | None = None) -> Source:
    """One sub-folder per class; the group is the class itself (no finer strata)."""
    root = Path(path)
    if not root.is_dir():
        raise LayerscopeError(f"data.path: folder not found: {root}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise LayerscopeError(f"data.path: {root} has no class sub-folders")
    order = _class_order(found, classes, where=str(root))
    images, hidden = folder_images(root)
    if hidden:
        log.info("skipped %d hidden image file(s) under %s (a path part starting with '.')", hidden, root)
    rows = [(name, label, "all") for name, label in images]
    empty = [label for label in found if not any(r[1] == label for r in rows)]
    if empty:
        raise LayerscopeError(f"data.path: class folder(s) without images in {root}: {', '.join(empty)}")
    return Source(pd.DataFrame(rows, columns=["path", "label", "group"]), order, root)


def folder_images(root: Path) -> tuple[list[tuple[str, str]], int]:
    """The images of a folder source and how many hidden ones were passed over.

    Args:
        root: the folder with one sub-folder per class.

    Returns:
        ``(images, hidden)``: (path relative to ``root`` in POSIX form, class) for each image,
        sorted by path, and the count of image files left out because a component of their
        path starts with ``.`` (hidden class folders included).
    """
    images, hidden = [], 0
    for file in sorted(root.rglob("*"), key=lambda f: f.relative_to(root).parts):
        parts = file.relative_to(root).parts
        if len(parts) < 2 or file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
            continue
        if any(part.startswith(".") for part in parts):
            hidden += 1
            continue
        images.append((Path(*parts).as_posix(), parts[0]))
    return images, hidden


def manifest_source(path: str, classes: list[str] | None = None) -> Source:
    """A CSV with path and label columns, optional group and split; paths relative to the CSV."""
    csv = Path(path)
    if not csv.is_file():
        raise LayerscopeError(f"data.path: manifest not found: {csv}")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LayerscopeError(f"manifest {csv} is not a readable CSV: {err}") from None
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise LayerscopeError(f"manifest {csv} lacks column(s) {sorted(missing)}; it needs path and label")
    unknown_cols = set(table.columns) - {"path", "label", "group", "split"}
    if unknown_cols:
        raise LayerscopeError(f"manifest {csv} has unknown column(s) {sorted(unknown_cols)}")
    if table.empty:
        raise LayerscopeError(f"manifest {csv} has no rows")
    _check_repeated_rows(table["path"], csv)
    if "group" not in table.columns:
        table["group"] = "all"
    table.loc[table["group"] == "", "group"] = "all"
    for row, label in enumerate(table["label"], start=2):
        if label == "":
            raise LayerscopeError(f"manifest {csv} line {row}: empty label")
    if "split" in table.columns:
        bad = table.index[~table["split"].isin(SPLITS)]
        if len(bad):
            row = bad[0]
            raise LayerscopeError(
                f"manifest {csv} line {row + 2}: split '{table.at[row, 'split']}' is not one of {', '.join(SPLITS)}"
            )
    if classes:
        unknown = table.index[~table["label"].isin(classes)]
        if len(unknown):
            row = unknown[0]
            raise LayerscopeError(
                f"manifest {csv} line {row + 2}: unknown label '{table.at[row, 'label']}' "
                f"(data.classes lists {', '.join(classes)})"
            )
    order = _class_order(sorted(table["label"].unique()), classes, where=str(csv))
    columns = ["path", "label", "group"] + (["split"] if "split" in table.columns else [])
    return Source(table[columns].reset_index(drop=True), order, csv.parent)


def _check_repeated_rows(paths: pd.Series, csv: Path) -> None:
    """Refuse a manifest that lists one file twice: it would count double in its split.

    Rows name the same file when their paths resolve alike (``a/x.png``, ``./a/x.png`` and
    the absolute path are one file). Identical content under different names is allowed
    (the splits keep such copies together).
    """
    resolved = pd.Series([os.path.normpath(csv.parent / p) for p in paths], index=paths.index)
    repeated = resolved[resolved.duplicated(keep=False)]
    if repeated.empty:
        return
    groups = repeated.groupby(repeated, sort=False).groups
    first = next(iter(groups.values()))
    lines = ", ".join(str(i + 2) for i in first)
    raise LayerscopeError(
        f"manifest {csv} lists {paths[first[0]]} {len(first)} times (lines {lines}); "
        f"{len(groups)} file(s) repeated in all: keep one row per image"
    )


def _class_order(found: list[str], classes: list[str] | None, where: str) -> tuple[str, ...]:
    """The configured class order (``data.classes``) or the sorted labels found."""
    if not classes:
        return tuple(found)
    unknown = [label for label in found if label not in classes]
    if unknown:
        raise LayerscopeError(
            f"{where}: unknown label(s) {', '.join(unknown)} (data.classes lists {', '.join(classes)})"
        )
    return tuple(classes)
