"""Grad-CAM: where a conv layer's features push the class score up.

Implements Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep
Networks via Gradient-based Localization", arXiv:1610.02391).

The score is the pre-softmax logit: softmax gradients vanish for confident
predictions and mix in the other classes. The study reads Grad-CAM at the last
conv layer of VGG blocks 3, 4 and 5 to choose how many blocks to freeze.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import (
    INDICES,
    Explainer,
    class_scores,
    conv_layer_names,
    find_layer,
    input_spec,
    last_conv_layer,
    prepare_inputs,
    resize_maps,
    resolve_targets,
    spatial_output,
    traced,
)

VGG_GRADCAM_LAYERS = ("block3_conv3", "block4_conv3", "block5_conv3")


def default_gradcam_layers(model: keras.Model) -> list[str]:
    """The study's layers (last conv of VGG blocks 3-5), else the model's last conv layer."""
    present = set(conv_layer_names(model))
    vgg = [name for name in VGG_GRADCAM_LAYERS if name in present]
    return vgg or [last_conv_layer(model)]


class GradCAM(Explainer):
    """Grad-CAM maps (Selvaraju et al. 2017, arXiv:1610.02391) of one layer or several, one gradient pass per batch.

    ``explain`` returns (N, h, w) maps of the one layer at its resolution, or at the
    input's when ``upsample`` is set; ``explain_layers`` returns every layer's maps from
    the same pass (several layers cost about what the shallowest alone does).
    :func:`normalise_maps` scales them for display.

    Args:
        model: a Keras classifier (see :func:`class_scores` for which heads are understood).
        layer_name: the conv layer whose feature maps are weighted, e.g. ``block5_conv3``,
            or a sequence of such layers.
        batch_size: images per gradient pass.
        upsample: return maps at the input's (H, W) instead of the layer's (h, w).

    Raises:
        LayerscopeError: the model has no such layer, the layer's output is not spatial,
            or the model's class scores cannot be found.
    """

    def __init__(
        self, model: keras.Model, layer_name: str | Sequence[str], batch_size: int = 32, upsample: bool = False
    ):
        """Build the side model (layer maps, class scores) and trace its gradient pass once."""
        super().__init__(model, batch_size)
        self.layer_names = [layer_name] if isinstance(layer_name, str) else list(layer_name)
        self.layer_name = self.layer_names[0]
        features = [spatial_output(find_layer(model, name), model) for name in self.layer_names]
        scores, _ = class_scores(model)
        self.upsample = upsample
        self.num_classes = scores.shape[-1]
        side = keras.Model(model.inputs[0], [*features, scores])
        # A partial, not a lambda: TF keys its retracing warning on the code object, so
        # each new explainer's single trace would count as a retrace of one function.
        self._maps = traced(functools.partial(gradcam_maps, side), input_spec(model), INDICES)

    def explain(self, inputs, targets=None) -> np.ndarray:
        """Grad-CAM maps of the (one) layer for ``targets``.

        Args:
            inputs: images (N, H, W[, C]) in the model's raw pixel range.
            targets: class indices or one-hot rows (see :func:`resolve_targets`); None: the predicted class.

        Returns:
            float32 (N, h, w) non-negative maps, or (N, H, W) when ``upsample`` is set.

        Raises:
            LayerscopeError: several layers (use :meth:`explain_layers`), images that do
                not fit the model, or targets out of range.
        """
        if len(self.layer_names) != 1:
            raise LayerscopeError(f"GradCAM of {len(self.layer_names)} layers: use explain_layers for their maps")
        return self.explain_layers(inputs, targets)[self.layer_name]

    def explain_layers(self, inputs, targets=None) -> dict[str, np.ndarray]:
        """Grad-CAM maps of every layer for ``targets``, from one gradient pass per batch.

        Args:
            inputs: images (N, H, W[, C]) in the model's raw pixel range.
            targets: class indices or one-hot rows (see :func:`resolve_targets`); None: the predicted class.

        Returns:
            ``{layer: float32 (N, h, w) non-negative maps}``, (N, H, W) when ``upsample`` is set.

        Raises:
            LayerscopeError: images that do not fit the model, or targets out of range.
        """
        x = prepare_inputs(self.model, inputs)
        t = resolve_targets(targets, len(x), self.num_classes)
        t = np.full(len(x), -1, np.int32) if t is None else t
        batches = [self._maps(tf.constant(x[s]), tf.constant(t[s])) for s in self._batches(len(x))]
        maps = {
            name: np.concatenate([batch[k].numpy() for batch in batches]) for k, name in enumerate(self.layer_names)
        }
        return {name: resize_maps(m, x.shape[1:3]) for name, m in maps.items()} if self.upsample else maps


def gradcam_maps(side: keras.Model, x: tf.Tensor, targets: tf.Tensor) -> list[tf.Tensor]:
    """Grad-CAM at every feature output of ``side`` (outputs: feature maps..., class scores).

    ReLU(sum_k w_k A_k), w_k the spatial mean of d score / d A_k; target -1 = predicted.
    One gradient pass serves all layers, so several cost about what the shallowest does.

    Args:
        side: a model from the explained model's input to ``[*feature_maps, scores]``.
        x: a batch of prepared images.
        targets: class indices (N,), -1 for the predicted class.

    Returns:
        One (N, h, w) map per feature output, in ``side``'s order.
    """
    with tf.GradientTape() as tape:
        *features, logits = side(x, training=False)
        logits = tf.cast(logits, tf.float32)
        chosen = tf.where(targets < 0, tf.argmax(logits, axis=-1, output_type=tf.int32), targets)
        score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
    # Images do not interact in inference mode, so one tape gives every image's gradient.
    # Differentiate wrt the layer's own output (a float32 copy of a bfloat16 map has none).
    maps = []
    for grads, feature in zip(tape.gradient(score, features), features):
        weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
        maps.append(tf.nn.relu(tf.reduce_sum(weights * tf.cast(feature, tf.float32), axis=-1)))
    return maps
