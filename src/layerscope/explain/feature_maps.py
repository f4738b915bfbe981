"""Feature maps by gradient ascent (study B): what one conv channel responds to.

The objective is the channel's output *before* its activation, averaged over space:
after a ReLU, a channel that is negative on the start image has zero gradient and
the image would never move. The layer itself is left untouched; its convolution is
recomputed from its own kernel and bias on its input.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from layerscope.errors import LayerscopeError
from layerscope.explain.base import (
    INDICES,
    PREPROCESS,
    Explainer,
    conv_layer_names,
    find_layer,
    input_spec,
    prepare_inputs,
)


class PreActivation:
    """A conv layer's pre-activation output as a function of the preprocessed input.

    The ascent runs in the space the model normalises into (the output of its
    "preprocess" layer, or its raw input if it has none), as the study prescribes.
    """

    def __init__(self, model: keras.Model, layer_name: str, batch_size: int = 32):
        layer = find_layer(model, layer_name)
        if not isinstance(layer, keras.layers.Conv2D):
            raise LayerscopeError(
                f"layer '{layer_name}' of model '{model.name}' is {type(layer).__name__}, "
                f"not Conv2D; pick one of {conv_layer_names(model)}"
            )
        if layer.data_format != "channels_last":
            raise LayerscopeError(f"layer '{layer_name}' is channels_first; expected channels_last")
        names = [item.name for item in model.layers]
        start = model.get_layer(PREPROCESS).output if PREPROCESS in names else model.inputs[0]
        self.model = model
        self.layer = layer
        self.batch_size = batch_size
        self.shape = tuple(start.shape[1:])
        self._preprocess = keras.Model(model.inputs[0], start) if PREPROCESS in names else None
        self._to_layer = None if layer.input is start else keras.Model(start, layer.input)

    def preprocess(self, inputs) -> np.ndarray:
        """Raw images -> the model's normalised input space, float32 (N, H, W, C)."""
        x = prepare_inputs(self.model, inputs)
        if self._preprocess is None:
            return x
        return np.concatenate(
            [
                keras.ops.convert_to_numpy(self._preprocess(x[i : i + self.batch_size]))
                for i in range(0, len(x), self.batch_size)
            ]
        ).astype(np.float32)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """conv(layer input, kernel) + bias, float32 (N, h, w, channels)."""
        h = x if self._to_layer is None else self._to_layer(x, training=False)
        h = tf.cast(h, tf.float32)
        out = self.layer.convolution_op(h, tf.cast(self.layer.kernel, tf.float32))
        return out + tf.cast(self.layer.bias, tf.float32) if self.layer.use_bias else out

    def channel_means(self, x: tf.Tensor) -> tf.Tensor:
        """Spatial mean of every channel's pre-activation, (N, channels)."""
        return tf.reduce_mean(self(x), axis=(1, 2))


class GradientAscent(Explainer):
    """x <- x + alpha * d mean_ij h_c(x) / dx, from a real image in the model's input space.

    ``explain`` returns the final x, float32 (N, H, W, C) in that space (show it with
    :func:`normalise_maps`); ``targets`` are channel indices, one or one per image.
    """

    def __init__(
        self,
        model: keras.Model,
        layer_name: str,
        steps: int = 20,
        alpha: float = 1.0,
        batch_size: int = 32,
    ):
        super().__init__(model, batch_size)
        if int(steps) < 0:
            raise LayerscopeError(f"gradient ascent steps must be >= 0, got {steps}")
        self.unit = PreActivation(model, layer_name, batch_size)
        self.steps = int(steps)
        self.alpha = float(alpha)
        self._step = tf.function(
            functools.partial(_ascent_step, self.unit, self.alpha),
            input_signature=[input_spec(model, self.unit.shape), INDICES],
        )

    def explain(self, inputs, targets=None) -> np.ndarray:
        """Ascend each image on its channel; None: the image's most responsive channel."""
        x = self.unit.preprocess(inputs)
        channels = self._channels(x, targets)
        out = []
        for s in self._batches(len(x)):
            xb, cb = tf.constant(x[s]), tf.constant(channels[s])
            for _ in range(self.steps):
                xb = self._step(xb, cb)
            out.append(xb.numpy())
        return np.concatenate(out)

    def _channels(self, x: np.ndarray, targets) -> np.ndarray:
        count = self.unit.layer.filters
        if targets is None:
            return np.concatenate(
                [np.argmax(self.unit.channel_means(x[s]), axis=1) for s in self._batches(len(x))]
            ).astype(np.int32)
        channels = np.broadcast_to(np.asarray(targets), (len(x),))
        integral = np.issubdtype(channels.dtype, np.integer)
        if not integral or (channels.size and (channels.min() < 0 or channels.max() >= count)):
            raise LayerscopeError(
                f"channels must be integers in 0..{count - 1} for layer '{self.unit.layer.name}', "
                f"got {np.asarray(targets).tolist()}"
            )
        return channels.astype(np.int32)


def _ascent_step(unit: PreActivation, alpha: float, x: tf.Tensor, channels: tf.Tensor):
    """One step x + alpha * gradient of each image's channel response (a partial per
    explainer, so TF does not count new explainers as retraces of one function)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        response = tf.gather(unit.channel_means(x), channels, axis=1, batch_dims=1)
        objective = tf.reduce_sum(response)  # images are independent: one pass for all
    return x + alpha * tape.gradient(objective, x)


def representative_channels(
    model: keras.Model, layer_name: str, images, k: int = 5, batch_size: int = 32
) -> np.ndarray:
    """The k channels with the highest mean pre-activation on ``images``, strongest first."""
    unit = PreActivation(model, layer_name, batch_size)
    x = unit.preprocess(images)
    means = np.concatenate(
        [unit.channel_means(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    ).mean(axis=0)
    if not 1 <= k <= len(means):
        raise LayerscopeError(f"k must be in 1..{len(means)} for layer '{layer_name}', got {k}")
    return np.argsort(-means, kind="stable")[:k]


def stage_layers(model: keras.Model) -> dict[str, str]:
    """The first, a middle and the last conv layer: the three stages the study shows."""
    names = conv_layer_names(model)
    if not names:
        raise LayerscopeError(f"model '{model.name}' has no Conv2D layer to visualise")
    return {"first": names[0], "middle": names[len(names) // 2], "last": names[-1]}
