"""Feature maps by gradient ascent (study B, Kwak 2021): what one conv channel responds to.

Activation maximisation after Erhan et al. 2009 ("Visualizing Higher-Layer Features of
a Deep Network") and Olah et al. 2017 ("Feature Visualization", Distill,
distill.pub/2017/feature-visualization), as study B uses it.

The objective is the channel's output *before* its activation, averaged over space:
after a ReLU, a channel that is negative on the start image has zero gradient and
the image would never move. The layer itself is left untouched; its convolution is
recomputed from its own kernel and bias on its input.

The step is scale-free: each step moves the image by ``alpha`` times the gradient
divided by its root mean square (per image), the usual Keras feature-visualisation
recipe (Olah et al. 2017). The raw gradient of a spatial mean is divided by h*w and
depends on the input scale, so the study's alpha = 1.0 on raw gradients moves a
64 px image by hundredths of a grey level. The ascent runs on pixels (0..255, RGB),
through the model's own preprocessing, so alpha is in grey levels: one step changes
each pixel by ``alpha`` in RMS. For the affine preprocessing our models use (Caffe
BGR minus mean, or /255) this is the same path as ascending in the normalised space
the study prescribes, with the step measured in grey levels rather than in that
space's units, and x* needs no de-processing beyond clipping to 0..255 for display.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import (
    INDICES,
    Explainer,
    conv_layer_names,
    find_layer,
    input_spec,
    prepare_inputs,
    traced,
)


class PreActivation:
    """A conv layer's pre-activation output as a function of the model's pixel input.

    Args:
        model: the Keras model holding the layer; it is not modified.
        layer_name: a channels-last ``Conv2D`` layer of ``model``.
        batch_size: images per pass, for callers that batch through it.

    Raises:
        LayerscopeError: no such layer, not a Conv2D, or channels-first.
    """

    def __init__(self, model: keras.Model, layer_name: str, batch_size: int = 32):
        """Find the layer and build the sub-model that feeds it, if it is not the first."""
        layer = find_layer(model, layer_name)
        if not isinstance(layer, keras.layers.Conv2D):
            raise LayerscopeError(
                f"layer '{layer_name}' of model '{model.name}' is {type(layer).__name__}, "
                f"not Conv2D; pick one of {conv_layer_names(model)}"
            )
        if layer.data_format != "channels_last":
            raise LayerscopeError(f"layer '{layer_name}' is channels_first; expected channels_last")
        start = model.inputs[0]
        self.model = model
        self.layer = layer
        self.batch_size = batch_size
        self.shape = tuple(start.shape[1:])
        self._to_layer = None if layer.input is start else keras.Model(start, layer.input)

    def prepare(self, inputs) -> np.ndarray:
        """Images as the model takes them: float32 (N, H, W, C) pixels (see :func:`prepare_inputs`)."""
        return prepare_inputs(self.model, inputs)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """conv(layer input, kernel) + bias, float32 (N, h, w, channels)."""
        h = x if self._to_layer is None else self._to_layer(x, training=False)
        return pre_activation(self.layer, h)

    def channel_means(self, x) -> tf.Tensor:
        """Spatial mean of every channel's pre-activation, (N, channels)."""
        return tf.reduce_mean(self(tf.convert_to_tensor(x, tf.float32)), axis=(1, 2))


