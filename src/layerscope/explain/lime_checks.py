"""Study A's judgement of LIME, measured: is it stable across seeds, and does it agree with CAM and Grad-CAM?

Study A found LIME unstable and far from how inspectors see defects. Both are measured
here on the explain rule's images, for LIME with black (lime's tutorial setting, and the
pipeline's before fills were measured) and with the run's chosen fill
(:mod:`layerscope.explain.fills`):

- stability: each image explained for its predicted class under ``seeds`` LIME seeds;
  the Spearman rank correlation of the superpixel weights for every pair of seeds, mean
  over the pairs;
- agreement: the Spearman rank correlation between LIME's superpixel weights and CAM's
  (the GAP model's) or Grad-CAM's map averaged over the same superpixels, mean over the
  seeds; Grad-CAM against CAM on those superpixels is the reference LIME is set beside.

Grad-CAM is read at study A's layer, the last conv layer of block 3 (its maps captured
the defect shapes), or at the deepest layer the explain rule drew for models without it.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Mapping

import keras
import numpy as np
import pandas as pd

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_interval
from layerscope.explain.base import prepare_inputs, spread_over_classes
from layerscope.explain.explanations import read_explained
from layerscope.explain.fills import FILL_LABELS, ChosenFill
from layerscope.explain.lime_method import LIME, rgb_uint8, superpixels
from layerscope.explain.quality import spearman

log = logging.getLogger(__name__)

STUDY_LAYER = "block3_conv3"
"""Study A's Grad-CAM layer: block 3's maps captured the defect shapes."""
COLUMNS = ["run", "image", "true", "target", "fill", "seeds", "samples", "layer"]
MEASURES = ["stability", "lime_cam", "lime_gradcam", "gradcam_cam"]


def superpixel_means(maps: np.ndarray, segments: np.ndarray) -> list[np.ndarray]:
    """Each map's mean over each of its image's superpixels, labels in increasing order.

    Args:
        maps: (N, H, W) maps at the images' size.
        segments: (N, H, W) superpixel labels.

    Returns:
        One (S_i,) vector per image.
    """
    means = []
    for m, s in zip(np.asarray(maps, dtype=np.float64), np.asarray(segments)):
        _, inverse = np.unique(s, return_inverse=True)
        inverse = inverse.reshape(-1)
        means.append(np.bincount(inverse, m.reshape(-1)) / np.bincount(inverse))
    return means


def gradcam_layer(maps: Mapping[str, np.ndarray]) -> str:
    """The Grad-CAM layer agreement is read at: :data:`STUDY_LAYER` if drawn, else the deepest drawn."""
    layers = [key.split("/", 1)[1] for key in maps if key.startswith("gradcam/")]
    return STUDY_LAYER if STUDY_LAYER in layers else layers[-1]


def check_lime(
    model: keras.Model,
    images: np.ndarray,
    targets: np.ndarray,
    references: Mapping[str, np.ndarray | None],
    fill: str,
    lime_settings: dict,
    seeds: list[int],
    given: np.ndarray | None = None,
) -> pd.DataFrame:
    """Stability and agreement of LIME under one fill, one row per image.

    Args:
        model: the run's model.
        images: (N, H, W[, C]) images in 0..255.
        targets: the explained classes (N,).
        references: ``"cam"`` and ``"gradcam"`` maps (N, H, W), either may be None.
        fill: what hidden superpixels become.
        lime_settings: the ``explain.lime`` config (its ``hide`` is replaced by ``fill``).
        seeds: LIME seeds, at least two.
        given: LIME's maps (N, H, W) of ``targets`` under ``fill`` and ``seeds[0]`` with these
            settings, already made (the explain rule's): not fitted again.

    Returns:
        Columns ``fill`` and :data:`MEASURES` (NaN where a reference is missing).
    """
    keys = ("batch_size", "num_samples", "top_labels", "n_segments", "compactness")
    options = {key: lime_settings[key] for key in keys}
    segmentation = {key: lime_settings[key] for key in ("n_segments", "compactness")}
    x = prepare_inputs(model, images)
    segments = np.stack([superpixels(image, **segmentation) for image in rgb_uint8(x)])
    fitted = [] if given is None else [given]
    for seed in seeds[len(fitted) :]:
        fitted.append(LIME(model, seed=seed, hide=fill, progress=False, **options).explain(x, targets))
    weights = [superpixel_means(maps, segments) for maps in fitted]
    reference = {key: None if maps is None else superpixel_means(maps, segments) for key, maps in references.items()}
    rows = []
    for i in range(len(x)):
        per_seed = [w[i] for w in weights]
        pairs = [spearman(a, b) for a, b in itertools.combinations(per_seed, 2)]
        row = {"fill": fill, "stability": _nanmean(pairs)}
        for name in ("cam", "gradcam"):
            ref = reference.get(name)
            row[f"lime_{name}"] = np.nan if ref is None else _nanmean([spearman(w, ref[i]) for w in per_seed])
        cam, gradcam = reference.get("cam"), reference.get("gradcam")
        row["gradcam_cam"] = np.nan if cam is None or gradcam is None else spearman(gradcam[i], cam[i])
        rows.append(row)
    return pd.DataFrame(rows)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def write_lime_checks(
    model: keras.Model,
    test_images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    cfg: dict,
    lime_settings: dict,
    lime_fill: ChosenFill,
    seed: int,
    run_id: str,
    table: str | os.PathLike,
    summary: str | os.PathLike,
) -> pd.DataFrame:
    """Measure LIME's stability and agreement on the explain rule's images, black and the chosen fill.

    The chosen fill's first seed is the explain rule's own LIME (same seed, fill and
    samples): its maps are read from ``maps``, not fitted again.

    Args:
        model: the run's model.
        test_images: the test split the maps' ``indices`` point into.
        maps: the explain rule's ``maps.npz``, made with ``lime_settings``, ``lime_fill`` and ``seed``.
        cfg: the ``explain.lime_checks`` config (``images``: how many of the explained
            images, classes spread; ``seeds``: LIME seeds per image, from ``seed`` on).
        lime_settings: the ``explain.lime`` config.
        lime_fill: the fill the explain rule's LIME used (the "chosen" one).
        seed: the first LIME seed.
        run_id: the run's id.
        table: where to write the per-image csv.
        summary: where to write the Markdown summary.

    Returns:
        The per-image table: :data:`COLUMNS` and :data:`MEASURES`.

    Raises:
        LayerscopeError: ``maps`` made with another fill than ``lime_fill``.
    """
    start = time.perf_counter()
    if str(maps.get("lime_hide", "black")) != lime_fill.fill:  # maps from before fills had no lime_hide: black
        raise LayerscopeError(
            f"maps.npz holds LIME maps made with the {maps.get('lime_hide', 'black')} fill, but explain.lime.hide "
            f"gives {lime_fill.fill}: rerun the explain rule"
        )
    positions = spread_over_classes(np.asarray(maps["true"]), cfg["images"])
    explained = read_explained(maps, test_images).subset(positions)
    layer = gradcam_layer(maps)
    references = {"cam": explained.cam, "gradcam": np.asarray(maps[f"gradcam/{layer}"])[positions]}
    seeds = [seed + k for k in range(cfg["seeds"])]
    frames = []
    for fill in dict.fromkeys(["black", lime_fill.fill]):
        given = explained.lime if fill == lime_fill.fill else None  # the explain rule's maps: seed, fill alike
        frame = check_lime(model, explained.images, explained.targets, references, fill, lime_settings, seeds, given)
        frames.append(
            frame.assign(
                run=run_id,
                image=np.asarray(maps["indices"])[positions],
                true=explained.true,
                target=explained.targets,
                seeds=len(seeds),
                samples=lime_settings["num_samples"],
                layer=layer,
            )
        )
    result = pd.concat(frames, ignore_index=True)[COLUMNS + MEASURES]
    log.info("LIME checks of %s: %.1f s", run_id, time.perf_counter() - start)
    with atomic_path(table) as tmp:
        result.to_csv(tmp, index=False)
    write_text(summary, lime_checks_markdown(result, run_id, lime_fill))
    return result


def lime_checks_markdown(table: pd.DataFrame, run_id: str, lime_fill: ChosenFill) -> str:
    """Each measure's mean and 95% t-interval over images, per fill."""
    names = {
        "stability": "LIME seed to seed",
        "lime_cam": "LIME vs CAM (GAP model)",
        "lime_gradcam": f"LIME vs Grad-CAM ({table['layer'].iloc[0]})",
        "gradcam_cam": "Grad-CAM vs CAM (reference)",
    }
    fills = list(dict.fromkeys(table["fill"]))
    lines = [
        f"# LIME checks: {run_id}",
        "",
        f"Spearman rank correlation over superpixels, mean [95% t-interval] over {table['image'].nunique()} "
        f"image(s); {int(table['seeds'].iloc[0])} LIME seeds of {int(table['samples'].iloc[0])} samples each. "
        f"The explain rule's LIME hides superpixels with: {lime_fill.note}.",
        "",
        "| measure | " + " | ".join(f"fill: {FILL_LABELS[f]}" for f in fills) + " |",
        "|---|" + "---:|" * len(fills),
    ]
    for measure, name in names.items():
        cells = []
        for fill in fills:
            mean, low, high, n = mean_interval(table.loc[table["fill"] == fill, measure])
            cells.append("-" if n == 0 else f"{mean:.3f} [{low:.3f}, {high:.3f}]" if low == low else f"{mean:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
