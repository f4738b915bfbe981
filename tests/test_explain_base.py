"""Shared behaviour: no method changes the model; inputs, targets and layers are checked."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import last_conv_layer, prepare_inputs, resolve_targets
from layerscope.explain.cam import CAM
from layerscope.explain.feature_maps import GradientAscent, representative_channels
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.lime_method import LIME


def vgg_gap_model() -> keras.Model:
    """A toy VGG-style GAP model with the project's layer names."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    for b in (1, 2, 3):
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=f"block{b}_conv3")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def snapshot(model: keras.Model) -> tuple:
    configs = json.dumps([layer.get_config() for layer in model.layers], sort_keys=True, default=str)
    flags = [(layer.name, layer.trainable) for layer in model.layers]
    return configs, flags, [w.copy() for w in model.get_weights()]


def test_no_method_modifies_the_model():
    model = vgg_gap_model()
    images = np.random.default_rng(0).uniform(0, 255, size=(3, 16, 16, 3)).astype(np.float32)
    before = snapshot(model)
    GradCAM(model, "block2_conv3", upsample=True).explain(images)
    CAM(model).explain(images)
    LIME(model, num_samples=20, progress=False).evidence(images[:1])
    GradientAscent(model, "block3_conv3", steps=3).explain(images, 1)
    representative_channels(model, "block1_conv3", images, k=2)
    after = snapshot(model)
    assert after[0] == before[0] and after[1] == before[1]
    for old, new in zip(before[2], after[2]):
        np.testing.assert_array_equal(old, new)
    assert model.get_layer("block3_conv3").activation.__name__ == "relu"


def test_grey_images_are_repeated_to_the_model_channels():
    model = vgg_gap_model()
    grey = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16) % 255
    x = prepare_inputs(model, grey)
    assert x.shape == (2, 16, 16, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 2], grey)
    with pytest.raises(LayerscopeError, match=r"do not fit model"):
        prepare_inputs(model, np.zeros((1, 8, 8, 3)))


def test_targets_from_int_indices_or_one_hot():
    np.testing.assert_array_equal(resolve_targets(2, 3), [2, 2, 2])
    np.testing.assert_array_equal(resolve_targets([0, 2, 1], 3), [0, 2, 1])
    np.testing.assert_array_equal(resolve_targets(np.eye(3)[[1, 0]], 2), [1, 0])
    assert resolve_targets(None, 4) is None
    with pytest.raises(LayerscopeError, match="out of range for 3 classes"):
        resolve_targets([0, 3], 2, num_classes=3)
    with pytest.raises(LayerscopeError, match="one class index"):
        resolve_targets([0.5, 1.0], 2)


def test_layer_errors_name_the_culprit():
    inputs = keras.Input((16, 16, 3))
    inner = keras.Sequential([keras.layers.Conv2D(2, 3, name="conv_inside")], name="base")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(inner(inputs))
    nested = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    with pytest.raises(LayerscopeError, match=r"nests sub-models \['base'\], build it flat"):
        GradCAM(nested, "conv_inside")
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    with pytest.raises(LayerscopeError, match="has no Conv2D layer"):
        last_conv_layer(dense_only)
    with pytest.raises(LayerscopeError, match="spatial"):
        GradCAM(vgg_gap_model(), "gap")
