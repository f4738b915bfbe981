"""CAM: the class-weighted sum of the feature maps that feed a GAP head.

With logits = W^T GAP(A) + b, the class score splits exactly over positions:
sum_k W[k, c] A_k is that split (CAM: Zhou et al. 2016, "Learning Deep Features for
Discriminative Localization", arXiv:1512.04150). It only exists for a conv -> GAP ->
Dense head, which is why the study trains a separate GAP model for it;
``layerscope.train.models.vgg16(head="gap")`` puts GAP on ``block5_conv3`` as Zhou et al.
do, so the maps have that layer's resolution (H/16), not block5_pool's (H/32).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import (
    LOGITS,
    Explainer,
    class_scores,
    input_spec,
    prepare_inputs,
    resize_maps,
    resolve_targets,
    traced,
)

GAP = "gap"


class CAM(Explainer):
    """Class activation maps of a GAP-head model (Zhou et al. 2016, arXiv:1512.04150).

    ``explain`` returns (N, h, w) maps at the resolution of the maps feeding "gap",
    or at the input's when ``upsample`` is set.

    Args:
        model: a conv -> ``GlobalAveragePooling2D(name="gap")`` -> Dense classifier.
        batch_size: images per forward pass.
        upsample: return maps at the input's (H, W) instead of the feature maps' (h, w).

    Raises:
        LayerscopeError: the model has no "gap" layer, or something other than dropout sits
            between it and the Dense score layer (the CAM would not be exact).
    """

    def __init__(self, model: keras.Model, batch_size: int = 32, upsample: bool = False):
        """Check the GAP head and trace the pass to its feature maps and class scores once."""
        super().__init__(model, batch_size)
        gap = _gap_layer(model)
        scores, dense = class_scores(model)
        _check_linear_head(model, gap, dense)
        self.upsample = upsample
        self._dense = dense
        side = keras.Model(model.inputs[0], [gap.input, scores])
        # Traced, not eager: an eager keras call runs every conv through TF's slow fallback path.
        self._features = traced(functools.partial(_features_and_scores, side), input_spec(model))

    def explain(self, inputs, targets=None) -> np.ndarray:
        """CAM maps for ``targets``.

        Args:
            inputs: images (N, H, W[, C]) in the model's raw pixel range.
            targets: class indices or one-hot rows (see :func:`resolve_targets`); None: the predicted class.

        Returns:
            float32 (N, h, w) signed maps, or (N, H, W) when ``upsample`` is set.

        Raises:
            LayerscopeError: images that do not fit the model, or targets out of range.
        """
        x = prepare_inputs(self.model, inputs)
        # Read at every call, so an explainer follows weights changed in place (a randomisation cascade).
        kernel = keras.ops.convert_to_numpy(self._dense.kernel).astype(np.float32)
        t = resolve_targets(targets, len(x), kernel.shape[1])
        maps = []
        for s in self._batches(len(x)):
            features, logits = (out.numpy() for out in self._features(tf.constant(x[s])))
            chosen = np.argmax(logits, axis=-1) if t is None else t[s]
            weights = kernel[:, chosen].T  # (batch, channels)
            features = features.astype(np.float32)
            maps.append(np.einsum("nhwk,nk->nhw", features, weights))
        maps = np.concatenate(maps)
        return resize_maps(maps, x.shape[1:3]) if self.upsample else maps


def _features_and_scores(side: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
    return side(x, training=False)


def _gap_layer(model: keras.Model) -> keras.layers.Layer:
    try:
        gap = model.get_layer(GAP)
    except ValueError:
        raise LayerscopeError(
            f"CAM needs the GAP model (a vgg16-gap-freeze<k> run, whose head is conv -> "
            f"GlobalAveragePooling2D(name='{GAP}') -> Dense(name='{LOGITS}')); model "
            f"'{model.name}' has no layer named '{GAP}'. Use Grad-CAM for this model."
        ) from None
    if not isinstance(gap, keras.layers.GlobalAveragePooling2D):
        raise LayerscopeError(
            f"CAM needs layer '{GAP}' of model '{model.name}' to be GlobalAveragePooling2D, it is {type(gap).__name__}"
        )
    return gap


def _check_linear_head(model: keras.Model, gap, logits) -> None:
    """Only dropout (identity at inference) may sit between "gap" and the score layer."""
    if logits is None:
        raise LayerscopeError(f"CAM needs a Dense score layer after '{GAP}'; model '{model.name}' has none")
    names = [layer.name for layer in model.layers]
    between = model.layers[names.index(gap.name) + 1 : names.index(logits.name)]
    others = [layer.name for layer in between if not isinstance(layer, keras.layers.Dropout)]
    if others or names.index(logits.name) < names.index(gap.name):
        raise LayerscopeError(
            f"CAM needs '{logits.name}' to act on '{GAP}' directly; model '{model.name}' has "
            f"{others or 'logits before gap'} in between, so its CAM would not be exact"
        )
