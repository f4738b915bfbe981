"""When features appear during training, and how invariant they are across images.

Study B (Kwak 2021) reports that a layer's feature maps settle after a depth-dependent
number of iterations (about 20 / 100 / 200 for the first / middle / last stage; the last
stage's onset hints at how long to train) and that late-stage maps of one object agree
across images while early-stage maps vary. Both are measured here with Pearson
correlation on maps already computed; pure numpy.

Onset of one unit (a channel seen on one image): the first reading from which the
correlation of its map with the end-of-training map stays >= the threshold. A layer's
onset is the median over its units, with the quartiles as spread, since single units
settle at very different times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from layerscope.core.errors import LayerscopeError


@dataclass(frozen=True)
class Onset:
    """A layer's onset, as :func:`feature_onset` reports it.

    Attributes:
        index: index into the checkpoints from which the map stays settled (None: never settles).
        step: that checkpoint's training step (None with ``index``).
        correlation: the correlation of every checkpoint's map with the final one.
    """

    index: int | None
    step: int | None
    correlation: np.ndarray


def pearson(a, b) -> float:
    """Pearson correlation of two maps of any shape; NaN when either is constant."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise LayerscopeError(f"cannot correlate maps of shapes {np.shape(a)} and {np.shape(b)}")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def feature_onset(
    maps_by_checkpoint: Mapping[str, Sequence],
    threshold: float = 0.9,
    steps: Sequence[int] | None = None,
) -> dict[str, Onset]:
    """Per layer, the first checkpoint from which correlation with the final map stays >= ``threshold``.

    The onset measure of study B (Kwak 2021): early layers settle early, the last stage late.
    A constant final map has no defined correlation, so such a layer never settles (index None).

    Args:
        maps_by_checkpoint: per layer, one map per checkpoint in training order (any shape
            per checkpoint, e.g. several images' maps stacked).
        threshold: the Pearson correlation a map must keep with the final one.
        steps: the checkpoints' training steps (default: their indices).

    Returns:
        Per layer, its :class:`Onset`.

    Raises:
        LayerscopeError: a layer with no maps, or a ``steps`` of another length.
    """
    result = {}
    for layer, maps in maps_by_checkpoint.items():
        if len(maps) == 0:
            raise LayerscopeError(f"layer '{layer}' has no checkpoint maps")
        labels = list(range(len(maps))) if steps is None else list(steps)
        if len(labels) != len(maps):
            raise LayerscopeError(f"layer '{layer}' has {len(maps)} checkpoint maps but {len(labels)} steps")
        curve = np.array([pearson(m, maps[-1]) for m in maps])
        index = settle_index(curve, threshold)
        result[layer] = Onset(index, None if index is None else labels[index], curve)
    return result


def settle_index(curve, threshold: float) -> int | None:
    """The first index from which ``curve`` stays >= ``threshold`` to its end.

    NaN breaks the run; None when the last value is below the threshold.
    """
    index = None
    for i in range(len(curve) - 1, -1, -1):  # walk back while it stays settled
        if not curve[i] >= threshold:
            break
        index = i
    return index


def correlation_curves(maps, reference) -> np.ndarray:
    """Pearson correlation of every unit's map at every reading with its reference map.

    ``maps``: (readings, units, ...) one map per reading and unit; ``reference``:
    (units, ...). Returns (units, readings); NaN where a map or the reference is constant.
    """
    maps = np.asarray(maps, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if maps.ndim < 2 or maps.shape[1:] != reference.shape:
        raise LayerscopeError(
            f"maps of shape {maps.shape} do not match reference maps of shape {reference.shape}: "
            "expected (readings, *reference shape)"
        )
    x = maps.reshape(maps.shape[0], maps.shape[1], -1)
    y = reference.reshape(reference.shape[0], -1)
    x = x - x.mean(axis=2, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=2) * (y * y).sum(axis=1)[None])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denominator > 0, (x * y[None]).sum(axis=2) / denominator, np.nan)
    return r.T


@dataclass(frozen=True)
class LayerOnset:
    """Onset of a layer over its units, as :func:`layer_onset` reports it.

    Attributes:
        median: median onset step over the units that settle.
        q25: lower quartile of those steps.
        q75: upper quartile of those steps.
        units: how many units were measured.
        settled: how many of them settle (a unit whose maps are constant never does).
        unit_steps: every unit's onset step, NaN where it never settles.
    """

    median: float
    q25: float
    q75: float
    units: int
    settled: int
    unit_steps: np.ndarray


def unit_onsets(curves, steps: Sequence[int], threshold: float = 0.9) -> np.ndarray:
    """Onset step of every unit from its correlation curve (units, readings); NaN: never."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    steps = np.asarray(steps)
    if curves.shape[1] != len(steps):
        raise LayerscopeError(f"{curves.shape[1]} readings per curve but {len(steps)} steps")
    if len(steps) > 1 and not (np.diff(steps) > 0).all():
        raise LayerscopeError(f"reading steps must increase, got {steps.tolist()}")
    out = np.full(len(curves), np.nan)
    for u, curve in enumerate(curves):
        index = settle_index(curve, threshold)
        if index is not None:
            out[u] = steps[index]
    return out


def layer_onset(curves, steps: Sequence[int], threshold: float = 0.9) -> LayerOnset:
    """Median onset over a layer's units with its interquartile range.

    Units that never settle are left out of the quantiles and counted in ``settled``.
    """
    onsets = unit_onsets(curves, steps, threshold)
    settled = onsets[np.isfinite(onsets)]
    if settled.size:
        q25, median, q75 = np.quantile(settled, [0.25, 0.5, 0.75])
    else:
        q25 = median = q75 = float("nan")
    return LayerOnset(float(median), float(q25), float(q75), len(onsets), int(settled.size), onsets)


def mean_pairwise_correlation(maps_by_layer: Mapping[str, Sequence]) -> dict[str, float]:
    """Per layer, the mean Pearson correlation over all pairs of images' maps.

    The invariance measure of study B (Kwak 2021): high values mean the layer sees the
    object the same way in every image. Pairs involving a constant map are left out.

    Args:
        maps_by_layer: per layer, one map per image (several images of one class).

    Returns:
        Per layer, the mean correlation; NaN if no pair is left.

    Raises:
        LayerscopeError: a layer with maps of fewer than 2 images.
    """
    result = {}
    for layer, maps in maps_by_layer.items():
        if len(maps) < 2:
            raise LayerscopeError(f"layer '{layer}' needs maps of at least 2 images to correlate, got {len(maps)}")
        values = [pearson(a, b) for a, b in combinations(maps, 2)]
        finite = [v for v in values if np.isfinite(v)]
        result[layer] = float(np.mean(finite)) if finite else float("nan")
    return result
