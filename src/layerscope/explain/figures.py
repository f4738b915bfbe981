"""Figure panels of the explanation stage (matplotlib, written atomically)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from layerscope.core.figures import save_figure
from layerscope.explain.base import normalise_maps


def _show(ax, picture, title: str, cmap=None, **kwargs) -> None:
    ax.imshow(picture, cmap=cmap, **kwargs)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _overlay(ax, image: np.ndarray, heat: np.ndarray, title: str) -> None:
    _show(ax, image, title)
    ax.imshow(normalise_maps(heat[None])[0], cmap="jet", alpha=0.45)
    _note_if_flat(ax, heat, "all zero\nafter ReLU")


def flat_panel_note(picture: np.ndarray, note: str) -> str | None:
    """``note`` when ``picture`` is one flat value (a panel a reader would take for a bug), else None.

    A LIME side with no segment for or against a label, and a Grad-CAM map whose
    channel weights are all negative (ReLU leaves zero), are true results that draw
    as a flat panel; they are labelled so.
    """
    return note if float(np.ptp(picture)) == 0.0 else None


def _note_if_flat(ax, picture: np.ndarray, note: str) -> None:
    if (text := flat_panel_note(picture, note)) is not None:
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7)


def plot_explanations(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    true: Sequence[int],
    classes: Sequence[str],
    run_id: str,
    path: str | os.PathLike,
    lime_fill: str | None = None,
) -> None:
    """One row per image: image | LIME + / - (predicted and runner-up) | CAM | Grad-CAM per layer.

    ``lime_fill`` names what LIME's hidden superpixels became (its title says so).
    """
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
            for picture, sign, cmap, side in ((pos, "+", "Greens", "for"), (neg, "-", "Reds", "against")):
                panel = next(ax)
                _show(panel, picture, f"LIME {sign} {label}", cmap=cmap, vmin=0, vmax=top)
                _note_if_flat(panel, picture, f"no segment\n{side} {label}")
        if "cam" in maps:
            _overlay(
                next(ax),
                image,
                maps["cam"][row],
                f"CAM (GAP model)\npred {classes[maps['cam_predicted'][row]]}",
            )
        for key in gradcam:
            _overlay(next(ax), image, maps[key][row], f"Grad-CAM\n{key.split('/', 1)[1]}")
    fill = f"; LIME hides superpixels with: {lime_fill}" if lime_fill else ""
    fig.suptitle(f"{run_id}: explanations of test images{fill}")
    save_figure(fig, path)


def _pixels(x: np.ndarray) -> np.ndarray:
    """Optimised pixels (any float range) as a viewable uint8 image: clipped, not stretched."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _change(ax, change: np.ndarray, title: str) -> None:
    """x* - x in grey levels on a symmetric scale.

    Colour images show as mid-grey plus the change in colour (a tint shows which colour
    the unit likes), grey ones as blue-white-red.
    """
    top = max(float(np.abs(change).max()), 1e-6)
    if change.shape[-1] == 3:
        _show(ax, np.clip(0.5 + change / (2 * top), 0, 1), f"{title}\nchange ±{top:.0f}")
    else:
        _show(ax, change[..., 0], f"{title}\nchange ±{top:.0f}", cmap="RdBu_r", vmin=-top, vmax=top)


def plot_feature_maps(
    stages: Mapping[str, Mapping],
    run_id: str,
    path: str | os.PathLike,
    steps: int,
    alpha: float,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Rows: stage x image; columns: the start image, then per channel x* and its change.

    ``stages[name]`` holds ``layer``, ``channels`` (K,), ``start`` (N, H, W, C) and
    ``optimised`` (K, N, H, W, C) pixels, ``objective_start`` / ``objective_end`` (K, N).
    ``labels[name]`` (how the stage's channels were chosen, how alike they are) is
    written beside the stage's first row.
    """
    labels = labels or {}
    n_images = max(len(v["start"]) for v in stages.values())
    n_cols = 1 + 2 * max(len(v["channels"]) for v in stages.values())
    n_rows = len(stages) * n_images
    fig = Figure(figsize=(1.45 * n_cols, 1.75 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for s, (stage, v) in enumerate(stages.items()):
        for i, start in enumerate(v["start"]):
            row = axes[s * n_images + i]
            _show(row[0], _pixels(start), f"{stage}: {v['layer']}\nimage {i}")
            if i == 0 and stage in labels:
                row[0].set_ylabel(textwrap.fill(labels[stage], 34), fontsize=6)
            for k, channel in enumerate(v["channels"]):
                before, after = v["objective_start"][k, i], v["objective_end"][k, i]
                rise = f"x{after / before:.2g}" if before > 0 else f"{before:.2g} -> {after:.2g}"
                _show(row[1 + 2 * k], _pixels(v["optimised"][k, i]), f"ch {channel} x*\nobjective {rise}")
                _change(row[2 + 2 * k], v["optimised"][k, i] - start, f"ch {channel}")
            for col in range(1 + 2 * len(v["channels"]), n_cols):
                row[col].axis("off")
    fig.suptitle(
        textwrap.fill(
            f"{run_id}: gradient-ascent feature maps (study B): x* after {steps} steps of {alpha:g} grey "
            "level(s) (RMS) on a channel's mean pre-activation, and x* - x (a linear first layer gives "
            "every image the same, spatially flat change)",
            16 * n_cols,
        ),
        fontsize=9,
    )
    save_figure(fig, path)


def plot_invariance(
    images: np.ndarray,
    optimised: Mapping[str, np.ndarray],
    table: pd.DataFrame,
    verdict: str,
    label: str,
    run_id: str,
    path: str | os.PathLike,
    shown: Sequence[str] | None = None,
) -> None:
    """Several images of one class and their x* at a few layers, beside correlation against depth.

    The right panel is the per-layer mean pairwise correlation of x* (with its sd); the
    verdict is the title.
    """
    shown = list(shown or optimised)
    fig = Figure(figsize=(1.7 * len(images) + 4.2, 1.8 * (1 + len(shown)) + 0.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.7 * len(images), 4.2])
    axes = left.subplots(1 + len(shown), len(images), squeeze=False)
    stats = table.set_index("layer")
    for col, image in enumerate(np.asarray(images)):
        _show(axes[0, col], _pixels(image), f"class {label}" if col == 0 else "")
        for row, layer in enumerate(shown, start=1):
            title = f"x* {layer}\ncorr {stats.loc[layer, 'mean']:.2f}" if col == 0 else f"x* {layer}"
            _show(axes[row, col], _pixels(optimised[layer][col]), title)
    ax = right.subplots()
    ax.errorbar(table["depth"], table["mean"], yerr=table["sd"], marker="o", capsize=3, label="x* (± sd)")
    ax.plot(table["depth"], table["change_mean"], marker=".", linestyle=":", label="x* - x")
    ax.axhline(table["start_images_mean"].iloc[0], color="grey", linestyle="--", label="start images")
    ax.set_xticks(table["depth"], table["layer"], rotation=90, fontsize=7)
    ax.set_ylabel("mean pairwise correlation")
    ax.set_title(f"{len(images)} images of class {label}", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"{run_id}: invariance across images (study B)\n" + textwrap.fill(verdict, 110), fontsize=9)
    save_figure(fig, path)
