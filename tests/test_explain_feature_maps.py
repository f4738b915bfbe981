"""Gradient ascent on units whose gradient is known by hand (linear in the input)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.data.images import load_image
from layerscope.data.sources import elpv_source
from layerscope.explain.feature_maps import GradientAscent, representative_channels, stage_layers
from layerscope.train.models import vgg16

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


def test_linear_unit_moves_by_alpha_rms_steps_along_its_fixed_gradient():
    model = doubled_unit_model()
    raw = np.random.default_rng(0).uniform(0, 255, size=(3, 6, 6, 2)).astype(np.float32)
    channel, alpha = 1, 0.5
    # Pixel gradient: through /255 and the doubling layer; constant, as the unit is linear.
    grad = 2 * unit_gradient(KERNEL[..., channel]) / 255
    direction = grad / np.sqrt(np.mean(grad**2))  # the step is scale-free: g / rms(g)
    r0 = unit_response(2 * raw / 255, KERNEL[..., channel], BIAS[channel])
    for steps in (1, 2, 3):
        ascent = GradientAscent(model, "unit", steps=steps, alpha=alpha, batch_size=2)
        x = ascent.explain(raw, channel)
        np.testing.assert_allclose(x, raw + steps * alpha * direction, rtol=1e-5, atol=1e-4)
        # Each step moves every image by alpha grey levels in RMS.
        rms = np.sqrt(np.mean((x - raw) ** 2, axis=(1, 2, 3)))
        np.testing.assert_allclose(rms, steps * alpha, rtol=1e-5)
        rise = unit_response(2 * x / 255, KERNEL[..., channel], BIAS[channel]) - r0
        np.testing.assert_allclose(rise, steps * alpha * np.sum(grad * direction), rtol=1e-4)
        np.testing.assert_allclose(ascent.objective(x, channel), r0 + rise, rtol=1e-4, atol=1e-5)


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
    grad = unit_gradient(kernel[..., 0])
    np.testing.assert_allclose(x, raw + grad / np.sqrt(np.mean(grad**2)), rtol=1e-5, atol=1e-4)


def test_a_unit_without_gradient_leaves_the_image_alone():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(1, 3, name="unit")(inputs)
    model = keras.Model(inputs, head(x))
    model.get_layer("unit").set_weights([np.zeros((3, 3, 1, 1), np.float32), np.ones(1, np.float32)])
    raw = np.random.default_rng(4).uniform(0, 255, size=(2, 6, 6, 1)).astype(np.float32)
    np.testing.assert_array_equal(GradientAscent(model, "unit", steps=3).explain(raw, 0), raw)


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
    with pytest.raises(LayerscopeError, match="alpha must be > 0"):
        GradientAscent(model, "c1", alpha=0)


def elpv_images(size: int, count: int) -> np.ndarray:
    """The first ``count`` functional elpv cells (label 0.00), (count, size, size, 3) pixels."""
    source = elpv_source()
    paths = source.table.loc[source.table["label"] == "0.00", "path"].iloc[:count]
    return np.stack([load_image(source.root / p, (size, size)) for p in paths]).astype(np.float32)


def test_ascent_ascends_at_the_study_settings_on_a_real_vgg16():
    """alpha 1.0, 20 steps (study B) on the HED-trained VGG-16: the objective rises at least
    1.3x and the pixels move at least 1 grey level on average, at the first, a middle and
    the last conv layer; the first layer's x* differ between images."""
    images = elpv_images(40, 2)
    model = vgg16((40, 40, 3), 2, weights="hed-bsds500")
    optimised = {}
    for layer in ("block1_conv1", "block3_conv3", "block5_conv3"):
        ascent = GradientAscent(model, layer, steps=20, alpha=1.0)
        channels = ascent.channels(images, None)  # each image's most responsive channel
        before = ascent.objective(images, channels)
        x = ascent.explain(images, channels)
        after = ascent.objective(x, channels)
        assert np.all(before > 0)
        assert np.all(after >= 1.3 * before), (layer, before, after)
        change = np.abs(x - images).mean(axis=(1, 2, 3))
        assert np.all(change >= 1.0), (layer, change)
        assert np.all(np.abs(np.clip(x, 0, 255) - images).mean(axis=(1, 2, 3)) >= 1.0)
        optimised[layer] = ascent.explain(images, channels[0])  # one channel for both images
    first = optimised["block1_conv1"]
    # The first layer is linear in the image: the same change for both images, yet x* differ.
    np.testing.assert_allclose(first[0] - images[0], first[1] - images[1], atol=1e-3)
    assert np.abs(first[0] - first[1]).mean() > 5


