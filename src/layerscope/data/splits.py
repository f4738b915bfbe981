"""Seeded, stratified train/val/test splits and the no-leakage invariant.

Each class is split with exact proportions; within a class, its groups (for elpv:
mono/poly cells) are spread proportionally by systematic sampling, so the split is
stratified by label x group even for small strata. Identical files (same sha256)
always share a split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.core.errors import LayerscopeError

SPLITS = ("train", "val", "test")


def _round(x: float) -> int:
    """Round half up (Python's round() rounds half to even)."""
    return int(np.floor(x + 0.5))


def split_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) counts for a class of ``n`` items."""
    n_test = _round(n * test_fraction)
    n_val = _round((n - n_test) * val_fraction)
    return n - n_test - n_val, n_val, n_test


def interleaved_order(items: pd.DataFrame, rng: np.random.Generator) -> list[int]:
    """Row indices of one class, groups interleaved in proportion, each group shuffled."""
    keyed = []
    for group in sorted(items["group"].unique()):
        members = items.index[items["group"] == group].to_numpy()
        members = members[rng.permutation(len(members))]
        for position, index in enumerate(members):
            keyed.append(((position + 0.5) / len(members), group, int(index)))
    return [index for _, _, index in sorted(keyed)]


def assign_splits(table: pd.DataFrame, test_fraction: float, val_fraction: float, seed: int) -> pd.Series:
    """A split name per row of ``table`` (columns label, group, sha256)."""
    _check_duplicate_labels(table)
    first = table.drop_duplicates("sha256")
    rng = np.random.default_rng(seed)
    split_of_sha: dict[str, str] = {}
    for label in sorted(first["label"].unique()):
        items = first[first["label"] == label]
        n_train, n_val, n_test = split_sizes(len(items), test_fraction, val_fraction)
        if min(n_train, n_test) < 1 or (val_fraction > 0 and n_val < 1):
            raise LayerscopeError(
                f"class '{label}' has only {len(items)} distinct image(s): too few to stratify into "
                f"train/val/test with data.test_fraction={test_fraction} and "
                f"data.val_fraction={val_fraction}"
            )
        order = interleaved_order(items, rng)
        names = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
        for index, name in zip(order, names):
            split_of_sha[first.at[index, "sha256"]] = name
    return table["sha256"].map(split_of_sha).rename("split")


def _check_duplicate_labels(table: pd.DataFrame) -> None:
    """Identical files with different labels are a contradiction in the data."""
    labels = table.groupby("sha256")["label"].nunique()
    clash = labels[labels > 1]
    if len(clash):
        rows = table[table["sha256"] == clash.index[0]]
        pairs = ", ".join(f"{p} ({lab})" for p, lab in zip(rows["path"], rows["label"]))
        raise LayerscopeError(f"identical files carry different labels: {pairs}")


def check_no_leakage(table: pd.DataFrame) -> None:
    """Refuse a table in which the same file content appears in two splits."""
    _check_duplicate_labels(table)
    spread = table.groupby("sha256")["split"].nunique()
    leaked = spread[spread > 1]
    if len(leaked):
        rows = table[table["sha256"] == leaked.index[0]]
        where = ", ".join(f"{p} ({s})" for p, s in zip(rows["path"], rows["split"]))
        raise LayerscopeError(
            f"duplicate files in different splits would leak test data into training: {where} "
            f"({len(leaked)} duplicated file(s) in all)"
        )
    for split in ("train", "val", "test"):
        if not (table["split"] == split).any():
            raise LayerscopeError(f"the '{split}' split is empty")
