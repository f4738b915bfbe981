"""2D companions of the 3D weight-change figures (matplotlib, no display needed).

Changes are shown relative to each layer's weight L1 norm, so layers of very different
size share one scale; the period change is what shows when a layer stops learning. The
accumulated change sums |W_t - W_prev| over readings every ``period`` steps (it depends on
the period); the net change |W_t - W_0| is drawn beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from layerscope.core.figures import save_figure
from layerscope.weights.store import WeightChangeStore
from layerscope.weights.summary import block_summary, open_readable


def _title(store: WeightChangeStore, what: str) -> str:
    return f"{store.run_id}: {what}" + ("" if store.complete else " (incomplete)")


def _epoch_lines(ax, store: WeightChangeStore) -> None:
    for step in store.readings.loc[store.readings["epoch_end"], "step"]:
        ax.axvline(step, color="0.6", lw=0.6, ls=":")


def plot_period_heatmap(store: WeightChangeStore | str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """Layer x reading heatmap of the change in each period relative to the weight norm.

    Log colour, unchanged layers grey; block boundaries and epoch ends are marked.

    Args:
        store: the run's weight-change store, or its path.
        out_png: where to write the PNG.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: an unreadable store or one with no readings.
    """
    store = open_readable(store)
    table = store.layer_summary().pivot(index="layer", columns="reading", values="period_change_rel")
    values = table.loc[store.layer_names].to_numpy()
    masked = np.ma.masked_less_equal(values, 0)
    steps = store.readings["step"].to_numpy()
    fig = Figure(figsize=(max(6.0, 0.12 * len(steps) + 3), 0.28 * len(store.layer_names) + 1.8))
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        np.arange(len(steps) + 1),
        np.arange(len(store.layer_names) + 1),
        masked,
        norm=LogNorm() if masked.count() else None,
        cmap=colormaps["viridis"].with_extremes(bad="0.85"),
        shading="flat",
    )
    ax.invert_yaxis()
    ax.set_yticks(np.arange(len(store.layer_names)) + 0.5, store.layer_names, fontsize=8)
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 10)).round().astype(int))
    ax.set_xticks(ticks + 0.5, [str(steps[t]) for t in ticks], fontsize=8)
    ax.set_xlabel("training step at reading")
    blocks = list(store.layers["block"])
    for i in range(1, len(blocks)):
        if blocks[i] != blocks[i - 1]:
            ax.axhline(i, color="white", lw=1.2)
    for end in np.flatnonzero(store.readings["epoch_end"].to_numpy())[:-1]:
        ax.axvline(end + 1, color="white", lw=0.8, ls=":")
    fig.colorbar(mesh, ax=ax, label="period change / weight L1 (grey: none)")
    ax.set_title(_title(store, "weight change per period"), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_block_lines(store: WeightChangeStore | str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """One line per block over training: period change (left) and accumulated change (right).

    The net change |W_t - W_0| is dashed in the accumulated change's colour; all are relative
    to the block's weight norm, on a log scale; unchanged blocks are named in the legend.

    Args:
        store: the run's weight-change store, or its path.
        out_png: where to write the PNG.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: an unreadable store or one with no readings.
    """
    store = open_readable(store)
    sums = block_summary(store)
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, column, label in zip(
        axes,
        ("period_change_rel", "accumulated_rel"),
        ("period change / weight L1", "accumulated (solid), net (dashed) / weight L1"),
    ):
        drawn = False
        for block in dict.fromkeys(store.layers["block"]):
            rows = sums[sums["block"] == block]
            if (rows[column] > 0).any():
                (line,) = ax.plot(rows["step"], rows[column].where(rows[column] > 0), marker=".", ms=3, label=block)
                if column == "accumulated_rel" and (rows["net_rel"] > 0).any():
                    ax.plot(
                        rows["step"],
                        rows["net_rel"].where(rows["net_rel"] > 0),
                        color=line.get_color(),
                        ls="--",
                    )
                drawn = True
            elif rows[column].isna().any():
                ax.plot([], [], color="0.6", ls=":", label=f"{block} (not finite: training diverged)")
            else:
                ax.plot([], [], color="0.6", ls="--", label=f"{block} (unchanged)")
        _epoch_lines(ax, store)
        if drawn:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(
        _title(
            store,
            f"weight change per block, read every {store.period} steps (dotted: epoch ends)\n"
            "accumulated: sum of |W_t - W_prev| over the readings; net: |W_t - W_0|",
        ),
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, out_png)
