"""When features appear during training, and how invariant they are across images.

Study B reports that a layer's feature maps settle after a depth-dependent number of
iterations (the last stage's onset hints at how long to train) and that late-stage
maps of one object agree across images while early-stage maps vary. Both are
measured here with Pearson correlation on maps already computed; pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from layerscope.errors import LayerscopeError


@dataclass(frozen=True)
class Onset:
    """A layer's onset: ``index`` into the checkpoints (None: never settles), its
    training ``step``, and the correlation of every checkpoint with the final one."""

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
    """Per layer, the first checkpoint from which correlation with the final map stays
    >= ``threshold``.

    ``maps_by_checkpoint[layer]`` holds one map per checkpoint, in training order
    (any shape per checkpoint, e.g. several images' maps stacked); ``steps`` are the
    checkpoints' training steps (default: their indices). A constant final map has no
    defined correlation, so such a layer never settles (index None).
    """
    result = {}
    for layer, maps in maps_by_checkpoint.items():
        if len(maps) == 0:
            raise LayerscopeError(f"layer '{layer}' has no checkpoint maps")
        labels = list(range(len(maps))) if steps is None else list(steps)
        if len(labels) != len(maps):
            raise LayerscopeError(
                f"layer '{layer}' has {len(maps)} checkpoint maps but {len(labels)} steps"
            )
        curve = np.array([pearson(m, maps[-1]) for m in maps])
        index = None
        for i in range(len(curve) - 1, -1, -1):  # walk back while it stays settled
            if not curve[i] >= threshold:
                break
            index = i
        result[layer] = Onset(index, None if index is None else labels[index], curve)
    return result


def mean_pairwise_correlation(maps_by_layer: Mapping[str, Sequence]) -> dict[str, float]:
    """Per layer, the mean Pearson correlation over all pairs of images' maps.

    ``maps_by_layer[layer]`` holds one map per image (several images of one class);
    high values mean the layer sees the object the same way in every image. Pairs
    involving a constant map are left out; NaN if no pair is left.
    """
    result = {}
    for layer, maps in maps_by_layer.items():
        if len(maps) < 2:
            raise LayerscopeError(
                f"layer '{layer}' needs maps of at least 2 images to correlate, got {len(maps)}"
            )
        values = [pearson(a, b) for a, b in combinations(maps, 2)]
        finite = [v for v in values if np.isfinite(v)]
        result[layer] = float(np.mean(finite)) if finite else float("nan")
    return result
