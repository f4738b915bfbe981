"""Gradient ascent on units whose gradient is known by hand (linear in the input)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from layerscope.errors import LayerscopeError
from layerscope.explain import GradientAscent, representative_channels, stage_layers

KERNEL = np.random.default_rng(3).normal(size=(3, 3, 2, 2)).astype(np.float32)
BIAS = np.array([0.5, -1.0], np.float32)


def head(x) -> keras.KerasTensor:
    x = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    return keras.layers.Activation("softmax", name="probabilities")(x)


def doubled_unit_model() -> keras.Model:
    """preprocess (/255) -> 1x1 conv doubling its input (linear) -> 'unit' 3x3 conv, relu."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(2, 1, use_bias=False, name="double")(x)
    x = keras.layers.Conv2D(2, 3, activation="relu", name="unit")(x)
    model = keras.Model(inputs, head(x))
    model.get_layer("double").set_weights([2 * np.eye(2, dtype=np.float32)[None, None]])
    model.get_layer("unit").set_weights([KERNEL, BIAS])
    return model


def unit_gradient(kernel: np.ndarray, size: int = 6) -> np.ndarray:
    """d mean_ij conv(x)_ij / dx of a valid 3x3 conv channel, summed by hand."""
    out = size - 2
    grad = np.zeros((size, size, kernel.shape[2]))
    for i in range(out):
        for j in range(out):
            grad[i : i + 3, j : j + 3] += kernel / out**2
    return grad


def unit_response(x: np.ndarray, kernel: np.ndarray, bias: float) -> np.ndarray:
    """Spatial mean of a valid 3x3 conv channel before its activation, per image."""
    out = x.shape[1] - 2
    windows = [x[:, i : i + 3, j : j + 3] for i in range(out) for j in range(out)]
    return np.mean([np.einsum("nhwc,hwc->n", w, kernel) for w in windows], axis=0) + bias


def test_linear_unit_rises_by_alpha_times_squared_gradient_norm_each_step():
    model = doubled_unit_model()
    raw = np.random.default_rng(0).uniform(0, 255, size=(3, 6, 6, 2)).astype(np.float32)
    start = raw / 255  # ascent runs in the preprocessed space
    channel, alpha = 1, 0.5
    grad = 2 * unit_gradient(KERNEL[..., channel])  # chain rule through the doubling layer
    gain = alpha * np.sum(grad**2)
    r0 = unit_response(2 * start, KERNEL[..., channel], BIAS[channel])
    for steps in (1, 2, 3):
        x = GradientAscent(model, "unit", steps=steps, alpha=alpha, batch_size=2).explain(
            raw, channel
        )
        np.testing.assert_allclose(x, start + steps * alpha * grad, rtol=1e-5, atol=1e-6)
        rise = unit_response(2 * x, KERNEL[..., channel], BIAS[channel]) - r0
        np.testing.assert_allclose(rise, steps * gain, rtol=1e-4)


def test_ascent_moves_a_relu_unit_that_is_negative_on_the_start_image():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(1, 3, activation="relu", name="unit")(x)
    model = keras.Model(inputs, head(x))
    kernel = -np.ones((3, 3, 1, 1), np.float32)
    model.get_layer("unit").set_weights([kernel, np.array([-1.0], np.float32)])
    raw = np.random.default_rng(1).uniform(0, 255, size=(2, 6, 6, 1)).astype(np.float32)
    post = keras.Model(model.inputs, model.get_layer("unit").output).predict(raw, verbose=0)
    assert np.all(post == 0), "the unit must be dead after its ReLU on the start image"
    x = GradientAscent(model, "unit", steps=1).explain(raw, 0)
    np.testing.assert_allclose(x, raw / 255 + unit_gradient(kernel[..., 0]), rtol=1e-5, atol=1e-6)


def test_representative_channels_rank_by_pre_activation():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="unit")(x)
    model = keras.Model(inputs, head(x))
    bias = np.array([-1.0, -2.0, 3.0, -0.5], np.float32)  # after ReLU: 0, 0, 3, 0
    model.get_layer("unit").set_weights([np.zeros((3, 3, 1, 4), np.float32), bias])
    images = np.random.default_rng(2).uniform(0, 255, size=(3, 6, 6, 1))
    np.testing.assert_array_equal(representative_channels(model, "unit", images, k=4), [2, 3, 0, 1])
    np.testing.assert_array_equal(representative_channels(model, "unit", images, k=2), [2, 3])
    with pytest.raises(LayerscopeError, match="k must be in 1..4"):
        representative_channels(model, "unit", images, k=5)


def test_stage_layers_and_bad_arguments():
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    for i in range(5):
        x = keras.layers.Conv2D(2, 3, padding="same", name=f"c{i}")(x)
    model = keras.Model(inputs, head(x))
    assert stage_layers(model) == {"first": "c0", "middle": "c2", "last": "c4"}
    with pytest.raises(LayerscopeError, match="not Conv2D"):
        GradientAscent(model, "preprocess")
    with pytest.raises(LayerscopeError, match=r"integers in 0..1"):
        GradientAscent(model, "c1").explain(np.zeros((1, 12, 12, 1)), 2)
