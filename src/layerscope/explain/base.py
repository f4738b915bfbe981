"""What every explanation method shares: input and target handling, layer lookup.

Methods follow Xplique's shape: ``Explainer(model, batch_size).explain(inputs,
targets) -> maps``. None of them changes the model it is given; they build side
models from its tensors instead.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from layerscope.errors import LayerscopeError

LOGITS = "logits"
PREPROCESS = "preprocess"


class Explainer(abc.ABC):
    """An explanation method bound to one model; ``explain`` maps a batch of images."""

    def __init__(self, model: keras.Model, batch_size: int = 32):
        if not isinstance(model, keras.Model):
            raise LayerscopeError(f"expected a keras.Model to explain, got {type(model).__name__}")
        if int(batch_size) < 1:
            raise LayerscopeError(f"batch_size must be a positive integer, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def explain(self, inputs: np.ndarray, targets=None) -> np.ndarray:
        """One map per input image; ``targets`` says what to explain (None: the prediction)."""

    def _batches(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.batch_size):
            yield slice(start, min(start + self.batch_size, n))


def prepare_inputs(model: keras.Model, inputs) -> np.ndarray:
    """Raw images as the model takes them: float32 (N, H, W, C), grey <-> colour matched.

    Accepts (N, H, W) and (N, H, W, 1) grey images; grey is repeated to the model's
    channel count, since the dataset loaders may hand either to any model.
    """
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise LayerscopeError(
            f"expected images shaped (N, H, W[, C]), got an array of shape {np.shape(inputs)}"
        )
    expected = model.inputs[0].shape
    channels = expected[-1]
    if x.shape[-1] == 1 and channels not in (None, 1):
        x = np.repeat(x, channels, axis=-1)
    for axis, (got, want) in enumerate(zip(x.shape[1:], expected[1:]), start=1):
        if want is not None and got != want:
            raise LayerscopeError(
                f"images of shape {x.shape[1:]} do not fit model '{model.name}', "
                f"which takes {tuple(expected[1:])} (axis {axis})"
            )
    return x


def input_spec(model: keras.Model, shape: tuple | None = None) -> tf.TensorSpec:
    """A float32 batch spec, so a tf.function traces once per explainer, not per batch size."""
    dims = tuple(model.inputs[0].shape[1:]) if shape is None else tuple(shape)
    return tf.TensorSpec((None, *dims), tf.float32)


INDICES = tf.TensorSpec((None,), tf.int32)


def resolve_targets(targets, n: int, num_classes: int | None = None) -> np.ndarray | None:
    """Class indices (N,) from None, an int, indices (N,) or one-hot rows (N, C)."""
    if targets is None:
        return None
    t = np.asarray(targets)
    if t.ndim == 2:
        t = t.argmax(axis=1)
    t = np.broadcast_to(t, (n,)) if t.ndim == 0 else t
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer):
        raise LayerscopeError(
            f"targets must be one class index, {n} class indices or {n} one-hot rows; "
            f"got an array of shape {np.shape(targets)} and dtype {t.dtype}"
        )
    limit = num_classes if num_classes is not None else np.iinfo(np.int32).max
    if t.size and (t.min() < 0 or t.max() >= limit):
        raise LayerscopeError(
            f"target classes {t.min()}..{t.max()} are out of range for {num_classes} classes"
        )
    return t.astype(np.int32)


def conv_layer_names(model: keras.Model) -> list[str]:
    """The model's 2-D convolution layers in graph order."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def last_conv_layer(model: keras.Model) -> str:
    """The last convolution layer: the Grad-CAM layer of a model without VGG block names."""
    names = conv_layer_names(model)
    if not names:
        raise LayerscopeError(f"model '{model.name}' has no Conv2D layer to explain")
    return names[-1]


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """``model.get_layer`` with an error that lists what the model does have."""
    try:
        return model.get_layer(name)
    except ValueError:
        nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
        hint = (
            f"; it nests sub-models {nested}, build it flat so inner layers can be found"
            if nested
            else f"; its conv layers are {conv_layer_names(model)}"
        )
        raise LayerscopeError(f"model '{model.name}' has no layer named '{name}'{hint}") from None


def logits_layer(model: keras.Model) -> keras.layers.Layer:
    """The pre-softmax layer: gradients of probabilities saturate, logits do not."""
    try:
        return model.get_layer(LOGITS)
    except ValueError:
        raise LayerscopeError(
            f"model '{model.name}' has no layer named '{LOGITS}'; explanation methods need "
            "the pre-softmax Dense layer named so (Dense(num_classes, name='logits'))"
        ) from None


def spatial_output(layer: keras.layers.Layer, model: keras.Model):
    """The layer's output tensor, checked to be a (N, h, w, channels) feature map."""
    output = layer.output
    if len(output.shape) != 4:
        raise LayerscopeError(
            f"layer '{layer.name}' of model '{model.name}' outputs shape {output.shape}; "
            "a spatial (N, h, w, channels) feature map is needed"
        )
    return output


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of (N, h, w) maps to (N, *size), to overlay on the input."""
    resized = tf.image.resize(np.asarray(maps, dtype=np.float32)[..., None], size, "bilinear")
    return resized.numpy()[..., 0]


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling to [0, 1] for display; a flat map becomes zeros.

    Also turns gradient-ascent images (any value range) back into viewable ones.
    """
    m = np.asarray(maps, dtype=np.float32)
    axes = tuple(range(1, m.ndim))
    low = m.min(axis=axes, keepdims=True)
    span = m.max(axis=axes, keepdims=True) - low
    return np.divide(m - low, span, out=np.zeros_like(m), where=span > 0)
