"""The explanation_quality rule's report: the main table, its reading in words, and the figure.

Separate from the scoring (:mod:`layerscope.explain.quality_study`), which writes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from layerscope.core.figures import save_figure
from layerscope.explain.fills import ChosenFill

THRESHOLD = 0.5
"""Mean Spearman above which a map is read as unchanged: by randomising the model, or by another class."""
RANDOM, RANDOM_CAM = "random", "random_cam"
"""The random brackets: on the run's model, and on CAM's GAP model (CAM's own bracket)."""


@dataclass
class QualityResult:
    """Every table of one run's quality check, and the seconds each metric took.

    Attributes:
        table: tidy metric rows (``quality.csv``; columns ``quality_study.TABLE_COLUMNS``).
        curves: mean and sd deletion / insertion curves (``quality_study.CURVE_COLUMNS``).
        randomisation: randomisation Spearman per depth (``quality_study.RANDOMISATION_TABLE_COLUMNS``).
        images: the images scored.
        lime_images: the images of LIME's randomisation and random-logit checks.
        timings: wall-clock seconds per metric (``gradcam_maps``, ``deletion_insertion``,
            ``randomisation``, ``random_logit``).
        fills: the fills used, "deletion" and "lime" (:class:`~layerscope.explain.fills.ChosenFill`).
    """

    table: pd.DataFrame
    curves: pd.DataFrame
    randomisation: pd.DataFrame
    images: int
    lime_images: int
    timings: dict[str, float] = field(default_factory=dict)
    fills: dict[str, ChosenFill] = field(default_factory=dict)


def layer_text(value) -> str:
    """A layer cell as text: '' for none (NaN or None)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def method_label(method: str, layer) -> str:
    """``method/layer``, or the method alone for a method without a layer."""
    return f"{method}/{layer_text(layer)}" if layer_text(layer) else method


def main_table(result: QualityResult) -> pd.DataFrame:
    """The Markdown's table: one row per method / layer.

    Columns: deletion and insertion AUC (mean, sd), their difference, the randomisation
    Spearman with every weighted layer randomised (and that layer) and the random-logit
    Spearman (NaN where a check was not run).
    """
    table = result.table
    rows = []
    for (method, layer), group in table.groupby(["method", "layer"], sort=False, dropna=False):
        value = dict(zip(group["metric"], group["value"]))
        sd = dict(zip(group["metric"], group["sd"]))
        final = result.randomisation[
            (result.randomisation["method"] == method)
            & (result.randomisation["layer"].isna() if pd.isna(layer) else result.randomisation["layer"] == layer)
        ]
        final = final.loc[final["depth"].idxmax()] if len(final) else None
        rows.append(
            {
                "method": method,
                "layer": None if pd.isna(layer) else layer,
                "deletion_auc": value["deletion_auc"],
                "deletion_auc_sd": sd["deletion_auc"],
                "insertion_auc": value["insertion_auc"],
                "insertion_auc_sd": sd["insertion_auc"],
                "difference": value["insertion_auc"] - value["deletion_auc"],
                "randomisation_spearman": np.nan if final is None else final["spearman"],
                "randomised": None if final is None else final["randomised"],
                "random_logit_spearman": value.get("random_logit_spearman", np.nan),
            }
        )
    return pd.DataFrame(rows)


def readings(main: pd.DataFrame) -> list[str]:
    """One sentence per check, from :func:`main_table`.

    Which methods beat their random bracket on deletion and insertion, at which block
    Grad-CAM is most faithful, which fail the randomisation check and which ignore the
    class (random logit); both checks use :data:`THRESHOLD`.
    """
    labels = {row.Index: method_label(row.method, row.layer) for row in main.itertuples()}
    brackets = main.set_index("method")
    checked = main[~main["method"].isin([RANDOM, RANDOM_CAM])]
    beat, lost = [], []
    for row in checked.itertuples():
        bracket = RANDOM_CAM if row.method == "cam" else RANDOM
        if bracket not in brackets.index:
            continue
        ref = brackets.loc[bracket]
        (beat if row.deletion_auc < ref["deletion_auc"] and row.insertion_auc > ref["insertion_auc"] else lost).append(
            labels[row.Index]
        )
    sentences = [
        "Deletion and insertion: beat their random bracket on both (lower deletion AUC and higher insertion "
        f"AUC than random maps on the same model, means over the images): {_names(beat)}; "
        f"not on both: {_names(lost)}."
    ]
    gradcam = checked[checked["method"] == "gradcam"]
    if len(gradcam) > 1:
        best, worst = gradcam.loc[gradcam["difference"].idxmax()], gradcam.loc[gradcam["difference"].idxmin()]
        sds = gradcam[["deletion_auc_sd", "insertion_auc_sd"]].to_numpy(dtype=float)
        spread = float(np.nanmax(sds)) if np.isfinite(sds).any() else np.nan
        within = best["difference"] - worst["difference"] < spread
        sentences.append(
            f"Grad-CAM by layer: most faithful at {best['layer']} (insertion - deletion {best['difference']:.3f}), "
            f"least at {worst['layer']} ({worst['difference']:.3f})"
            + (f"; the gap is within the spread over images (AUC sd up to {spread:.3f})." if within else ".")
        )
    fail, passed, undefined = [], [], []
    for row in checked.itertuples():
        value = row.randomisation_spearman
        (undefined if np.isnan(value) else fail if abs(value) > THRESHOLD else passed).append(labels[row.Index])
    sentences.append(
        f"Cascading randomisation: fail (|mean Spearman| > {THRESHOLD} with every weighted layer randomised, "
        f"the map did not follow the model): {_names(fail)}; pass: {_names(passed)}"
        + (f"; undefined (flat maps): {_names(undefined)}." if undefined else ".")
    )
    blind, sensitive = [], []
    for row in checked.itertuples():
        if not np.isnan(row.random_logit_spearman):
            (blind if row.random_logit_spearman > THRESHOLD else sensitive).append(labels[row.Index])
    sentences.append(
        f"Random logit: nearly the same map for another class (mean Spearman > {THRESHOLD}, class-blind): "
        f"{_names(blind)}; class-sensitive: {_names(sensitive)}."
    )
    return sentences


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "none"


def quality_markdown(result: QualityResult, run: str, cfg: dict, cam_run: str | None = None) -> str:
    """The main table and the readings as Markdown."""
    main = main_table(result)
    lines = [
        f"# Explanation quality: {run}",
        "",
        f"{result.images} test images chosen by the explain rule; deletion / insertion with {cfg['steps']} steps, "
        f"deleted pixels replaced by: {_fill_note(result, 'deletion', cfg['baseline'])}; LIME's randomisation and "
        f"random-logit checks on {result.lime_images} image(s) with {cfg['lime_samples']} samples, hidden "
        f"superpixels: {_fill_note(result, 'lime', 'its configured fill')}"
        + (f"; CAM and {RANDOM_CAM} on the GAP model {cam_run}" if cam_run else "")
        + ". Values: mean (sd) over the images.",
        "",
        "| method | layer | deletion AUC (lower better) | insertion AUC (higher better) | insertion - deletion "
        "| randomisation Spearman, full depth | random-logit Spearman |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in main.itertuples():
        lines.append(
            f"| {row.method} | {layer_text(row.layer)} | {_cell(row.deletion_auc, row.deletion_auc_sd)} "
            f"| {_cell(row.insertion_auc, row.insertion_auc_sd)} | {_cell(row.difference)} "
            f"| {_cell(row.randomisation_spearman)} | {_cell(row.random_logit_spearman)} |"
        )
    lines += ["", *(f"- {sentence}" for sentence in readings(main)), ""]
    return "\n".join(lines)


def _fill_note(result: QualityResult, use: str, otherwise: str) -> str:
    return result.fills[use].note if use in result.fills else otherwise


def _cell(value: float, sd: float | None = None) -> str:
    if value is None or np.isnan(value):
        return "-"
    return f"{value:.3f}" if sd is None or np.isnan(sd) else f"{value:.3f} ({sd:.3f})"


def plot_quality(result: QualityResult, title: str, path: str | os.PathLike) -> None:
    """Draw the quality figure and write it to ``path`` (atomically).

    Left: mean deletion and insertion curves per method / layer (random brackets dashed);
    right: the randomisation Spearman against the layers randomised so far; one legend below.

    Args:
        result: the tables of :func:`evaluate_quality`.
        title: the figure's title.
        path: where to write the figure.
    """
    curves, randomisation = result.curves, result.randomisation
    keys = list(dict.fromkeys(zip(curves["method"], curves["layer"].map(layer_text))))
    styles = _styles([key for key in keys if key[0] == "gradcam"])
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.15))
    axes = {"deletion": fig.add_subplot(grid[0, 0]), "insertion": fig.add_subplot(grid[1, 0])}
    right = fig.add_subplot(grid[:, 1])
    for curve, ax in axes.items():
        for method, layer in keys:
            rows = curves[
                (curves["method"] == method) & (curves["layer"].map(layer_text) == layer) & (curves["curve"] == curve)
            ]
            ax.plot(rows["fraction"], rows["mean"], label=_legend(method, layer), **styles.get((method, layer), {}))
        ax.set_ylabel("probability of the explained class")
        better = "lower" if curve == "deletion" else "higher"
        action = "replaced by the baseline" if curve == "deletion" else "restored into the blurred image"
        ax.set_title(f"{curve}: most relevant pixels {action} ({better} area is better)", fontsize=9)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    axes["insertion"].set_xlabel("fraction of pixels changed, most relevant first")

    order = _run_cascade_order(randomisation)
    stretched = False
    for (method, layer), rows in randomisation.groupby(["method", randomisation["layer"].map(layer_text)], sort=False):
        aligned = rows["randomised"].isin(order).all()
        stretched |= not aligned
        x = rows["randomised"].map(order) if aligned else _stretch(rows["depth"], max(order.values()))
        style = {k: v for k, v in styles.get((method, layer), {}).items() if k != "ls"}
        right.plot(x, rows["spearman"], marker="o", ms=3, **style)
    threshold = right.axhline(THRESHOLD, color="0.4", lw=0.9, ls=":", label=f"randomisation fails beyond ±{THRESHOLD}")
    right.axhline(-THRESHOLD, color="0.4", lw=0.9, ls=":")
    right.axhline(0, color="0.3", lw=0.6)
    right.set_xticks(list(order.values()), list(order), rotation=90, fontsize=7)
    right.set_ylim(-1.05, 1.05)
    right.set_xlabel("layers randomised so far, from the output down (cumulative)")
    right.set_ylabel("Spearman with the trained model's map (mean over images)")
    right.set_title(
        "cascading parameter randomisation (near 0: the map follows the model)"
        + ("\nCAM's GAP model has other layers: its depths are stretched to this axis" if stretched else ""),
        fontsize=9,
    )
    right.grid(alpha=0.3)
    handles, labels = axes["deletion"].get_legend_handles_labels()
    fig.legend([*handles, threshold], [*labels, threshold.get_label()], loc="outside lower center", ncol=6, fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def _stretch(depth: pd.Series, last: int) -> pd.Series:
    """Depths 1..D of another model's cascade (CAM's GAP model) laid onto 1..``last``."""
    top = depth.max()
    return 1 + (depth - 1) * (last - 1) / (top - 1) if top > 1 else depth


def _legend(method: str, layer: str) -> str:
    label = method_label(method, layer)
    return f"{label} (GAP model)" if method in ("cam", RANDOM_CAM) else label


def _styles(gradcam_keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """A distinct hue per Grad-CAM layer and per other method (red, orange kept for LIME, CAM); brackets dashed."""
    hues = [colormaps["tab10"](i) for i in (0, 2, 4, 5, 6, 8, 9)]  # no orange, red or grey
    if len(gradcam_keys) > len(hues):
        hues = list(colormaps["viridis"](np.linspace(0.9, 0.0, len(gradcam_keys))))
    colours = {key: {"color": hue} for key, hue in zip(gradcam_keys, hues)}
    colours[("lime", "")] = {"color": "tab:red"}
    colours[("cam", "")] = {"color": "tab:orange"}
    colours[(RANDOM, "")] = {"color": "0.2", "ls": "--"}
    colours[(RANDOM_CAM, "")] = {"color": "tab:orange", "ls": "--"}
    return colours


def _run_cascade_order(randomisation: pd.DataFrame) -> dict[str, int]:
    """Randomised layer -> depth in the run model's cascade (Grad-CAM's, which reads every depth)."""
    rows = randomisation[randomisation["method"] == "gradcam"]
    rows = rows if len(rows) else randomisation
    return dict(zip(rows["randomised"], rows["depth"]))
