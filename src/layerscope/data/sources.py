"""Dataset sources: the bundled elpv set, a folder per class, or a CSV manifest.

Each source yields the same table (path, label, group[, split]) and the ordered
list of class names, so everything downstream is source-agnostic. Paths in the table
are relative to the source's root (the elpv package's data folder, ``data.path`` for a
folder, the manifest's folder), so outputs that name images read the same whichever
folder or machine ran them.

A folder source is walked following symlinks (a link back to an ancestor folder is cut),
and every file under it is either tried as an image or left out for a named reason
(:class:`FolderListing`): hidden files and folders (a path component starting with ``.``:
``.ipynb_checkpoints``, macOS ``._*`` AppleDouble files, editor backups), files outside a
class folder, and suffixes Pillow does not read. A manifest is taken as written, since
each of its rows is a deliberate choice.

Class order: ``data.classes``, else the labels sorted, by value when all are numbers.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from layerscope.core.errors import LayerscopeError
from layerscope.data.splits import SPLITS

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
        left_out: reason -> paths (relative to ``root``) of the files under a folder source
            that are not in the table (see :class:`FolderListing`); empty for other sources.
    """

    table: pd.DataFrame
    classes: tuple[str, ...]
    root: Path
    left_out: dict[str, list[str]] = field(default_factory=dict)

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
        try:
            files = [root / name for name, _ in list_folder(root).images] if root.is_dir() else []
        except (LayerscopeError, OSError):
            files = []
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
    listing = list_folder(root)
    if not listing.classes:
        raise LayerscopeError(f"data.path: {root} has no class sub-folders")
    order = _class_order(listing.classes, classes, where=str(root))
    rows = [(name, label, "all") for name, label in listing.images]
    empty = [label for label in listing.classes if not any(r[1] == label for r in rows)]
    if empty:
        raise LayerscopeError(
            f"data.path: class folder(s) without images in {root}: {', '.join(empty)}"
            f"{'' if not listing.left_out else ' (files left out: ' + _reason_counts(listing.left_out) + ')'}"
        )
    return Source(pd.DataFrame(rows, columns=["path", "label", "group"]), order, root, listing.left_out)


@dataclass(frozen=True)
class FolderListing:
    """What a folder source holds, file by file.

    Attributes:
        classes: the class folders (non-hidden sub-folders of the root, symlinked ones
            included), sorted by name.
        images: (path relative to the root in POSIX form, class) of every file the data
            stage tries to decode, sorted by path: files with a suffix Pillow reads (see
            :func:`readable_suffixes`) inside a class folder, and broken symlinks there
            (bad images).
        left_out: reason -> relative paths of the files (and folders) not tried, each sorted:
            ``skipped-hidden``, ``skipped-suffix``, ``skipped-outside-class``,
            ``skipped-symlink-loop`` (a linked folder that is its own ancestor; the path ends
            in ``/``) and ``skipped-unlistable-folder``.
    """

    classes: list[str]
    images: list[tuple[str, str]]
    left_out: dict[str, list[str]]


def list_folder(root: Path) -> FolderListing:
    """Walk a folder source, following symlinks (a link back to an ancestor is cut and named).

    Hidden files and folders (a path part starting with ``.``) are walked only to be counted.
    A folder linked twice (not a loop) is walked twice: its images count as duplicates, which
    the splits keep together, and under two classes they stop the stage.
    """
    suffixes = readable_suffixes()
    classes: list[str] = []
    images: list[tuple[str, str]] = []
    left_out: dict[str, list[str]] = {}

    def leave_out(reason: str, parts: tuple[str, ...], folder: bool = False) -> None:
        left_out.setdefault(reason, []).append("/".join(parts) + ("/" if folder else ""))

    def walk(folder: Path, parts: tuple[str, ...], ancestors: frozenset, hidden: bool) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            if not parts:
                raise LayerscopeError(f"data.path: cannot list {root}: {err.strerror}") from None
            leave_out(UNLISTABLE, parts, folder=True)
            return
        for entry in entries:
            here = (*parts, entry.name)
            secret = hidden or entry.name.startswith(".")
            if _is_folder(entry):
                target = os.stat(entry.path)
                key = (target.st_dev, target.st_ino)
                if key in ancestors:
                    leave_out("skipped-symlink-loop", here, folder=True)
                    continue
                if not parts and not secret:
                    classes.append(entry.name)
                walk(Path(entry.path), here, ancestors | {key}, secret)
            elif secret:
                leave_out("skipped-hidden", here)
            elif not parts:
                leave_out("skipped-outside-class", here)
            elif Path(entry.name).suffix.lower() in suffixes or not os.path.exists(entry.path):
                images.append(("/".join(here), here[0]))
            else:
                leave_out("skipped-suffix", here)

    top = os.stat(root)
    walk(root, (), frozenset({(top.st_dev, top.st_ino)}), hidden=False)
    return FolderListing(classes, images, left_out)


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder or a link to one; a symlink loop is not (it is a bad image where an image would be)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


