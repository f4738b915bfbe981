"""The perturbation_fills rule: which fill moves a run's predictions least when superpixels are hidden.

For test cells of the first class (defect-free on elpv) and of the last (the most
defective), a random share of each cell's SLIC superpixels (LIME's segmentation) is
hidden under every fill of :mod:`layerscope.explain.fills`, the same masks for every fill,
and the class probabilities compared with the clean cell's by their total-variation
distance. Per kind of cell, share and fill: the mean over images with a 95% t-interval.
:func:`layerscope.explain.fills.choose_fill` picks, from the defect-free cells, the fill
LIME and deletion use (``explain.lime.hide`` and ``explain.quality.baseline`` set to ``auto``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_interval
from layerscope.explain.base import prepare_inputs, probability_pass
from layerscope.explain.fill_report import NONE, fills_markdown, plot_fills
from layerscope.explain.fills import (
    CHOICE_RULE,
    FILLS,
    choose_fill,
    fill_images,
    fill_scores,
    hide,
    superpixel_mask,
    total_variation,
)
from layerscope.explain.lime_method import rgb_uint8, superpixels

log = logging.getLogger(__name__)


def fill_cells(labels: np.ndarray, classes: list[str], count: int, seed: int) -> dict[str, np.ndarray]:
    """Up to ``count`` test-set indices of the first class and of the last, drawn with ``seed``.

    Returns:
        ``{"class <first>": indices, "class <last>": indices}``, each sorted, the first class's first.

    Raises:
        LayerscopeError: fewer than two classes, or a class without test images.
    """
    if len(classes) < 2:
        raise LayerscopeError(f"the fill measurement needs a first and a last class, got classes {classes}")
    rng = np.random.default_rng(seed)
    cells = {}
    for label in (0, len(classes) - 1):
        rows = np.flatnonzero(np.asarray(labels) == label)
        if len(rows) == 0:
            raise LayerscopeError(f"the test split has no image of class {classes[label]!r} to measure fills on")
        cells[f"class {classes[label]}"] = np.sort(rng.choice(rows, size=min(count, len(rows)), replace=False))
    return cells


def measure_fills(
    model: keras.Model,
    images,
    segments: np.ndarray,
    shares: list[float],
    masks: int,
    seed: int,
    batch_size: int = 128,
) -> pd.DataFrame:
    """How far each fill moves the class probabilities when a share of superpixels is hidden.

    Args:
        model: a classifier with class probabilities out.
        images: (N, H, W[, C]) images in 0..255.
        segments: (N, H, W) their superpixels.
        shares: shares of each image's superpixels to hide (each in (0, 1]).
        masks: random masks per image and share; every fill hides the same ones.
        seed: draws the masks.
        batch_size: images per forward pass.

    Returns:
        One row per image, share and fill: ``image`` (position in ``images``), ``share``,
        ``fill``, ``tv`` (mean over the masks of the total-variation distance to the clean
        image's probabilities) and ``p<k>`` (mean probability of class k after hiding);
        plus one row per image with fill :data:`NONE`, share 0: the clean probabilities.
    """
    x = prepare_inputs(model, images)
    forward = probability_pass(model)

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [forward(tf.constant(batch[i : i + batch_size])).numpy() for i in range(0, len(batch), batch_size)]
        )

    rng = np.random.default_rng(seed)
    hidden = np.array([[[superpixel_mask(s, share, rng) for _ in range(masks)] for share in shares] for s in segments])
    clean = predict(x)
    frames = [_rows(clean[:, None, None], clean, [0.0], NONE)]
    n, k = len(x), len(shares) * masks
    for fill in FILLS:
        filled = fill_images(x, segments, fill)
        batch = hide(np.repeat(x, k, axis=0), np.repeat(filled, k, axis=0), hidden.reshape(n * k, *x.shape[1:3]))
        frames.append(_rows(predict(batch).reshape(n, len(shares), masks, -1), clean, shares, fill))
    return pd.concat(frames, ignore_index=True)


def _rows(probabilities: np.ndarray, clean: np.ndarray, shares: list[float], fill: str) -> pd.DataFrame:
    """Tidy rows of (N, shares, masks, classes) probabilities against the clean (N, classes) ones."""
    n = len(probabilities)
    tv = total_variation(probabilities, clean[:, None, None]).mean(axis=2)
    mean = probabilities.mean(axis=2)
    frame = pd.DataFrame(
        {
            "image": np.repeat(np.arange(n), len(shares)),
            "share": np.tile(shares, n),
            "fill": fill,
            "tv": tv.reshape(-1),
        }
    )
    for c in range(mean.shape[-1]):
        frame[f"p{c}"] = mean[..., c].reshape(-1)
    return frame


def summarise_fills(measured: pd.DataFrame) -> pd.DataFrame:
    """Mean over images per kind of cell, share and fill, with the 95% t-interval of the mean distance.

    Args:
        measured: :func:`measure_fills` rows with a ``cells`` column (the kind of cell).

    Returns:
        Columns ``cells``, ``share``, ``fill``, ``images``, ``tv``, ``tv_low``, ``tv_high``
        and the mean ``p<k>``; the interval is NaN for fewer than two images or no spread.
    """
    probability_columns = [c for c in measured.columns if c.startswith("p") and c[1:].isdigit()]
    rows = []
    for (cells, share, fill), group in measured.groupby(["cells", "share", "fill"], sort=False):
        _, low, high, _ = mean_interval(group["tv"])
        rows.append(
            {
                "cells": cells,
                "share": share,
                "fill": fill,
                "images": len(group),
                "tv": group["tv"].mean(),
                "tv_low": low,
                "tv_high": high,
                **group[probability_columns].mean().to_dict(),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class FillFiles:
    """Where the perturbation_fills rule writes.

    Attributes:
        table: csv of the summary (one row per kind of cell, share and fill).
        summary: Markdown of the distances, the probabilities and the choice.
        figure: examples of each fill and the distances against the share hidden.
        choice: json with the chosen ``fill``, the rule and each fill's score.
    """

    table: str | os.PathLike
    summary: str | os.PathLike
    figure: str | os.PathLike
    choice: str | os.PathLike


def write_fill_study(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    cfg: dict,
    segmentation: dict,
    seed: int,
    run_id: str,
    files: FillFiles,
    batch_size: int = 128,
) -> str:
    """Measure every fill on one run's test cells, write every output and return the chosen fill.

    Args:
        model: the run's model.
        images: the test split (N, H, W[, C]) in 0..255.
        labels: its integer labels.
        classes: class names by label.
        cfg: the ``explain.fills`` config (images, masks, shares).
        segmentation: SLIC's ``n_segments`` and ``compactness`` (``explain.lime``).
        seed: draws the cells and the masks.
        run_id: the run's id, for the outputs.
        files: where to write.
        batch_size: images per forward pass.

    Returns:
        The fill :func:`choose_fill` picks.

    Raises:
        LayerscopeError: a class without test images, or images that do not fit the model.
    """
    start = time.perf_counter()
    cells = fill_cells(labels, classes, cfg["images"], seed)
    frames, examples = [], {}
    for kind, indices in cells.items():
        x = prepare_inputs(model, images[indices])
        segments = np.stack([superpixels(image, **segmentation) for image in rgb_uint8(x)])
        measured = measure_fills(model, x, segments, cfg["shares"], cfg["masks"], seed, batch_size)
        frames.append(measured.assign(cells=kind, test_index=indices[measured["image"]]))
        examples[kind] = (x[0], segments[0])
    measured = pd.concat(frames, ignore_index=True)
    summary = summarise_fills(measured)
    defect_free = next(iter(cells))
    choice = choose_fill(summary, defect_free)
    scores = {kind: fill_scores(summary, kind) for kind in cells}
    log.info(
        "fills of %s measured in %.1f s; scores on %s %s; chosen %s",
        run_id,
        time.perf_counter() - start,
        defect_free,
        scores[defect_free].round(4).to_dict(),
        choice,
    )
    with atomic_path(files.table) as tmp:
        summary.assign(run=run_id).to_csv(tmp, index=False)
    record = {
        "fill": choice,
        "rule": CHOICE_RULE,
        "scored_cells": defect_free,
        "scores": {kind: {fill: float(v) for fill, v in by_fill.items()} for kind, by_fill in scores.items()},
        "images": {kind: len(indices) for kind, indices in cells.items()},
        "shares": list(cfg["shares"]),
        "masks": cfg["masks"],
    }
    write_text(files.choice, json.dumps(record, indent=1) + "\n")
    write_text(files.summary, fills_markdown(summary, scores, choice, run_id, classes, cfg))
    plot_fills(summary, examples, choice, run_id, seed, max(cfg["shares"]), files.figure)
    return choice
