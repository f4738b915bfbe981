"""What a hidden region becomes when an explanation probes a model by hiding parts of an image.

LIME switches superpixels off and the deletion metric removes a map's top pixels; both
read the model's evidence only if the fill looks neutral to the model. On
electroluminescence images dark and flat regions are what defects look like, so black
(LIME's ``hide_color=0``) turns a healthy cell defective wherever it is applied, and
every superpixel then looks like evidence for "not defective".

Every fill here is one image per input, computed once from the image and its
superpixels and independent of which pixels are hidden, so LIME (which takes one
replacement image) and deletion (which hides a different set at each step) use the same
fill a measurement scored (:func:`fill_images`, :func:`hide`):

- ``black``: zeros (``zero`` is its old name in ``explain.quality.baseline``);
- ``mean``: the image's mean colour;
- ``segment_mean``: each superpixel's own mean colour (lime's ``hide_color=None``);
- ``blur``: the image under a Gaussian blur of sigma = size / 16 (4 px at 64 px), the
  insertion metric's start image (:func:`blur`);
- ``inpaint``: each superpixel filled from its surroundings by biharmonic inpainting
  (``skimage.restoration.inpaint_biharmonic``), one superpixel at a time with the others
  intact (about 0.1 s per 64 px image); a dark defect beside a hidden superpixel bleeds
  into it.

:func:`choose_fill` picks the fill that moves a defect-free cell's prediction least, from a
measurement (:mod:`layerscope.explain.fill_study`); see :data:`CHOICE_RULE` for why
defective cells are not scored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

from layerscope.core.errors import LayerscopeError

FILLS = ("black", "mean", "segment_mean", "blur", "inpaint")
"""The candidate fills, in the order ties are broken."""
FILL_LABELS = {
    "black": "black",
    "mean": "image mean",
    "segment_mean": "superpixel mean",
    "blur": "Gaussian blur",
    "inpaint": "biharmonic inpainting",
}
ALIASES = {"zero": "black"}
"""Old names kept meaning what they meant (``explain.quality.baseline: zero``)."""
AUTO = "auto"
"""The config value that asks for the measured choice."""
NEEDS_SEGMENTS = ("segment_mean", "inpaint")


def canonical_fill(name: str, key: str = "fill") -> str:
    """``name`` as one of :data:`FILLS` (aliases resolved), or a LayerscopeError naming ``key``."""
    fill = ALIASES.get(name, name)
    if fill not in FILLS:
        raise LayerscopeError(f"{key} must be one of {[*FILLS, *ALIASES]}, got {name!r}")
    return fill


def fill_images(images, segments, fill: str) -> np.ndarray:
    """What each pixel of each image becomes when hidden.

    Args:
        images: (N, H, W, C) images in 0..255.
        segments: (N, H, W) superpixel labels (needed for ``segment_mean`` and ``inpaint``;
            may be None for the others).
        fill: one of :data:`FILLS` or an alias.

    Returns:
        float32 (N, H, W, C) fill images in 0..255.

    Raises:
        LayerscopeError: an unknown fill, or a fill that needs superpixels given none or
            superpixels of another shape.
    """
    fill = canonical_fill(fill)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise LayerscopeError(f"fill_images expects images shaped (N, H, W, C), got {x.shape}")
    if fill == "black":
        return np.zeros_like(x)
    if fill == "mean":
        return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).copy()
    if fill == "blur":
        return blur(x)
    if segments is None or np.shape(segments) != x.shape[:3]:
        got = None if segments is None else np.shape(segments)
        raise LayerscopeError(f"the {fill} fill needs superpixels shaped {x.shape[:3]}, got {got}")
    per_image = _segment_mean if fill == "segment_mean" else _inpaint
    return np.stack([per_image(image, labels) for image, labels in zip(x, np.asarray(segments))])


def blur(images: np.ndarray) -> np.ndarray:
    """Gaussian blur with sigma = image size / 16 per channel: the ``blur`` fill and insertion's start image."""
    x = np.asarray(images, dtype=np.float32)
    sigma = max(x.shape[1:3]) / 16
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))


def _segment_mean(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    labels, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(labels))
    flat = image.reshape(-1, image.shape[-1])
    sums = np.stack([np.bincount(inverse, flat[:, c], minlength=len(labels)) for c in range(flat.shape[1])], axis=1)
    return (sums / counts[:, None])[inverse].reshape(image.shape).astype(np.float32)