def test_batched_ascent_of_all_channels_equals_one_channel_at_a_time():
    """ascend runs every (channel, image) pair in one batch: the maps and objectives of one
    channel at a time, within float rounding (atol 1e-5 of each map's range)."""
    from layerscope.explain.feature_map_study import ascend

    keras.utils.set_random_seed(4)
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    model = keras.Model(inputs, head(x))
    images = np.random.default_rng(5).uniform(0, 255, size=(3, 10, 10, 3)).astype(np.float32)
    channels = [2, 0, 3]
    result = ascend(model, "c2", images, channels, steps=5, alpha=1.0)
    for k, channel in enumerate(channels):
        ascent = GradientAscent(model, "c2", steps=5, alpha=1.0)
        alone = ascent.explain(images, channel)
        span = np.ptp(alone, axis=(1, 2, 3), keepdims=True)
        assert np.all(np.abs(result["optimised"][k] - alone) <= 1e-5 * span), channel
        np.testing.assert_allclose(result["objective_start"][k], ascent.objective(images, channel), rtol=1e-5)
        np.testing.assert_allclose(result["objective_end"][k], ascent.objective(alone, channel), rtol=1e-5)


def test_layer_means_of_several_layers_equal_each_layer_alone():
    """One traced pass for several layers gives each layer's own spatial-mean pre-activations."""
    from layerscope.explain.feature_maps import PreActivation, layer_means

    model = doubled_unit_model()
    images = np.random.default_rng(6).uniform(0, 255, size=(5, 6, 6, 2)).astype(np.float32)
    means = layer_means(model, ["unit", "double", "unit"], images, batch_size=2)
    assert list(means) == ["unit", "double"]
    for layer in ("unit", "double"):
        expected = PreActivation(model, layer).channel_means(images).numpy()
        np.testing.assert_allclose(means[layer], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        means["unit"],
        np.stack([unit_response(2 * images / 255, KERNEL[..., c], BIAS[c]) for c in (0, 1)], axis=1),
        rtol=1e-4,
        atol=1e-5,
    )


def copies_model() -> keras.Model:
    """preprocess (/255) -> 'unit', a 1x1 conv: channels 0 and 1 copy colour 0 (bias 1), channel 2 is colour 1."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(3, 1, activation="relu", name="unit")(x)
    model = keras.Model(inputs, head(x))
    kernel = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)[None, None]
    model.get_layer("unit").set_weights([kernel, np.array([1.0, 1.0, 0.0], np.float32)])
    return model


def copies_images() -> np.ndarray:
    """Four flat images whose colour means (0, 0), (255, 0), (0, 255), (255, 255) are uncorrelated."""
    colours = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], np.float32)
    return np.broadcast_to(colours[:, None, None, :], (4, 4, 4, 2)).copy()


def copies_means() -> np.ndarray:
    """The unit's spatial-mean pre-activations on :func:`copies_images`, through the model.

    By hand: channels 0 and 1 read 1, 2, 1, 2 (mean 1.5), channel 2 reads 0, 0, 1, 1
    (mean 0.5); the copies correlate 1, each copy and channel 2 exactly 0.
    """
    from layerscope.explain.feature_maps import layer_means

    return layer_means(copies_model(), ["unit"], copies_images())["unit"]


def test_distinct_channels_pick_one_copy_and_the_different_channel():
    from layerscope.explain.feature_maps import choose_channels_from, strongest_channels

    means = copies_means()
    np.testing.assert_allclose(means, [[1, 1, 0], [2, 2, 0], [1, 1, 1], [2, 2, 1]], atol=1e-6)
    # The old rule, strongest first, shows the copies twice.
    np.testing.assert_array_equal(strongest_channels(means, 2, "unit"), [0, 1])
    choice = choose_channels_from(means, 2, "unit", max_correlation=0.5)
    np.testing.assert_array_equal(choice.channels, [0, 2])
    assert (choice.rule, choice.max_correlation, choice.fallback) == ("distinct", 0.5, 0)
    np.testing.assert_allclose(choice.correlations, np.eye(2), atol=1e-6)
    assert choice.label() == "strongest, then profiles r < 0.5"
    # A third channel can only be the other copy: taken, and counted, as a fallback.
    three = choose_channels_from(means, 3, "unit", max_correlation=0.5)
    np.testing.assert_array_equal(three.channels, [0, 2, 1])
    assert three.fallback == 1 and "1 above it" in three.label()
    np.testing.assert_allclose(three.correlations[0, 2], 1.0, atol=1e-6)
    # null threshold: the old rule; configured channels: as they are.
    np.testing.assert_array_equal(choose_channels_from(means, 2, "unit", None).channels, [0, 1])
    configured = choose_channels_from(means, 2, "unit", 0.5, configured=[1])
    assert configured.rule == "configured" and configured.channels.tolist() == [1]
    with pytest.raises(LayerscopeError, match=r"explain.feature_maps.channels: \[3\] outside 0..2 of layer 'unit'"):
        choose_channels_from(means, 2, "unit", 0.5, configured=[3])


def test_the_shown_channels_respond_differently_and_strongest_first_does_not():
    """No two shown channels' profiles may correlate 0.5 or more: the rule keeps that; strongest first breaks it."""
    from layerscope.explain.feature_maps import choose_channels_from

    distinct = choose_channels_from(copies_means(), 2, "unit", 0.5)
    assert np.all(distinct.correlations[np.triu_indices(2, k=1)] < 0.5), distinct.channels
    strongest = choose_channels_from(copies_means(), 2, "unit", None)
    assert strongest.correlations[np.triu_indices(2, k=1)] == pytest.approx([1.0])  # a copy shown twice


