"""CAM against the class-weighted sum of feature maps, with hand-set head weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers.models import gap_model

from layerscope.core.errors import LayerscopeError
from layerscope.explain.cam import CAM

HEAD = np.array([[1.0, 0.0, -2.0], [0.5, 1.0, 0.0], [0.0, -1.0, 3.0]], np.float32)  # (k, c)
BIAS = np.array([0.1, -0.2, 0.3], np.float32)


def cam_model(dropout: bool = False) -> keras.Model:
    """conv -> pool -> gap -> logits with the hand-set head: CAM's A is the pooled maps feeding "gap"."""
    model = gap_model((8, 8, 2), filters=3, pool=True, dropout=dropout)
    model.get_layer("logits").set_weights([HEAD, BIAS])
    return model


def test_cam_is_class_weighted_sum_of_the_maps_feeding_gap():
    model = cam_model()
    x = np.random.default_rng(0).uniform(0, 255, size=(5, 8, 8, 2)).astype(np.float32)
    features = keras.Model(model.inputs, model.get_layer("pool").output).predict(x, verbose=0)
    logits = keras.Model(model.inputs, model.get_layer("logits").output).predict(x, verbose=0)
    explainer = CAM(model, batch_size=2)
    # float32 sums of terms up to ~1e3 that can cancel: an absolute tolerance at their scale
    scale = np.abs(HEAD).sum(axis=0).max() * np.abs(features).max()
    for c in range(3):
        maps = explainer.explain(x, targets=c)
        assert maps.shape == (5, 4, 4)
        expected = sum(HEAD[k, c] * features[..., k] for k in range(3))
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6 * scale)
        # The defining property: the map's spatial mean plus the bias is the logit.
        np.testing.assert_allclose(maps.mean(axis=(1, 2)) + BIAS[c], logits[:, c], rtol=1e-4)
    mixed = np.array([0, 1, 2, 2, 0])
    per_image = np.stack([explainer.explain(x[i : i + 1], int(c))[0] for i, c in enumerate(mixed)])
    np.testing.assert_allclose(explainer.explain(x, mixed), per_image, rtol=1e-6, atol=1e-6 * scale)
    predicted = logits.argmax(axis=1)
    np.testing.assert_allclose(explainer.explain(x), explainer.explain(x, predicted), rtol=1e-6, atol=1e-6 * scale)


def test_one_explainer_follows_weights_changed_in_place():
    """A randomisation cascade redraws one clone's weights in place and reuses its explainer."""
    model = cam_model()
    x = np.random.default_rng(2).uniform(0, 255, size=(3, 8, 8, 2)).astype(np.float32)
    explainer = CAM(model)
    before = explainer.explain(x, targets=1)
    head, conv = model.get_layer("logits"), model.get_layer("conv")
    head.kernel.assign(-head.kernel)
    conv.kernel.assign(conv.kernel * 2.0)
    after = explainer.explain(x, targets=1)
    np.testing.assert_allclose(after, CAM(model).explain(x, targets=1), rtol=1e-6)
    assert not np.allclose(after, before)


def test_dropout_between_gap_and_logits_changes_nothing_and_upsampling_works():
    """Dropout is off at inference: the maps equal those of the same weights without it."""
    with_dropout = cam_model(dropout=True)
    without = cam_model()
    without.get_layer("conv").set_weights(with_dropout.get_layer("conv").get_weights())
    x = np.random.default_rng(1).uniform(0, 255, size=(2, 8, 8, 2)).astype(np.float32)
    maps = CAM(with_dropout).explain(x, targets=[0, 2])
    np.testing.assert_allclose(maps, CAM(without).explain(x, targets=[0, 2]), rtol=1e-6)
    upsampled = CAM(with_dropout, upsample=True).explain(x, targets=[0, 2])
    assert upsampled.shape == (2, 8, 8)
    np.testing.assert_allclose(upsampled, [bilinear_by_hand(m, 8) for m in maps], rtol=1e-5, atol=1e-6)


def bilinear_by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """Separable linear interpolation at half-pixel centres, clamped at the edges."""
    n = image.shape[0]
    at = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    rows = np.stack([np.interp(at, np.arange(n), column) for column in image.T], axis=1)
    return np.stack([np.interp(at, np.arange(n), row) for row in rows])


def test_model_without_gap_head_points_to_the_gap_run():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.Dense(3, name="logits")(keras.layers.Flatten(name="flatten")(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    with pytest.raises(LayerscopeError, match=r"CAM needs the GAP model \(a vgg16-gap-freeze<k> run"):
        CAM(model)


def test_hidden_dense_between_gap_and_logits_is_refused():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, name="logits")(keras.layers.Dense(4, name="fc1")(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))
    with pytest.raises(LayerscopeError, match="fc1"):
        CAM(model)


def test_vgg16_gap_cam_has_block5_conv3_resolution():
    """Zhou et al. put GAP on the last conv layer: 4x4 at 64 px (block5_pool would give 2x2)."""
    from layerscope.train.models import split_at_block, vgg16

    model = vgg16((64, 64, 3), 3, weights="none", head="gap")
    names = [layer.name for layer in model.layers]
    assert "block5_pool" not in names and names[names.index("gap") - 1] == "block5_conv3"
    x = np.random.default_rng(2).uniform(0, 255, size=(2, 64, 64, 3)).astype(np.float32)
    maps = CAM(model).explain(x)
    assert maps.shape == (2, 4, 4)
    features = keras.Model(model.inputs, model.get_layer("block5_conv3").output).predict(x, verbose=0)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    kernel = model.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(maps, np.einsum("nhwk,nk->nhw", features, kernel[:, predicted].T), rtol=1e-4, atol=1e-5)
    # The cached-features split after a frozen block still chains through to GAP.
    extractor, tail = split_at_block(model, 3)
    np.testing.assert_allclose(
        tail.predict(extractor.predict(x, verbose=0), verbose=0),
        model.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
