"""LIME on a classifier that only looks at one block of a synthetic block image."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.data.images import load_image
from layerscope.data.sources import elpv_source
from layerscope.explain.lime_method import LIME, MIN_SEGMENTS, superpixels

SIGNAL = (slice(8, 16), slice(16, 24))  # the block the classifier reads


def block_image(channels: int, seed: int = 0) -> np.ndarray:
    """4 x 4 blocks of 8 px in distinct colours, the signal block bright; uint8 (32, 32, c)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((32, 32, channels))
    for q, colour in enumerate(rng.integers(0, 160, size=(16, channels))):
        r, c = divmod(q, 4)
        image[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = colour
    image[SIGNAL] = 220
    return np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)


def brightness_model(channels: int) -> keras.Model:
    """Class 0 iff the signal block is bright: one conv whose kernel covers only that block."""
    inputs = keras.Input((32, 32, channels))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(1, 32, name="region")(x)
    x = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    kernel = np.zeros((32, 32, channels, 1), np.float32)
    kernel[SIGNAL] = 1 / (64 * channels)  # mean brightness of the block
    model.get_layer("region").set_weights([kernel, np.zeros(1, np.float32)])
    model.get_layer("logits").set_weights([np.array([[8.0, -8.0]], np.float32), np.array([-2.0, 2.0], np.float32)])
    return model


def explainer(model: keras.Model, seed: int = 0) -> LIME:
    return LIME(model, batch_size=64, num_samples=150, seed=seed, n_segments=16, progress=False)


def assert_top_superpixel_is_the_signal_block(weights: np.ndarray) -> None:
    top = weights == weights.max()
    inside = np.zeros_like(top)
    inside[SIGNAL] = True
    assert top[SIGNAL].mean() > 0.9, "the signal block's superpixel must carry the top weight"
    assert not np.any(top & ~inside)


def test_signal_block_ranks_first_with_positive_and_negative_evidence():
    model = brightness_model(3)
    images = np.stack([block_image(3, seed=0), block_image(3, seed=1)])
    evidence = explainer(model).evidence(images)
    assert evidence["labels"].shape == (2, 2)
    np.testing.assert_array_equal(evidence["labels"], [[0, 1], [0, 1]])  # predicted, runner-up
    assert evidence["weights"].shape == (2, 2, 32, 32)
    assert evidence["segments"].shape == (2, 32, 32)
    for i in range(2):
        assert_top_superpixel_is_the_signal_block(evidence["weights"][i, 0])
        # For the runner-up class the same block is the strongest evidence against.
        assert_top_superpixel_is_the_signal_block(-evidence["weights"][i, 1])
    assert np.all(evidence["positive"] >= 0) and np.all(evidence["negative"] <= 0)
    np.testing.assert_array_equal(evidence["positive"] + evidence["negative"], evidence["weights"])
    maps = explainer(model).explain(images)
    np.testing.assert_allclose(maps, evidence["weights"][:, 0], atol=1e-6)


def test_same_seed_same_explanation_other_seed_differs():
    model = brightness_model(3)
    images = block_image(3)[None]
    first = explainer(model, seed=5).evidence(images)
    again = explainer(model, seed=5).evidence(images)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    other = explainer(model, seed=6).evidence(images)
    assert not np.array_equal(first["weights"], other["weights"])


def test_grey_images_on_a_one_channel_model():
    model = brightness_model(1)
    images = np.stack([block_image(1, seed=0)[..., 0], block_image(1, seed=2)[..., 0]])  # (N, H, W)
    maps = explainer(model).explain(images, targets=0)
    assert maps.shape == (2, 32, 32)
    for weights in maps:
        assert_top_superpixel_is_the_signal_block(weights)


def test_bad_settings_are_refused():
    with pytest.raises(LayerscopeError, match="top_labels <= 2"):
        LIME(brightness_model(3), top_labels=3)
    with pytest.raises(LayerscopeError, match="n_segments >= 10"):
        LIME(brightness_model(3), n_segments=4)


@pytest.mark.parametrize("size", [40, 64])  # the smoke and the default image size
def test_at_least_ten_superpixels_on_elpv_cells(size):
    for path in elpv_source().files[::400][:6]:  # functional and defective, mono and poly
        segments = superpixels(load_image(path, (size, size)))
        assert segments.shape == (size, size)
        assert len(np.unique(segments)) >= MIN_SEGMENTS
        np.testing.assert_array_equal(np.unique(segments), np.arange(segments.max() + 1))
    flat = np.full((size, size, 3), 128, np.uint8)  # no edges at all: SLIC's grid
    assert len(np.unique(superpixels(flat))) >= MIN_SEGMENTS


def test_too_small_an_image_is_refused_with_its_size():
    tiny = np.random.default_rng(0).integers(0, 255, (3, 3, 3)).astype(np.uint8)  # 9 pixels
    with pytest.raises(LayerscopeError, match=r"3x3 px image"):
        superpixels(tiny)


def test_kept_outputs_give_the_same_maps_and_skip_the_second_forward_passes():
    """keep_outputs (for a model whose weights stay) changes no map; another class costs no pass."""
    model = brightness_model(3)
    image = block_image(3)[None]
    kept = LIME(model, batch_size=64, num_samples=150, seed=0, n_segments=16, progress=False, keep_outputs=True)
    for target in (0, 1):
        np.testing.assert_array_equal(kept.explain(image, target), explainer(model).explain(image, target))
    passes = []
    kept._forward = lambda x: passes.append(x) or pytest.fail("a kept batch went through the model again")
    kept.explain(image, 1)
    assert not passes