UNLISTABLE = "skipped-unlistable-folder"
"""A folder the walk could not list (no permission): a bad image under ``data.on_bad_image``."""

NOT_PIXEL_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "MPEG", "WMF", "EPS"})
"""Formats Pillow identifies but does not decode without an outside handler or program
(its "identify-only" formats; WMF/EMF decode on Windows only), and EPS/PS: vector
PostScript, which Ghostscript would rasterise at a resolution of its choosing."""


def readable_suffixes() -> frozenset[str]:
    """Lower-case suffixes of every format Pillow reads pixels from (``Image.registered_extensions``).

    Includes ``.mpo`` (cameras' multi-picture JPEG, opened by the JPEG plugin); excludes
    :data:`NOT_PIXEL_FORMATS` and the formats Pillow only writes (PDF, Palm).
    """
    Image.init()
    opened = set(Image.OPEN) | {"MPO"}
    return frozenset(
        suffix
        for suffix, name in Image.registered_extensions().items()
        if name in opened and name not in NOT_PIXEL_FORMATS
    )


def _reason_counts(left_out: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(paths)} {reason}" for reason, paths in sorted(left_out.items()))


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
    first_lines = {label: int(row) + 2 for row, label in table["label"].drop_duplicates().items()}
    order = _class_order(list(first_lines), classes, where=f"manifest {csv}", lines=first_lines)
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


def _class_order(
    found: list[str], classes: list[str] | None, where: str, lines: dict[str, int] | None = None
) -> tuple[str, ...]:
    """The configured class order (``data.classes``) or the labels found, by :func:`label_order`."""
    if not classes:
        return label_order(found, where, lines)
    unknown = [label for label in found if label not in classes]
    if unknown:
        raise LayerscopeError(
            f"{where}: unknown label(s) {', '.join(unknown)} (data.classes lists {', '.join(classes)})"
        )
    return tuple(classes)


def label_order(labels: list[str], where: str, lines: dict[str, int] | None = None) -> tuple[str, ...]:
    """Labels in class order: by value when every label is a finite number, else as text.

    So classes 2, 10 and 1 become 1, 2, 10 (not 1, 10, 2). Two spellings of one number
    ("1" and "1.0", "01", " 1") would become two classes: refused, naming them.

    Args:
        labels: the distinct labels.
        where: the source, for messages.
        lines: the first manifest line of each label, for messages.

    Returns:
        The ordered labels.

    Raises:
        LayerscopeError: two labels spell one number.
    """
    values = {}
    for label in labels:
        try:
            values[label] = float(label)
        except ValueError:
            return tuple(sorted(labels))
        if not math.isfinite(values[label]):
            return tuple(sorted(labels))
    spellings: dict[float, list[str]] = {}
    for label, value in values.items():
        spellings.setdefault(value, []).append(label)
    for value, spelled in spellings.items():
        if len(spelled) > 1:
            named = " and ".join(f"'{s}'" + (f" (line {lines[s]})" if lines else "") for s in sorted(spelled))
            raise LayerscopeError(
                f"{where}: labels {named} spell one number ({value:g}) and would be two classes; "
                "write every label of a class the same way"
            )
    return tuple(sorted(labels, key=values.__getitem__))
