"""Grad-CAM against maps worked out by hand on a model whose logits are linear in A."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.models import small_vgg

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import normalise_maps
from layerscope.explain.gradcam import GradCAM, default_gradcam_layers

RNG = np.random.default_rng(7)
KERNEL = np.array([[[[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]]], np.float32)  # 2 channels -> 3 features
# The Grad-CAM weights by hand: the spatial means of d logit_c / dA_k, one column per class.
WEIGHTS = np.array([[1.0, -0.7], [-0.5, 0.8], [0.3, -0.2]], np.float32)
# Dense weights vary by position around those means (zero-mean noise per channel and class).
NOISE = RNG.normal(size=(4, 4, 3, 2))
DENSE = (WEIGHTS + NOISE - NOISE.mean(axis=(0, 1))).reshape(48, 2).astype(np.float32)


def linear_head_model() -> keras.Model:
    """logits = DENSE^T flatten(A), A = relu(1x1 conv): d logit_c / dA is DENSE[:, c]."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Rescaling(1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(3, 1, activation="relu", use_bias=False, name="feat")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("feat").set_weights([KERNEL])
    model.get_layer("logits").set_weights([DENSE, np.array([0.3, -0.3], np.float32)])
    return model


def expected_gradcam(x: np.ndarray, target: int) -> np.ndarray:
    features = np.maximum(np.einsum("nhwi,ik->nhwk", x, KERNEL[0, 0]), 0)
    return np.maximum(np.einsum("nhwk,k->nhw", features, WEIGHTS[:, target]), 0)


def test_gradcam_is_relu_of_gradient_mean_weighted_features():
    model = linear_head_model()
    x = np.random.default_rng(0).uniform(-1, 1, size=(5, 4, 4, 2)).astype(np.float32)
    explainer = GradCAM(model, "feat", batch_size=2)
    for target in (0, 1):
        maps = explainer.explain(x, targets=target)
        assert maps.shape == (5, 4, 4)
        np.testing.assert_allclose(maps, expected_gradcam(x, target), rtol=1e-5, atol=1e-6)
        assert maps.max() > 0


def test_default_target_is_the_predicted_class_per_image():
    model = linear_head_model()
    rng = np.random.default_rng(1)
    # Input channel 0 drives feature 0 (class 0 weight 1.0), channel 1 feature 1 (class 1, 0.8).
    bright = np.eye(2)[np.arange(8) % 2][:, None, None, :] * 2.0
    x = (bright + rng.uniform(-0.2, 0.2, size=(8, 4, 4, 2))).astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(predicted, np.arange(8) % 2)
    maps = GradCAM(model, "feat").explain(x)
    expected = np.stack([expected_gradcam(x[i : i + 1], c)[0] for i, c in enumerate(predicted)])
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    one_hot = np.eye(2)[predicted]
    np.testing.assert_allclose(GradCAM(model, "feat").explain(x, one_hot), maps, atol=1e-6)


def test_upsampling_to_input_size_and_display_normalisation():
    x = np.random.default_rng(2).uniform(0, 255, size=(3, 32, 32, 3)).astype(np.float32)
    model = small_vgg(blocks=5, convs=3, head="gap")
    assert GradCAM(model, "block3_conv3").explain(x, targets=0).shape == (3, 8, 8)
    maps = GradCAM(model, "block3_conv3", upsample=True).explain(x, targets=0)
    assert maps.shape == (3, 32, 32)
    maps = np.array([[[1.0, 3.0], [5.0, 2.0]], [[-4.0, -2.0], [0.0, -4.0]]])
    expected = [[[0.0, 0.5], [1.0, 0.25]], [[0.0, 0.5], [1.0, 0.0]]]
    np.testing.assert_allclose(normalise_maps(maps), expected)
    assert np.all(normalise_maps(np.full((1, 4, 4), 3.0)) == 0)


