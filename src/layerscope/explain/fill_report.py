"""The perturbation_fills rule's report: the distances and probabilities in words and tables, and the figure.

Separate from the measurement (:mod:`layerscope.explain.fill_study`), which writes it.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from layerscope.core.figures import save_figure
from layerscope.explain.fills import CHOICE_RULE, FILL_LABELS, FILLS, fill_images, hide, superpixel_mask

NONE = "none"
"""The ``fill`` of the summary rows that hold the clean cells' probabilities (share 0)."""


def fills_markdown(
    summary: pd.DataFrame, scores: dict[str, pd.Series], choice: str, run_id: str, classes: list[str], cfg: dict
) -> str:
    """The distances and the probabilities as Markdown tables, and the choice in words.

    ``scores``: each kind of cell's :func:`fill_scores`, the scored (defect-free) kind first.
    """
    kinds = list(scores)
    order = scores[kinds[0]].index
    hidden = summary[summary["fill"] != NONE]
    shares = sorted(hidden["share"].unique())
    header = [f"{kind}, {share:.0%} hidden" for kind in kinds for share in shares]
    lines = [
        f"# Perturbation fills: {run_id}",
        "",
        f"A random share of each cell's superpixels hidden under each fill ({cfg['masks']} random mask(s) per "
        "cell and share, the same for every fill); images per kind of cell: "
        + ", ".join(f"{kind} {int(summary.loc[summary['cells'] == kind, 'images'].iloc[0])}" for kind in kinds)
        + ".",
        "",
        "## Total-variation distance of the class probabilities from the clean cell's (mean [95% t-interval])",
        "",
        "| fill | " + " | ".join(header) + " | " + " | ".join(f"{kind}, mean" for kind in kinds) + " |",
        "|---|" + "---:|" * (len(header) + len(kinds)),
    ]
    for fill in order:
        cells = []
        for kind in kinds:
            for share in shares:
                row = hidden[(hidden["cells"] == kind) & (hidden["share"] == share) & (hidden["fill"] == fill)].iloc[0]
                cells.append(f"{row.tv:.3f} [{_number(row.tv_low)}, {_number(row.tv_high)}]")
        name = f"**{FILL_LABELS[fill]}**" if fill == choice else FILL_LABELS[fill]
        means = [f"{scores[kind][fill]:.3f}" for kind in kinds]
        lines.append(f"| {name} | " + " | ".join(cells + means) + " |")
    first, last = classes[0], classes[-1]
    lines += [
        "",
        f"## Mean probability of class {first} / class {last}",
        "",
        "| fill | " + " | ".join([f"{kind}, nothing hidden" for kind in kinds] + header) + " |",
        "|---|" + "---:|" * (len(kinds) + len(header)),
    ]
    p_first, p_last = "p0", f"p{len(classes) - 1}"
    clean = summary[summary["fill"] == NONE].set_index("cells")
    for fill in order:
        cells = [f"{clean.loc[kind, p_first]:.3f} / {clean.loc[kind, p_last]:.3f}" for kind in kinds]
        for kind in kinds:
            for share in shares:
                row = hidden[(hidden["cells"] == kind) & (hidden["share"] == share) & (hidden["fill"] == fill)].iloc[0]
                cells.append(f"{row[p_first]:.3f} / {row[p_last]:.3f}")
        lines.append(f"| {FILL_LABELS[fill]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Chosen: **{FILL_LABELS[choice]}** ({choice}), by the rule: {CHOICE_RULE} (here {kinds[0]}). LIME "
        "(`explain.lime.hide`) and deletion (`explain.quality.baseline`) use it where the config says `auto`. "
        f"On {', '.join(kinds[1:])} cells hiding also removes real evidence, so their distances are shown, not "
        "scored.",
        "",
    ]
    return "\n".join(lines)


def _number(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def plot_fills(
    summary: pd.DataFrame,
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    choice: str,
    run_id: str,
    seed: int,
    share: float,
    path: str | os.PathLike,
) -> None:
    """Each fill on one cell of each kind (``share`` of its superpixels hidden), and the distances by share.

    Args:
        summary: :func:`summarise_fills`'s table.
        examples: per kind of cell, one image (H, W, C) and its superpixels; the scored
            (defect-free) kind first.
        choice: the chosen fill, drawn bold.
        run_id: the run's id, for the title.
        seed: draws the example masks.
        share: the share hidden in the examples.
        path: where to write the figure.
    """
    kinds = list(examples)
    fig = Figure(figsize=(1.6 * (len(FILLS) + 1), 1.75 * len(kinds) + 3.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.75 * len(kinds), 3.6])
    cells = top.subplots(len(kinds), len(FILLS) + 1, squeeze=False)
    rng = np.random.default_rng(seed)
    for row, kind in enumerate(kinds):
        image, segments = examples[kind]
        mask = superpixel_mask(segments, share, rng)
        panels = [("clean", image)] + [
            (FILL_LABELS[fill], hide(image[None], fill_images(image[None], segments[None], fill), mask[None])[0])
            for fill in FILLS
        ]
        for ax, (title, picture) in zip(cells[row], panels):
            shown = np.clip(picture, 0, 255).astype(np.uint8)
            ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=255)
            bold = title == FILL_LABELS.get(choice)
            ax.set_title(f"{kind}\n{title}", fontsize=8, weight="bold" if bold else "normal")
            ax.set_xticks([])
            ax.set_yticks([])
    top.suptitle(f"one cell of each kind, {share:.0%} of its superpixels hidden", fontsize=9)
    hidden = summary[summary["fill"] != NONE]
    colours = {fill: colormaps["tab10"](i) for i, fill in enumerate(FILLS)}
    for position, (kind, ax) in enumerate(zip(kinds, bottom.subplots(1, len(kinds), squeeze=False)[0])):
        for fill in FILLS:
            rows = hidden[(hidden["cells"] == kind) & (hidden["fill"] == fill)].sort_values("share")
            low = (rows["tv"] - rows["tv_low"]).fillna(0).clip(lower=0)
            high = (rows["tv_high"] - rows["tv"]).fillna(0).clip(lower=0)
            chosen = fill == choice
            ax.errorbar(
                rows["share"],
                rows["tv"],
                yerr=[low, high],
                marker="o",
                ms=4,
                capsize=3,
                lw=2.5 if chosen else 1.2,
                color=colours[fill],
                label=FILL_LABELS[fill] + (" (chosen)" if chosen else ""),
            )
        ax.set_xlabel("share of superpixels hidden")
        ax.set_ylabel("total-variation distance\nfrom the clean cell's probabilities", fontsize=8)
        scored = "scored: no defect to hide" if position == 0 else "shown, not scored"
        ax.set_title(f"{kind} cells ({scored})\nmean and 95% t-interval over cells", fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    bottom.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=len(FILLS), fontsize=8)
    fig.suptitle(
        f"{run_id}: what hiding superpixels does to the prediction, per fill\n"
        f"chosen for LIME and deletion (where auto): {FILL_LABELS[choice]}",
        fontsize=10,
    )
    save_figure(fig, path)
