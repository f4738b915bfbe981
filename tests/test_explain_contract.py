"""The contract every explanation method keeps, checked across all of them (as Xplique does):
shape and dtype, the same maps under the same seed, the same maps whatever the batch size,
a known answer on one tiny hand-built model, and a one-line error for a wrong layer or head.

A new method joins by one entry in ``METHODS``; a subclass of ``Explainer`` left out fails
``test_every_explainer_is_in_the_contract``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import pytest
from helpers.models import small_vgg

import layerscope.explain
from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import Explainer
from layerscope.explain.cam import CAM
from layerscope.explain.feature_maps import GradientAscent
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.lime_method import LIME

SIZE, N = 32, 3
LIME_SETTINGS = {"num_samples": 300, "top_labels": 2, "n_segments": 16, "compactness": 10.0, "progress": False}


def brightness_model() -> keras.Model:
    """A 1 x 1 conv "conv" whose channel 0 is the pixel's brightness b in [0, 1] and channel 1
    is 1 - b, then "gap" and "logits" W = [[4, -4], [-4, 4]]: class 0 ("bright") scores
    8 * mean(b) - 4, class 1 the opposite. Every method's answer follows by hand."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(2, 1, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    kernel = np.array([[1 / 3, -1 / 3]] * 3, np.float32).reshape(1, 1, 3, 2)
    model.get_layer("conv").set_weights([kernel, np.array([0.0, 1.0], np.float32)])
    model.get_layer("logits").set_weights([np.array([[4.0, -4.0], [-4.0, 4.0]], np.float32), np.zeros(2, np.float32)])
    return model


def blocky_images(n: int = N) -> np.ndarray:
    """Grey-ish images of 8 px blocks (mean brightness near 0.5) with a little noise: SLIC finds
    enough superpixels in them, and the model is not saturated."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(60, 200, size=(n, SIZE // 8, SIZE // 8, 3))
    image = np.repeat(np.repeat(coarse, 8, 1), 8, 2) + rng.normal(0, 3, (n, SIZE, SIZE, 3))
    return np.clip(image, 0, 255).astype(np.float32)


def brightness(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1) / 255


def assert_cam_by_hand(explainer, x):
    # CAM of class 0: 4 * b - 4 * (1 - b) at every pixel (the conv is 1 x 1: no pooling)
    np.testing.assert_allclose(explainer.explain(x, 0), 8 * brightness(x) - 4, rtol=1e-5, atol=1e-5)


def assert_gradcam_by_hand(explainer, x):
    # d score / d A_k is W[k, c] / (h * w) everywhere, so Grad-CAM = ReLU(CAM) / (h * w)
    expected = np.maximum(8 * brightness(x) - 4, 0) / SIZE**2
    np.testing.assert_allclose(explainer.explain(x, 0), expected, rtol=1e-5, atol=1e-7)


def assert_ascent_by_hand(explainer, x):
    # channel 0 is linear in the pixels with the same gradient everywhere: each step adds
    # alpha / rms(g) * g = 1 grey level to every pixel; channel 1 (1 - b) takes 1 away
    np.testing.assert_allclose(explainer.explain(x, 0), x + 2, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(explainer.explain(x, 1), x - 2, rtol=1e-5, atol=1e-3)


def assert_lime_by_hand(explainer, x):
    # a hidden (black) superpixel darkens the image: every superpixel is evidence for
    # "bright", and p(dark) = 1 - p(bright), so the dark class's weights are the negatives
    bright, dark = explainer.explain(x, 0), explainer.explain(x, 1)
    assert (bright > 0).all()
    np.testing.assert_allclose(dark, -bright, rtol=1e-4, atol=1e-6)


@dataclass(frozen=True)
class Method:
    """One explanation method under the contract."""

    kind: type[Explainer]
    build: Callable[[keras.Model, int], Explainer]  # (model, batch_size) -> explainer
    shape: tuple[int, ...]  # of one image's explanation
    assert_known_answer: Callable[[Explainer, np.ndarray], None]
    wrong: Callable[[], Explainer]  # built on a wrong layer or head: must raise
    refusal: str  # what the one-line error says


METHODS = {
    "cam": Method(
        CAM,
        build=lambda model, batch: CAM(model, batch_size=batch),
        shape=(SIZE, SIZE),
        assert_known_answer=assert_cam_by_hand,
        wrong=lambda: CAM(small_vgg()),  # an fc head: no "gap" to take the maps from
        refusal="no layer named 'gap'",
    ),
    "gradcam": Method(
        GradCAM,
        build=lambda model, batch: GradCAM(model, "conv", batch_size=batch),
        shape=(SIZE, SIZE),
        assert_known_answer=assert_gradcam_by_hand,
        wrong=lambda: GradCAM(brightness_model(), "block9_conv3"),
        refusal="no layer named 'block9_conv3'",
    ),
    "lime": Method(
        LIME,
        build=lambda model, batch: LIME(model, batch_size=batch, seed=3, **LIME_SETTINGS),
        shape=(SIZE, SIZE),
        assert_known_answer=assert_lime_by_hand,
        wrong=lambda: LIME(brightness_model(), **{**LIME_SETTINGS, "top_labels": 3}),  # a two-class head
        refusal="top_labels <= 2",
    ),
    "feature_maps": Method(
        GradientAscent,
        build=lambda model, batch: GradientAscent(model, "conv", steps=2, alpha=1.0, batch_size=batch),
        shape=(SIZE, SIZE, 3),
        assert_known_answer=assert_ascent_by_hand,
        wrong=lambda: GradientAscent(brightness_model(), "gap"),
        refusal="'gap'.*not Conv2D",
    ),
}


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return brightness_model()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return blocky_images()


def test_every_explainer_is_in_the_contract():
    for module in pkgutil.iter_modules(layerscope.explain.__path__):
        importlib.import_module(f"layerscope.explain.{module.name}")
    assert {cls for cls in _subclasses(Explainer) if not cls.__abstractmethods__} == {m.kind for m in METHODS.values()}


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


@pytest.mark.parametrize("name", METHODS)
def test_shape_and_dtype(name, model, images):
    maps = METHODS[name].build(model, 2).explain(images)
    assert maps.shape == (N, *METHODS[name].shape) and maps.dtype == np.float32


@pytest.mark.parametrize("name", METHODS)
def test_the_same_seed_gives_the_same_maps(name, model, images):
    method = METHODS[name]
    first, second = (method.build(model, 2).explain(images, 1) for _ in range(2))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", METHODS)
def test_the_batch_size_changes_nothing(name, model, images):
    method = METHODS[name]
    one_by_one, all_at_once = (method.build(model, b).explain(images, 0) for b in (1, 64))
    np.testing.assert_allclose(one_by_one, all_at_once, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_known_answer_on_the_brightness_model(name, model, images):
    METHODS[name].assert_known_answer(METHODS[name].build(model, 2), images)


@pytest.mark.parametrize("name", METHODS)
def test_a_wrong_layer_or_head_is_refused_in_one_line(name):
    with pytest.raises(LayerscopeError, match=METHODS[name].refusal) as err:
        METHODS[name].wrong()
    assert "\n" not in str(err.value)