def same_model_without_a_logits_layer(kind: str) -> keras.Model:
    """linear_head_model's weights in the layouts users bring: Dense(softmax) last, or an
    unnamed Dense then a Softmax layer, or a model that outputs logits."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Rescaling(1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(3, 1, activation="relu", use_bias=False, name="feat")(x)
    x = keras.layers.Flatten()(x)
    if kind == "dense-softmax":
        outputs = keras.layers.Dense(2, activation="softmax", name="probs")(x)
    elif kind == "softmax-layer":
        outputs = keras.layers.Softmax()(keras.layers.Dense(2, name="scores")(x))
    else:
        outputs = keras.layers.Dense(2, name="scores")(x)
    model = keras.Model(inputs, outputs)
    model.set_weights(linear_head_model().get_weights())
    return model


@pytest.mark.parametrize("kind", ["dense-softmax", "softmax-layer", "logits-out"])
def test_any_keras_classifier_is_explained_through_its_pre_softmax_scores(kind):
    x = RNG.uniform(0, 1, (3, 4, 4, 2)).astype(np.float32)
    expected = GradCAM(linear_head_model(), "feat").explain(x, targets=[0, 1, 1])
    model = same_model_without_a_logits_layer(kind)
    np.testing.assert_allclose(GradCAM(model, "feat").explain(x, targets=[0, 1, 1]), expected, rtol=1e-5, atol=1e-6)
    assert model.layers[-1].get_config().get("activation", "softmax") in ("softmax", "linear")  # model unchanged


def test_model_without_class_scores_is_refused():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name="feat")(inputs)
    outputs = keras.layers.Dense(2, activation="sigmoid", name="probs")(keras.layers.Flatten()(x))
    with pytest.raises(LayerscopeError, match="neither softmax nor linear.*logits"):
        GradCAM(keras.Model(inputs, outputs), "feat")


def test_unknown_layer_names_the_conv_layers():
    with pytest.raises(LayerscopeError, match=r"no layer named 'block9_conv3'.*feat"):
        GradCAM(linear_head_model(), "block9_conv3")


def test_default_layers_are_vgg_blocks_3_to_5_else_last_conv():
    assert default_gradcam_layers(small_vgg(blocks=5, convs=3, head="gap")) == [
        "block3_conv3",
        "block4_conv3",
        "block5_conv3",
    ]
    assert default_gradcam_layers(linear_head_model()) == ["feat"]


def test_mixed_bfloat16_model_gives_float32_maps():
    x = np.random.default_rng(3).uniform(-1, 1, size=(4, 4, 4, 2)).astype(np.float32)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = linear_head_model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    maps = GradCAM(model, "feat").explain(x, targets=0)
    assert maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected_gradcam(x, 0), rtol=0.05, atol=0.05)


def test_several_layers_from_one_pass_equal_each_layer_alone():
    """explain_layers (one gradient pass, what the explain rule uses) gives each layer's explain maps."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    x = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    images = RNG.uniform(0, 1, size=(5, 8, 8, 3)).astype(np.float32)
    together = GradCAM(model, ["c1", "c2"], batch_size=2, upsample=True).explain_layers(images, [0, 1, 2, 0, 1])
    for layer in ("c1", "c2"):
        alone = GradCAM(model, layer, batch_size=2, upsample=True).explain(images, [0, 1, 2, 0, 1])
        np.testing.assert_allclose(together[layer], alone, rtol=0, atol=1e-5 * max(np.ptp(alone), 1e-12))


def test_maps_of_a_mirror_symmetric_model_mirror_with_the_image():
    # Kernels symmetric left to right and a global-average head: the model cannot tell left
    # from right, so the map of the mirrored image must be the mirrored map, exactly (up to
    # rounding). A Grad-CAM that shifts or pads its maps on one side would fail; the
    # map-shape study's mirroring figure then speaks of the model, not of the explainer.
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    for name in ("conv1", "conv2"):
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([(kernel + kernel[:, ::-1]) / 2, bias])
    images = np.random.default_rng(3).random((5, 12, 12, 1)).astype(np.float32)
    explainer = GradCAM(model, ["conv1", "conv2"], upsample=True)
    targets = np.array([0, 1, 0, 1, 1])
    maps, of_mirrored = explainer.explain_layers(images, targets), explainer.explain_layers(images[:, :, ::-1], targets)
    for layer in ("conv1", "conv2"):
        assert maps[layer].std() > 0
        np.testing.assert_allclose(of_mirrored[layer], maps[layer][:, :, ::-1], rtol=1e-4, atol=1e-6)
