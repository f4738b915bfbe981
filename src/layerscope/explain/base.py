"""What every explanation method shares: input and target handling, layer lookup.

Methods follow Xplique's shape: ``Explainer(model, batch_size).explain(inputs,
targets) -> maps``. None of them changes the model it is given; they build side
models from its tensors instead.
"""

from __future__ import annotations

import abc
import functools
import hashlib
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from layerscope.core.errors import LayerscopeError

LOGITS = "logits"


class Explainer(abc.ABC):
    """An explanation method bound to one model; ``explain`` maps a batch of images.

    Args:
        model: the Keras model to explain; it is never modified.
        batch_size: images per forward/backward pass, to bound memory.

    Raises:
        LayerscopeError: ``model`` is not a ``keras.Model`` or ``batch_size`` < 1.
    """

    def __init__(self, model: keras.Model, batch_size: int = 32):
        """Check and keep the model and batch size shared by every method."""
        if not isinstance(model, keras.Model):
            raise LayerscopeError(f"expected a keras.Model to explain, got {type(model).__name__}")
        if int(batch_size) < 1:
            raise LayerscopeError(f"batch_size must be a positive integer, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def explain(self, inputs: np.ndarray, targets=None) -> np.ndarray:
        """One map per input image.

        Args:
            inputs: images shaped (N, H, W) or (N, H, W, C), in the model's raw pixel range.
            targets: what to explain, per method (a class or a channel); None: the prediction.

        Returns:
            One explanation per image, first axis N.
        """

    def _batches(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.batch_size):
            yield slice(start, min(start + self.batch_size, n))


def prepare_inputs(model: keras.Model, inputs) -> np.ndarray:
    """Raw images as the model takes them: float32 (N, H, W, C), grey <-> colour matched.

    Accepts (N, H, W) and (N, H, W, 1) grey images; grey is repeated to the model's
    channel count, since the dataset loaders may hand either to any model.

    Args:
        model: the model whose input shape the images must fit.
        inputs: array-like images, (N, H, W) or (N, H, W, C).

    Returns:
        float32 (N, H, W, C) images with the model's channel count.

    Raises:
        LayerscopeError: the array is not 3-D or 4-D, or its image shape does not fit the model.
    """
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise LayerscopeError(f"expected images shaped (N, H, W[, C]), got an array of shape {np.shape(inputs)}")
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


def traced(function, *signature: tf.TensorSpec):
    """``function`` as one TensorFlow graph for inputs of ``signature`` (any batch size), traced at its first call.

    Autograph is off: the explainers' Python has no control flow on tensors, and
    converting it cost about 0.05 s per traced function (VGG-16's feature maps trace about 30).
    """
    return tf.function(function, input_signature=list(signature), autograph=False)


def probability_pass(model: keras.Model):
    """One traced probability pass of ``model`` for any batch size (float32 images in, float32 out)."""
    return traced(functools.partial(_probabilities, model), input_spec(model))


def _probabilities(model: keras.Model, x: tf.Tensor) -> tf.Tensor:
    return tf.cast(model(x, training=False), tf.float32)


def resolve_targets(targets, n: int, num_classes: int | None = None) -> np.ndarray | None:
    """Class indices (N,) from None, an int, indices (N,) or one-hot rows (N, C).

    Args:
        targets: None, one class index for every image, N class indices or N one-hot rows.
        n: the number of images.
        num_classes: the model's class count, to range-check the indices (None: unchecked).

    Returns:
        int32 (N,) class indices, or None when ``targets`` is None (explain the prediction).

    Raises:
        LayerscopeError: wrong shape, non-integer indices, or classes out of range.
    """
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
        raise LayerscopeError(f"target classes {t.min()}..{t.max()} are out of range for {num_classes} classes")
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


def _is_softmax(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = (
        layer.get_config().get("activation")
        if isinstance(layer, (keras.layers.Activation, keras.layers.Dense))
        else None
    )
    return activation == "softmax"


def class_scores(model: keras.Model) -> tuple[keras.KerasTensor, keras.layers.Dense | None]:
    """The model's pre-softmax class scores, and the Dense layer that computes them.

    Gradients of probabilities saturate for confident predictions; scores do not. Any
    Keras classifier works: a layer named ``logits`` is taken as is; else a final softmax
    ``Activation``/``Softmax`` layer is skipped to its input; else a final
    ``Dense(..., activation="softmax")`` is read through a linear twin with its weights;
    else the output itself is taken as scores when the last layer is linear.

    Args:
        model: a functional or sequential Keras classifier with one (N, classes) output.

    Returns:
        ``(scores, dense)``: the score tensor to build side models from, and the Dense
        layer whose kernel maps features to scores (None when the scores come from
        another kind of layer).
    """
    try:
        layer = model.get_layer(LOGITS)
        return layer.output, layer
    except ValueError:
        pass
    last = model.layers[-1]
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2 or last.output is not model.outputs[0]:
        raise LayerscopeError(
            f"model '{model.name}' is not a classifier with one (N, classes) output ending in its last layer; "
            f"name its pre-softmax Dense layer '{LOGITS}' so explanation methods can find the class scores"
        )
    if isinstance(last, keras.layers.Dense) and _is_softmax(last):
        twin = keras.layers.Dense(last.units, use_bias=last.use_bias, name=f"{last.name}_scores")
        scores = twin(last.input)
        twin.set_weights(last.get_weights())
        return scores, last
    if _is_softmax(last):
        scores = last.input
        producer = next((layer for layer in model.layers if layer.output is scores), None)
        return scores, producer if isinstance(producer, keras.layers.Dense) else None
    if isinstance(last, keras.layers.Dense) and last.get_config().get("activation") == "linear":
        return last.output, last
    raise LayerscopeError(
        f"model '{model.name}' ends in layer '{last.name}' ({type(last).__name__}), neither softmax nor linear; "
        f"name its pre-softmax Dense layer '{LOGITS}' so explanation methods can find the class scores"
    )


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
    """Bilinear upsampling of (N, h, w) maps to (N, *size), to overlay on the input.

    Args:
        maps: (N, h, w) maps at a layer's resolution.
        size: the target (H, W), usually the input image's.

    Returns:
        float32 (N, H, W) maps.
    """
    resized = tf.image.resize(np.asarray(maps, dtype=np.float32)[..., None], size, "bilinear")
    return resized.numpy()[..., 0]


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling to [0, 1] for display; a flat map becomes zeros.

    Also turns gradient-ascent images (any value range) back into viewable ones.

    Args:
        maps: (N, ...) maps or images, one per image along the first axis.

    Returns:
        float32 array of the same shape, each image scaled to [0, 1] on its own.
    """
    m = np.asarray(maps, dtype=np.float32)
    axes = tuple(range(1, m.ndim))
    low = m.min(axis=axes, keepdims=True)
    span = m.max(axis=axes, keepdims=True) - low
    return np.divide(m - low, span, out=np.zeros_like(m), where=span > 0)


def spread_over_classes(labels: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` image indices, one class after another (each class's first image first)."""
    labels = np.asarray(labels)
    queues = [list(np.flatnonzero(labels == c)) for c in dict.fromkeys(labels.tolist())]
    chosen: list[int] = []
    while len(chosen) < min(count, len(labels)):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(int(queue.pop(0)))
    return np.array(chosen, dtype=np.int64)


def array_digest(array) -> bytes:
    """A key for an array's contents, shape and dtype: what the explanation caches look results up by."""
    a = np.ascontiguousarray(array)
    return hashlib.blake2b(a.tobytes(), digest_size=16).digest() + repr((a.shape, a.dtype.str)).encode()