class GradientAscent(Explainer):
    """x <- x + alpha * g / rms(g), g = d mean_ij h_c(x) / dx, from a real image.

    Gradient ascent on a channel's mean pre-activation (Erhan et al. 2009; Olah et al.
    2017, distill.pub/2017/feature-visualization), as study B (Kwak 2021) uses it.
    ``explain`` returns x*; ``objective`` gives the mean pre-activation.

    Args:
        model: the Keras model holding the layer; it is not modified.
        layer_name: the Conv2D layer whose channel is ascended.
        steps: ascent steps per image (0 returns the prepared images).
        alpha: RMS change per pixel per step, in grey levels.
        batch_size: images per gradient pass.

    Raises:
        LayerscopeError: ``steps`` < 0, ``alpha`` <= 0, or a layer :class:`PreActivation` refuses.
    """

    def __init__(
        self,
        model: keras.Model,
        layer_name: str,
        steps: int = 20,
        alpha: float = 1.0,
        batch_size: int = 32,
    ):
        """Check the step settings and trace one ascent step for this layer."""
        super().__init__(model, batch_size)
        if int(steps) < 0:
            raise LayerscopeError(f"gradient ascent steps must be >= 0, got {steps}")
        if not float(alpha) > 0:
            raise LayerscopeError(f"gradient ascent alpha must be > 0 (grey levels per step), got {alpha}")
        self.unit = PreActivation(model, layer_name, batch_size)
        self.steps = int(steps)
        self.alpha = float(alpha)
        spec = input_spec(model, self.unit.shape)
        self._step = traced(functools.partial(_ascent_step, self.unit, self.alpha), spec, INDICES)
        # Traced, not eager: an eager keras call runs every conv through TF's slow fallback path.
        self._means = traced(self.unit.channel_means, spec)

    def explain(self, inputs, targets=None) -> np.ndarray:
        """x* for each image, ascended on its channel.

        Args:
            inputs: start images (N, H, W[, C]) in 0..255 pixels.
            targets: channel indices, one for all images or one per image; None: each
                image's most responsive channel.

        Returns:
            float32 (N, H, W, C) pixels, not clipped (clip to 0..255 to show them).

        Raises:
            LayerscopeError: images that do not fit the model, or channels out of range.
        """
        x = self.unit.prepare(inputs)
        channels = self.channels(x, targets)
        out = []
        for s in self._batches(len(x)):
            xb, cb = tf.constant(x[s]), tf.constant(channels[s])
            for _ in range(self.steps):
                xb = self._step(xb, cb)
            out.append(xb.numpy())
        return np.concatenate(out) if out else x

    def objective(self, inputs, targets) -> np.ndarray:
        """The channel's spatial-mean pre-activation per image, to check that the ascent climbs.

        Args:
            inputs: images (N, H, W[, C]) in 0..255 pixels, e.g. before and after :meth:`explain`.
            targets: channel indices as in :meth:`explain`.

        Returns:
            float64 (N,) objective values.
        """
        x = self.unit.prepare(inputs)
        channels = self.channels(x, targets)
        values = [
            np.take_along_axis(self._means(tf.constant(x[s])).numpy(), channels[s, None], axis=1)[:, 0]
            for s in self._batches(len(x))
        ]
        return np.concatenate(values).astype(np.float64)

    def channels(self, x: np.ndarray, targets) -> np.ndarray:
        """Channel per image: ``targets`` checked, or the image's most responsive channel.

        Args:
            x: prepared images (N, H, W, C).
            targets: None, one channel index, or N channel indices.

        Returns:
            int32 (N,) channel indices.

        Raises:
            LayerscopeError: non-integer channels or channels outside the layer's filters.
        """
        count = self.unit.layer.filters
        if targets is None:
            return np.concatenate(
                [np.argmax(self._means(tf.constant(x[s])), axis=1) for s in self._batches(len(x))]
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
    """One step x + alpha * g / rms(g) per image.

    A partial per explainer, so TF does not count new explainers as retraces of one function.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        response = tf.gather(unit.channel_means(x), channels, axis=1, batch_dims=1)
        objective = tf.reduce_sum(response)  # images are independent: one pass for all
    grad = tape.gradient(objective, x)
    rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=(1, 2, 3), keepdims=True))
    return x + alpha * tf.math.divide_no_nan(grad, rms)  # a dead unit (g = 0) stays put


def representative_channels(
    model: keras.Model, layer_name: str, images, k: int = 5, batch_size: int = 64
) -> np.ndarray:
    """The k channels with the highest mean pre-activation on ``images``, strongest first."""
    return strongest_channels(layer_means(model, [layer_name], images, batch_size)[layer_name], k, layer_name)


def strongest_channels(means: np.ndarray, k: int, layer_name: str) -> np.ndarray:
    """The k channels of ``means`` (N, channels) with the highest mean over images, strongest first."""
    means = np.asarray(means).mean(axis=0)
    if not 1 <= k <= len(means):
        raise LayerscopeError(f"k must be in 1..{len(means)} for layer '{layer_name}', got {k}")
    return np.argsort(-means, kind="stable")[:k]


@dataclass(frozen=True)
class ChannelChoice:
    """The channels shown at one layer, how they were chosen, and how alike they respond.

    Attributes:
        channels: the chosen channels (K,), in the order they were chosen.
        rule: ``"distinct"``, ``"strongest"`` or ``"configured"``.
        max_correlation: the distinct rule's threshold (None for the other rules).
        fallback: how many channels were taken above the threshold because fewer than K
            qualified (they are the last ones in ``channels``).
        profiles: the chosen channels' activation profiles (N, K): spatial-mean
            pre-activation on each image the choice was made on.
        compared_by: what the distinct rule compared: ``"activation profile"`` or, at a
            linear first layer, ``"colour direction"``.
        directions: with ``"colour direction"``, the chosen channels' colour directions (K, colours).
    """

    channels: np.ndarray
    rule: str
    max_correlation: float | None
    fallback: int
    profiles: np.ndarray
    compared_by: str = "activation profile"
    directions: np.ndarray | None = None

    @property
    def correlations(self) -> np.ndarray:
        """Pearson correlation of the chosen channels' profiles, (K, K); NaN for a constant profile."""
        return profile_correlations(self.profiles)

    @property
    def compared(self) -> np.ndarray:
        """What the rule compared, between the chosen channels (K, K): profile correlations or colour cosines."""
        return self.correlations if self.directions is None else cosine_matrix(self.directions)

    def label(self) -> str:
        """How the channels were chosen, in a few words (for the figure)."""
        if self.rule == "distinct":
            extra = f", {self.fallback} above it (too few below)" if self.fallback else ""
            measure = "colour cos" if self.compared_by == "colour direction" else "profiles r"
            return f"strongest, then {measure} < {self.max_correlation:g}{extra}"
        return "configured channels" if self.rule == "configured" else "strongest (mean pre-activation)"


def choose_channels_from(
    means: np.ndarray,
    k: int,
    layer_name: str,
    max_correlation: float | None = 0.5,
    configured=None,
    directions: np.ndarray | None = None,
) -> ChannelChoice:
    """Channels that respond strongly and differently, from their responses ``means`` (N, channels).

    The distinct rule: the strongest channel (highest mean over images) first; then,
    strongest first, each channel whose activation profile over the images correlates
    below ``max_correlation`` (Pearson) with every channel already chosen. The five
    strongest channels of a deep layer are often one feature (at block5_conv3 their
    profiles correlated 0.98), and showing them repeats one picture. A constant profile
    shares no variation with any other and is never excluded. If fewer than ``k``
    channels qualify, the rest are filled with those whose highest correlation with the
    chosen ones is lowest (counted in ``fallback``).

    A linear first layer responds to an image through one weighted sum of its pixels, so
    on grey images every channel's profile is the image's brightness up to sign and
    scale: profiles cannot tell its channels apart. What differs is the colour its
    change pushes the image towards; given ``directions``, channels are compared by
    the cosine of those instead, under the same threshold.

    Args:
        means: spatial-mean pre-activation per image and channel, (N, channels).
        k: how many channels.
        layer_name: the layer, for error messages.
        max_correlation: the threshold; None: the k strongest channels.
        configured: channels to use as they are (config ``explain.feature_maps.channels``).
        directions: per channel, the mean colour of its change x* - x (channels, colours),
            to compare channels by (a linear first layer); None: by activation profile.

    Returns:
        The choice, with the chosen channels' profiles.

    Raises:
        LayerscopeError: ``k`` outside 1..channels, or configured channels outside the layer.
    """
    means = np.asarray(means, dtype=np.float64)
    count = means.shape[1]
    if configured:
        channels = np.asarray(configured, dtype=np.int64)
        if channels.min() < 0 or channels.max() >= count:
            raise LayerscopeError(
                f"explain.feature_maps.channels: {channels.tolist()} outside 0..{count - 1} of layer '{layer_name}'"
            )
        return ChannelChoice(channels, "configured", None, 0, means[:, channels])
    order = strongest_channels(means, count, layer_name)
    if not 1 <= k <= count:
        raise LayerscopeError(f"k must be in 1..{count} for layer '{layer_name}', got {k}")
    if max_correlation is None:
        return ChannelChoice(order[:k], "strongest", None, 0, means[:, order[:k]])
    compared_by = "activation profile" if directions is None else "colour direction"
    similarity = profile_correlations(means) if directions is None else cosine_matrix(directions)
    r = np.nan_to_num(similarity, nan=0.0)
    chosen = [int(order[0])]
    for channel in order[1:]:
        if len(chosen) == k:
            break
        if np.all(r[channel, chosen] < max_correlation):
            chosen.append(int(channel))
    qualified = len(chosen)
    while len(chosen) < k:  # fallback: the least alike of the rest, strongest on ties (to float32 rounding)
        rest = [int(c) for c in order if c not in chosen]
        chosen.append(min(rest, key=lambda c: round(float(r[c, chosen].max()), 5)))
    channels = np.asarray(chosen, dtype=np.int64)
    chosen_directions = None if directions is None else np.asarray(directions)[channels]
    return ChannelChoice(
        channels, "distinct", float(max_correlation), k - qualified, means[:, channels], compared_by, chosen_directions
    )


def profile_correlations(profiles: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns of ``profiles`` (N, K), (K, K); NaN where a column is constant."""
    x = np.asarray(profiles, dtype=np.float64)
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred.T @ centred) / np.outer(norms, norms)
    return np.clip(r, -1.0, 1.0)


def layer_means(model: keras.Model, layer_names, images, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Each layer's spatial-mean pre-activation per image and channel, ``{layer: (N, channels)}``.

    One traced forward pass serves every layer, so choosing channels at several layers
    costs what the deepest alone does, and batches run as a graph rather than eagerly.
    """
    units = [PreActivation(model, name) for name in dict.fromkeys(layer_names)]
    feeds = [unit.layer.input for unit in units if unit._to_layer is not None]
    side = keras.Model(model.inputs[0], feeds) if feeds else None
    means = traced(functools.partial(_layer_means, side, units), input_spec(model))
    x = prepare_inputs(model, images)
    batches = [means(tf.constant(x[s : s + batch_size])) for s in range(0, len(x), batch_size)]
    return {unit.layer.name: np.concatenate([b[i].numpy() for b in batches]) for i, unit in enumerate(units)}


def _layer_means(side, units: list[PreActivation], x: tf.Tensor) -> list[tf.Tensor]:
    out = side(x, training=False) if side is not None else []
    feeds = iter(out if isinstance(out, (list, tuple)) else [out])  # a one-output model returns a tensor
    inputs = [x if unit._to_layer is None else next(feeds) for unit in units]
    return [tf.reduce_mean(pre_activation(unit.layer, h), axis=(1, 2)) for unit, h in zip(units, inputs)]


def pre_activation(layer: keras.layers.Conv2D, h: tf.Tensor) -> tf.Tensor:
    """The conv layer's output before its activation on its input ``h``: float32 (N, h, w, channels)."""
    out = layer.convolution_op(tf.cast(h, tf.float32), tf.cast(layer.kernel, tf.float32))
    return out + tf.cast(layer.bias, tf.float32) if layer.use_bias else out


def pairwise_correlations(maps) -> np.ndarray:
    """Pearson correlation of every pair of maps (one per image, any shape), upper triangle.

    Pairs involving a constant map have no correlation and are left out.
    """
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if len(flat) < 2:
        raise LayerscopeError(f"need the maps of at least 2 images to correlate, got {len(flat)}")
    centred = flat - flat.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=1))
    rows, cols = np.triu_indices(len(flat), k=1)
    keep = (norms[rows] > 0) & (norms[cols] > 0)
    rows, cols = rows[keep], cols[keep]
    values = (centred[rows] * centred[cols]).sum(axis=1) / (norms[rows] * norms[cols])
    return np.clip(values, -1.0, 1.0)