def test_a_constant_profile_is_never_excluded():
    from layerscope.explain.feature_maps import choose_channels_from, profile_correlations

    # Strengths 1, 5, 4: channel 1 first; channel 2 is its copy (r = 1), channel 0 is constant (no r).
    means = np.array([[1.0, 4.0, 2.0], [1.0, 5.0, 4.0], [1.0, 6.0, 6.0]])
    assert np.isnan(profile_correlations(means)[0, 1]) and profile_correlations(means)[1, 2] == pytest.approx(1.0)
    np.testing.assert_array_equal(choose_channels_from(means, 2, "c", 0.5).channels, [1, 0])


def test_change_similarity_by_pixels_and_by_colour_direction():
    from layerscope.explain.feature_maps import change_similarity

    a = np.arange(8.0).reshape(2, 2, 2)
    # Two channels, one image: a map and its negative; a flat red and a flat green change.
    np.testing.assert_allclose(change_similarity(np.stack([a, -a])[:, None], flat=False), [-1.0])
    red, green = np.zeros((2, 2, 2)), np.zeros((2, 2, 2))
    red[..., 0], green[..., 1] = 3.0, 5.0
    changes = np.stack([red, green, 2 * red])[:, None]  # (K=3, N=1, H, W, C)
    np.testing.assert_allclose(change_similarity(changes, flat=True), [0.0, 1.0, 0.0])
    assert change_similarity(changes[..., :1], flat=True).size == 0  # one colour: no direction to compare
    assert change_similarity(changes[:1], flat=False).size == 0  # one channel: no pair


def test_a_linear_first_layer_is_told_apart_by_colour_direction():
    """On grey images (colour 0 = colour 1) every channel of the copies model reads the brightness:
    all profiles correlate 1, and by profile the second channel is a fallback copy. Their changes
    differ in colour: channels 0 and 1 push colour 0, channel 2 colour 1 (cosine 0), so by colour
    direction the choice is [0, 2]. The random reference is all three channels: cosines 1, 0, 0."""
    from layerscope.explain.feature_map_study import COLOUR_MEASURE, distinctness_table, feature_map_study
    from layerscope.explain.feature_maps import choose_channels_from, layer_means

    grey = np.broadcast_to(np.array([0, 85, 170, 255], np.float32)[:, None, None, None], (4, 4, 4, 2)).copy()
    means = layer_means(copies_model(), ["unit"], grey)["unit"]
    by_profile = choose_channels_from(means, 2, "unit", 0.5)
    assert by_profile.channels.tolist() == [0, 1] and by_profile.fallback == 1
    cfg = {"layers": {"first": "unit"}, "channels": None, "count": 2, "max_correlation": 0.5}
    cfg.update(steps=2, alpha=1.0, images=2)
    stages, _ = feature_map_study(copies_model(), grey, np.array([0, 1, 0, 1]), cfg, seed=1)
    choice = stages["first"]["choice"]
    assert choice.label() == "strongest, then colour cos < 0.5"
    np.testing.assert_allclose(choice.compared, np.eye(2), atol=1e-6)  # pure colour 0 vs pure colour 1
    row = distinctness_table(stages).iloc[0]
    assert (row["stage"], row["layer"], row["rule"], row["compared_by"]) == (
        "first",
        "unit",
        "distinct",
        "colour direction",
    )
    assert (row["channels"], row["fallback"], row["profile_images"]) == ("0 2", 0, 4)
    assert row["activation_corr_pairs"] == "0-2 1.00"  # the profiles cannot tell them apart
    assert row["change_measure"] == COLOUR_MEASURE
    assert row["change_corr_mean"] == pytest.approx(0.0, abs=1e-6) and row["change_corr_max"] == pytest.approx(
        0.0, abs=1e-6
    )
    assert row["random_channels"] == "0 1 2" and row["random_activation_corr_mean"] == pytest.approx(1.0)
    assert row["random_change_corr_mean"] == pytest.approx(1 / 3) and row["random_change_corr_max"] == pytest.approx(
        1.0
    )
