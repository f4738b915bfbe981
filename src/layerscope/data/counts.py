"""Class frequency per split: the table and bar chart (the study's Fig. 15)."""

from __future__ import annotations

import os

import pandas as pd

from layerscope.core.figures import save_figure
from layerscope.data.splits import SPLITS


def class_counts(manifest: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Images per class (rows, in class order) and split (columns), with a total column."""
    counts = (
        pd.crosstab(manifest["label"], manifest["split"])
        .reindex(index=list(classes), columns=list(SPLITS), fill_value=0)
        .astype(int)
    )
    counts["total"] = counts.sum(axis=1)
    counts.index.name = "class"
    return counts


def plot_class_counts(counts: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Grouped bar chart of images per class and split, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(counts) + 2), 3.5), layout="constrained")
    counts[list(SPLITS)].plot.bar(ax=ax, width=0.8, rot=0)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend(title="split")
    save_figure(fig, path)
    plt.close(fig)