def cosine_matrix(vectors) -> np.ndarray:
    """Cosine between every two rows of ``vectors`` (K, D), (K, K); NaN where a row is zero."""
    v = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    norms = np.sqrt((v**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip((v @ v.T) / np.outer(norms, norms), -1.0, 1.0)


def pairwise_cosines(vectors) -> np.ndarray:
    """Cosine of every pair of vectors (one per row), upper triangle; pairs with a zero vector are left out."""
    values = cosine_matrix(vectors)[np.triu_indices(len(vectors), k=1)]
    return values[np.isfinite(values)]


def change_similarity(changes, flat: bool) -> np.ndarray:
    """How alike K channels' changes x* - x are: every pair on every image, pooled.

    A linear first layer's change is the same on every image and spatially flat (its
    gradient does not depend on the image; only the borders differ), so a pixel
    correlation would mostly compare border effects: such a layer's channels are
    compared by colour direction instead, the cosine of their mean change per colour.

    Args:
        changes: x* - x per channel and image, (K, N, H, W, C).
        flat: compare by colour direction (a linear first layer) rather than by Pearson
            correlation of the maps.

    Returns:
        (pairs * N,) values in -1..1, images outer; empty for fewer than 2 channels or
        (``flat``) one colour.
    """
    changes = np.asarray(changes, dtype=np.float64)
    if len(changes) < 2 or (flat and changes.shape[-1] < 2):
        return np.empty(0)
    per_image = [
        pairwise_cosines(changes[:, i].mean(axis=(1, 2))) if flat else pairwise_correlations(changes[:, i])
        for i in range(changes.shape[1])
    ]
    return np.concatenate(per_image)


def stage_layers(model: keras.Model) -> dict[str, str]:
    """The first, a middle and the last conv layer: the three stages the study shows."""
    names = conv_layer_names(model)
    if not names:
        raise LayerscopeError(f"model '{model.name}' has no Conv2D layer to visualise")
    return {"first": names[0], "middle": names[len(names) // 2], "last": names[-1]}
