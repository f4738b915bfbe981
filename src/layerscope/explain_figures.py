"""Figure panels of the explanation stage (matplotlib, written atomically)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from layerscope.atomic import atomic_path
from layerscope.explain import normalise_maps


def _save(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def _show(ax, picture, title: str, cmap=None, **kwargs) -> None:
    ax.imshow(picture, cmap=cmap, **kwargs)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _overlay(ax, image: np.ndarray, heat: np.ndarray, title: str) -> None:
    _show(ax, image, title)
    ax.imshow(normalise_maps(heat[None])[0], cmap="jet", alpha=0.45)


def plot_explanations(images: np.ndarray, maps: Mapping[str, np.ndarray], true: Sequence[int],
                      classes: Sequence[str], run_id: str, path: str | os.PathLike) -> None:
    """One row per image: image | LIME + / - (predicted and runner-up) | CAM | Grad-CAM per layer."""
    gradcam = sorted(key for key in maps if key.startswith("gradcam/"))
    lime_columns = maps["lime_labels"].shape[1]
    n_cols = 1 + 2 * lime_columns + ("cam" in maps) + len(gradcam)
    fig = Figure(figsize=(1.7 * n_cols, 1.9 * len(images)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(images), n_cols, squeeze=False))
    for row, image in enumerate(images.astype(np.uint8)):
        ax = iter(axes[row])
        predicted = classes[maps["predicted"][row]]
        _show(next(ax), image, f"true {classes[true[row]]}\npred {predicted}")
        for j in range(lime_columns):
            label = classes[maps["lime_labels"][row, j]]
            pos, neg = maps["lime_positive"][row, j], -maps["lime_negative"][row, j]
            top = max(float(pos.max()), float(neg.max()), 1e-12)
            _show(next(ax), pos, f"LIME + {label}", cmap="Greens", vmin=0, vmax=top)
            _show(next(ax), neg, f"LIME - {label}", cmap="Reds", vmin=0, vmax=top)
        if "cam" in maps:
            _overlay(next(ax), image, maps["cam"][row], f"CAM (GAP model)\npred {classes[maps['cam_predicted'][row]]}")
        for key in gradcam:
            _overlay(next(ax), image, maps[key][row], f"Grad-CAM\n{key.split('/', 1)[1]}")
    fig.suptitle(f"{run_id}: explanations of test images")
    _save(fig, path)


def plot_feature_maps(stages: Mapping[str, tuple[str, np.ndarray, np.ndarray]], image: np.ndarray,
                      run_id: str, path: str | os.PathLike) -> None:
    """Rows: stages (first, middle, last conv layer); columns: the image, then one ascent map per channel.

    ``stages[name] = (layer, channels, deltas)`` with deltas (C, H, W, 3).
    """
    n_cols = 1 + max(len(channels) for _, channels, _ in stages.values())
    fig = Figure(figsize=(1.8 * n_cols, 2.0 * len(stages)), layout="constrained")
    axes = fig.subplots(len(stages), n_cols, squeeze=False)
    for row, (stage, (layer, channels, deltas)) in enumerate(stages.items()):
        _show(axes[row, 0], image.astype(np.uint8), f"{stage}: {layer}")
        shown = normalise_maps(deltas[..., ::-1])  # BGR (caffe) or grey: show as RGB
        for col, channel in enumerate(channels, start=1):
            _show(axes[row, col], shown[col - 1], f"channel {channel}")
        for col in range(len(channels) + 1, n_cols):
            axes[row, col].axis("off")
    fig.suptitle(f"{run_id}: gradient-ascent feature maps\n(what the ascent adds to the image)")
    _save(fig, path)


def plot_onset(curves: pd.DataFrame, onsets: pd.DataFrame, threshold: float, run_id: str,
               path: str | os.PathLike) -> None:
    """Correlation with the final map against training step, per layer, with the onset marked."""
    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for layer, group in curves.groupby("layer", sort=False):
        line, = ax.plot(group["step"], group["correlation"], marker="o", label=layer)
        onset = onsets.loc[onsets["layer"] == layer, "onset_step"].iloc[0]
        if pd.notna(onset):
            ax.axvline(onset, color=line.get_color(), linestyle=":")
    ax.axhline(threshold, color="grey", linestyle="--", label=f"threshold {threshold}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("training step (checkpoint)")
    ax.set_ylabel("correlation with final map")
    ax.set_title(f"{run_id}: feature onset by layer depth")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_invariance(images: np.ndarray, deltas: Mapping[str, np.ndarray], correlations: Mapping[str, float],
                    label: str, run_id: str, path: str | os.PathLike) -> None:
    """Several images of one class: the image, then first- and last-layer feature maps."""
    fig = Figure(figsize=(1.9 * len(images), 2.0 * (1 + len(deltas))), layout="constrained")
    axes = fig.subplots(1 + len(deltas), len(images), squeeze=False)
    for col, image in enumerate(images.astype(np.uint8)):
        _show(axes[0, col], image, f"class {label}")
        for row, (layer, maps) in enumerate(deltas.items(), start=1):
            _show(axes[row, col], normalise_maps(maps[..., ::-1])[col],
                  f"{layer}\nmean corr {correlations[layer]:.2f}" if col == 0 else layer)
    fig.suptitle(f"{run_id}: same class, different images")
    _save(fig, path)
