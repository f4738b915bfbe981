"""Figures of the study's results: validation curves of all runs (Fig. 20) and Table 9 as a heatmap.

Drawn on a bare matplotlib ``Figure`` (Agg canvas), so no display or pyplot state is
needed. Unfinished runs stay visible: listed in the legend, or hatched in the heatmap.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from layerscope.core.errors import LayerscopeError
from layerscope.core.figures import save_figure
from layerscope.core.render import MISSING
from layerscope.train.runs import parse_name

_OPTIMIZER_STYLES = {
    "sgd": ("-", "o"),
    "momentum": ("--", "s"),
    "nag": ("-.", "^"),
    "adam": (":", "D"),
    "rmsprop": ((0, (5, 1, 1, 1)), "v"),
}


def _group(run_id: str) -> tuple[str, int | None]:
    """Runs that differ only by optimizer share a colour; the optimizer sets line and marker."""
    family, k, _ = parse_name(run_id)
    return family, k


def plot_validation_curves(histories: Mapping[str, pd.DataFrame | None], out_png: str | os.PathLike) -> Path:
    """Validation accuracy per epoch of every run in one figure; unfinished runs are named in the legend.

    Args:
        histories: per run id, its history (:func:`layerscope.results.run_files.load_histories`), None if unfinished.
        out_png: where to write the PNG.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: no runs given.
    """
    if not histories:
        raise LayerscopeError(f"{out_png}: no runs given to plot")
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.add_subplot()
    groups = list(dict.fromkeys(_group(run_id) for run_id in histories))
    handles = []
    for run_id, history in histories.items():
        if history is None:
            handles.append(Line2D([], [], color="0.7", ls=":", label=f"{run_id} ({MISSING})"))
            continue
        linestyle, marker = _OPTIMIZER_STYLES.get(parse_name(run_id)[2], ("-", "o"))
        (line,) = ax.plot(
            history["epoch"],
            history["val_accuracy"],
            ls=linestyle,
            marker=marker,
            ms=4,
            color=f"C{groups.index(_group(run_id)) % 10}",
            label=run_id,
        )
        handles.append(line)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy of all runs")
    ax.grid(alpha=0.3)
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize="small",
        ncol=1 + len(handles) // 22,
        frameon=False,
    )
    return save_figure(fig, out_png)


def _frozen(k: int) -> str:
    return {0: "none", 1: "block 1"}.get(k, f"blocks 1-{k}")


def plot_freeze_heatmap(grid_df: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """Table 9 (frozen blocks x optimizer) as an annotated heatmap; missing cells grey, hatched, labelled.

    Args:
        grid_df: the grid of :func:`layerscope.results.tables.freeze_grid`.
        out_png: where to write the PNG.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: an empty grid.
    """
    if grid_df.empty:
        raise LayerscopeError(f"{out_png}: the freeze grid has no cells to plot")
    values = grid_df.to_numpy(dtype=float)
    # at least wide enough for the title, whatever the number of optimizers
    fig = Figure(figsize=(max(4.6, 1.6 + 1.3 * values.shape[1]), 1.2 + 0.7 * values.shape[0]), layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        if np.isnan(value):
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="//", ec="0.55", lw=0))
            ax.text(col, row, MISSING, ha="center", va="center", color="0.25", fontsize="small")
        else:
            ax.text(
                col,
                row,
                f"{value:.3f}",
                ha="center",
                va="center",
                color="black" if image.norm(value) > 0.5 else "white",
            )
    ax.set_xticks(range(values.shape[1]), [str(c) for c in grid_df.columns])
    ax.set_yticks(range(values.shape[0]), [_frozen(k) for k in grid_df.index])
    ax.set_xlabel("optimizer")
    ax.set_ylabel("frozen")
    ax.set_title("Test accuracy by freeze depth and optimizer")
    fig.colorbar(image, ax=ax, label="test accuracy")
    return save_figure(fig, out_png)


SIGNAL_SERIES = (  # column, label, higher is better
    ("faithfulness", "Grad-CAM faithfulness (insertion - deletion AUC)", True),
    ("finetune_change_pct", "net change in fine-tuning (less: freeze)", False),
    ("probe_val_accuracy", "linear probe on block k (val accuracy)", True),
    ("rgn", "relative gradient norm at fine-tuning start (less: freeze)", False),
)


def plot_freeze_recommendation(table: pd.DataFrame, sentence: str, out_png: str | os.PathLike) -> Path:
    """Draw each signal per block (left, scaled to 0..1, 1 = its favoured block) beside the sweep (right).

    A reader sees at once whether the depth a signal favours is the one that tests best.

    Args:
        table: :func:`layerscope.results.recommendation.recommend`'s table.
        sentence: the finding in words, drawn as the title.
        out_png: where to write the figure.

    Returns:
        The written path.
    """
    fig = Figure(figsize=(10, 4.4))
    left, right = fig.subplots(1, 2)
    k = table["frozen_blocks"]
    for (column, label, higher), marker in zip(SIGNAL_SERIES, "osD^", strict=True):
        values = table[column].astype(float)
        if values.notna().sum() < 2:
            continue
        span = values.max() - values.min()
        scaled = (values - values.min()) / span if span > 0 else values * 0 + 0.5
        left.plot(k, scaled if higher else 1 - scaled, marker=marker, label=label)
    left.set_xlabel("block k")
    left.set_ylabel("signal, scaled (1: the block it favours)")
    left.set_ylim(-0.05, 1.05)
    left.legend(loc="best", fontsize=7, framealpha=0.8)
    measured = table.dropna(subset=["test_accuracy"])
    right.errorbar(
        measured["frozen_blocks"],
        measured["test_accuracy"],
        yerr=[
            measured["test_accuracy"] - measured["test_accuracy_ci_low"],
            measured["test_accuracy_ci_high"] - measured["test_accuracy"],
        ],
        fmt="s",
        capsize=4,
        color="black",
    )
    best = table.loc[table["mean_rank"].idxmin(), "frozen_blocks"] if table["mean_rank"].notna().any() else None
    for ax in (left, right):
        ax.set_xticks(list(k))
        if best is not None:
            ax.axvline(best, color="0.5", ls=":", label=f"recommended: freeze 1-{best}")
    right.set_xlabel("frozen blocks k (sweep, optimizer chosen on validation)")
    right.set_ylabel("test accuracy (95% bootstrap interval)")
    right.set_xlim(0.5, 5.5)
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(sentence, 130)), fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png)
