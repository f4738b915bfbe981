"""Study A's reading of the maps, measured: how concentrated each block's Grad-CAM is, and how stable.

Study A froze blocks 1-3 because block 3's maps "captured the defect shapes" while deeper
ones "looked overfit". Two numbers stand in for that reading, per block's Grad-CAM:

- **concentration**: the Gini index of the map's values (Quantus' Sparseness, Chalasani
  et al. 2020: 0 for a flat map, towards 1 when a few pixels hold all the mass) and the
  share of the map's mass in its top 10% of pixels;
- **stability**: Spearman's rank correlation between the maps of the same image made by
  the same run trained under different seeds (1: the seeds agree where the evidence is);
- **mirroring**: Spearman's rank correlation between the map of the mirrored image and
  the mirrored map of the image, at the same class (1: the map follows the image's
  content; about 0: it stays where it was, a position the model prefers whatever the
  image shows, so it does not explain the image).

"Block 3 is sharpest" holds when block 3's Gini index is the highest of the blocks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from layerscope.core.blocks import block_of

TOP_FRACTION = 0.1
SHAPE_COLUMNS = ["block", "layer", "gini", "top10_share", "stability", "mirroring", "seeds", "images"]


def gini(heatmap: np.ndarray) -> float:
    """Gini index of a map's non-negative values (0: flat; 1: one pixel holds everything)."""
    values = np.sort(np.clip(np.asarray(heatmap, np.float64).ravel(), 0, None))
    total = values.sum()
    if total <= 0:
        return 0.0
    n = len(values)
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * values) / (n * total))


def top_share(heatmap: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Share of a map's non-negative mass in its top ``fraction`` of pixels (``fraction``: flat)."""
    values = np.sort(np.clip(np.asarray(heatmap, np.float64).ravel(), 0, None))[::-1]
    total = values.sum()
    if total <= 0:
        return float(fraction)
    return float(values[: max(1, int(round(fraction * len(values))))].sum() / total)


def stability(maps_a: np.ndarray, maps_b: np.ndarray) -> float:
    """Mean over images of Spearman's rho between two seeds' maps of the same image; NaN for flat maps."""
    rhos = []
    for a, b in zip(maps_a, maps_b, strict=True):
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            rhos.append(float(spearmanr(np.ravel(a), np.ravel(b)).statistic))
    return float(np.mean(rhos)) if rhos else float("nan")


def mirroring(maps: np.ndarray, maps_of_mirrored: np.ndarray) -> float:
    """Mean over images of Spearman's rho between the mirrored image's map and the image's map mirrored.

    Args:
        maps: (N, H, W) maps of N images.
        maps_of_mirrored: (N, H, W) maps of the same images flipped left to right, same classes.

    Returns:
        1 when every map moves with its image; NaN when every pair has a flat map.
    """
    return stability(np.asarray(maps)[:, :, ::-1], maps_of_mirrored)


def map_shape_table(
    maps_by_seed: Mapping[str, Mapping[str, np.ndarray]],
    mirrored_by_seed: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Per block: mean Gini index and top-10% share over images and seeds, stability over seed pairs, mirroring.

    Args:
        maps_by_seed: per seed (any label), per Grad-CAM layer, the maps (N, H, W) of the
            same N images in the same order.
        mirrored_by_seed: the same for the images flipped left to right (same classes), or
            None (mirroring NaN).

    Returns:
        One row per layer (:data:`SHAPE_COLUMNS`), by block; stability is NaN with one seed,
        mirroring the mean over seeds of :func:`mirroring`.
    """
    seeds = list(maps_by_seed)
    layers = sorted(maps_by_seed[seeds[0]], key=lambda layer: block_of(layer) or 0)
    rows = []
    for layer in layers:
        stacks = [np.asarray(maps_by_seed[seed][layer]) for seed in seeds]
        pairs = [stability(a, b) for a, b in itertools.combinations(stacks, 2)]
        mirrored = [mirroring(maps_by_seed[s][layer], mirrored_by_seed[s][layer]) for s in seeds if mirrored_by_seed]
        rows.append(
            {
                "block": block_of(layer),
                "layer": layer,
                "gini": float(np.mean([gini(m) for stack in stacks for m in stack])),
                "top10_share": float(np.mean([top_share(m) for stack in stacks for m in stack])),
                "stability": _mean_defined(pairs),
                "mirroring": _mean_defined(mirrored),
                "seeds": len(seeds),
                "images": len(stacks[0]),
            }
        )
    return pd.DataFrame(rows, columns=SHAPE_COLUMNS)


def _mean_defined(values: list[float]) -> float:
    """The mean of the defined values; NaN when there are none."""
    return float(np.nanmean(values)) if values and not np.all(np.isnan(values)) else float("nan")


def sharpest_sentence(table: pd.DataFrame, study_block: int = 3) -> str:
    """Whether study A's block is the one with the most concentrated maps, in words."""
    if table.empty or study_block not in set(table["block"]):
        return f"Block {study_block}'s Grad-CAM was not measured."
    ranked = table.sort_values("gini", ascending=False)
    top = ranked.iloc[0]
    figures = ", ".join(f"block {int(r.block)} {r.gini:.3f}{_in_brackets(r)}" for r in table.itertuples())
    verdict = "holds" if int(top["block"]) == study_block else f"does not hold (block {int(top['block'])} is)"
    return f"'Block {study_block} is sharpest' {verdict}: Gini index of the Grad-CAM maps, {figures}."


def _in_brackets(row) -> str:
    """A block's stability and mirroring as the sentence prints them, e.g. `` (stability 0.40, mirroring 0.50)``."""
    values = {name: getattr(row, name, math.nan) for name in ("stability", "mirroring")}
    parts = [f"{name} {value:.2f}" for name, value in values.items() if value == value]
    return f" ({', '.join(parts)})" if parts else ""
