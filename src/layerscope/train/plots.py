"""Training curves of one run (loss and accuracy per epoch, train and validation)."""

from __future__ import annotations

import os

import pandas as pd

from layerscope.core.figures import save_figure


def plot_history(history: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Two panels, loss and accuracy against epoch; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for column, style in ((metric, "-"), (f"val_{metric}", "--")):
            if column in history:
                ax.plot(history["epoch"], history[column], style, marker="o", label=column)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