def _inpaint(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each superpixel inpainted from the intact rest of the image, clipped to 0..255."""
    out = np.empty_like(image)
    for label in np.unique(segments):
        region = segments == label
        out[region] = inpaint_biharmonic(image, region, channel_axis=-1)[region]
    return np.clip(out, 0, 255)


def hide(images, fills, masks) -> np.ndarray:
    """``images`` with the pixels of ``masks`` replaced by ``fills``.

    Args:
        images: (N, H, W, C) images.
        fills: (N, H, W, C) fill images (:func:`fill_images`).
        masks: boolean (N, H, W), True where hidden.

    Returns:
        float32 (N, H, W, C).
    """
    return np.where(np.asarray(masks, dtype=bool)[..., None], fills, images).astype(np.float32)


def superpixel_mask(segments: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``share`` of ``segments``' superpixels (rounded, at least one) as a boolean (H, W) mask."""
    labels = np.unique(segments)
    count = max(1, round(share * len(labels)))
    return np.isin(segments, rng.choice(labels, size=count, replace=False))


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance between class-probability vectors along the last axis: 0 same, 1 disjoint."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


TIE = 1e-6
"""Distances closer than this are ties: float32 forward passes differ by about that much."""
CHOICE_RULE = (
    "the fill with the smallest mean total-variation distance between a defect-free (first-class) cell's "
    f"class probabilities before and after hiding a random share of its superpixels, averaged over the "
    f"shares; ties (within {TIE:g}) go to the earlier of " + ", ".join(FILLS)
)
"""How :func:`choose_fill` picks. Only cells without a defect are scored: there, any movement is
the fill's own doing, with no evidence to remove. On defective cells hiding also removes real
evidence, so a fill that moves them less may just hide less: biharmonic inpainting pulls a
neighbouring dark defect into the hidden superpixel (tests/test_explain_fills.py). Defective
cells are measured and reported beside, not scored."""


def fill_scores(summary: pd.DataFrame, cells: str) -> pd.Series:
    """Each fill's mean distance over the shares on one kind of cell, lowest first.

    Args:
        summary: one row per kind of cell, share and fill with the mean distance ``tv``
            (:func:`layerscope.explain.fill_study.summarise_fills`).
        cells: the kind of cell scored.

    Returns:
        Mean ``tv`` per fill, indexed by fill, sorted best first.
    """
    rows = summary[(summary["cells"] == cells) & summary["fill"].isin(FILLS)]
    scores = rows.groupby("fill")["tv"].mean()
    order = [fill for fill in FILLS if fill in scores.index]
    return scores.reindex(order).sort_values(kind="stable")


def choose_fill(summary: pd.DataFrame, defect_free: str) -> str:
    """The fill :data:`CHOICE_RULE` picks from a measurement's summary.

    Args:
        summary: as for :func:`fill_scores`.
        defect_free: the ``cells`` value of the defect-free cells.

    Raises:
        LayerscopeError: no fill measured on those cells.
    """
    scores = fill_scores(summary, defect_free).dropna()
    if scores.empty:
        raise LayerscopeError(f"no fill was measured on {defect_free!r} cells: cannot choose one")
    tied = scores.index[scores <= scores.iloc[0] + TIE]
    return next(fill for fill in FILLS if fill in tied)


@dataclass(frozen=True)
class ChosenFill:
    """The fill a stage uses and where it came from ("measured" or "set in config")."""

    fill: str
    source: str

    @property
    def note(self) -> str:
        """How figures and tables name it: ``superpixel mean (measured)``."""
        return f"{FILL_LABELS[self.fill]} ({self.source})"


def resolve_fill(setting: str, measured: str | None, key: str) -> ChosenFill:
    """The fill a config key asks for: the measured choice for :data:`AUTO`, else the named fill.

    Args:
        setting: the config value: :data:`AUTO` or a fill name (aliases allowed).
        measured: the measured choice (``fills.json``'s ``fill``), or None when not measured.
        key: the config key, for the error.

    Returns:
        A :class:`ChosenFill`.

    Raises:
        LayerscopeError: an unknown fill, or ``auto`` without a measurement.
    """
    if setting == AUTO:
        if measured is None:
            raise LayerscopeError(f"{key}: auto needs the perturbation_fills measurement (fills.json), none given")
        return ChosenFill(canonical_fill(measured, "fills.json's fill"), "measured")
    return ChosenFill(canonical_fill(setting, key), "set in config")


def read_fill_choice(path: str | os.PathLike) -> str:
    """The fill a perturbation_fills job chose (its ``fills.json``), or one line naming the damaged file."""
    try:
        return str(json.loads(Path(path).read_text())["fill"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise LayerscopeError(
            f"{path}: unreadable fill choice ({type(err).__name__}: {err}); rerun the perturbation_fills rule"
        ) from None
