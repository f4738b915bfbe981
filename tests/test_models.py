"""LeNet-5 and VGG-16 layouts, parameter counts by hand, freezing, splitting."""

from __future__ import annotations

import re
import textwrap

import keras
import numpy as np
import pytest
from helpers.workflow import cpu_env, run_python

from layerscope.core.blocks import block_of
from layerscope.core.errors import LayerscopeError
from layerscope.train.models import IMAGENET_MEAN_BGR, lenet5, set_frozen_blocks, split_at_block, vgg16

# Conv parameters per VGG-16 block: (3*3*c_in + 1) * c_out per conv layer.
BLOCK_PARAMS = {
    1: (27 * 64 + 64) + (576 * 64 + 64),  # 1,792 + 36,928
    2: (576 * 128 + 128) + (1152 * 128 + 128),  # 73,856 + 147,584
    3: (1152 * 256 + 256) + 2 * (2304 * 256 + 256),  # 295,168 + 2 * 590,080
    4: (2304 * 512 + 512) + 2 * (4608 * 512 + 512),  # 1,180,160 + 2 * 2,359,808
    5: 3 * (4608 * 512 + 512),  # 3 * 2,359,808
}
CONV_BASE_PARAMS = 14_714_688
BLOCK_LAYERS = [
    f"block{b}_{part}"
    for b, convs in enumerate((2, 2, 3, 3, 3), start=1)
    for part in [f"conv{i}" for i in range(1, convs + 1)] + ["pool"]
]


@pytest.fixture(scope="module")
def vgg_fc() -> keras.Model:
    return vgg16((32, 32, 3), 4, weights="none")


def _shapes(model: keras.Model) -> dict[str, tuple]:
    return {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}


def _params(model: keras.Model) -> dict[str, int]:
    return {layer.name: layer.count_params() for layer in model.layers if layer.weights}


# Hand computation, per case: conv 5x5 valid shrinks by 4; S2 (2x2, stride 1) by 1;
# S4 (2x2, stride 2) gives floor((n - 2) / 2) + 1. Conv params (25*c_in + 1)*c_out.
# fmt: off
LENET_CASES = [
    # 32x32x3, 11 classes: 28 -> 27 -> 23 -> 11 -> 7; flatten 7*7*120 = 5880
    (
        (32, 32, 3),
        11,
        {"c1": (28, 28, 6), "s2": (27, 27, 6), "c3": (23, 23, 16), "s4": (11, 11, 16),
         "c5": (7, 7, 120), "flatten": (5880,), "f6": (84,), "logits": (11,)},
        {"c1": (25 * 3 + 1) * 6, "c3": (25 * 6 + 1) * 16, "c5": (25 * 16 + 1) * 120,
         "f6": (5880 + 1) * 84, "logits": (84 + 1) * 11},
    ),
    # 36x44x1, 4 classes: 32x40 -> 31x39 -> 27x35 -> 13x17 -> 9x13; flatten 14040
    (
        (36, 44, 1),
        4,
        {"c1": (32, 40, 6), "s2": (31, 39, 6), "c3": (27, 35, 16), "s4": (13, 17, 16),
         "c5": (9, 13, 120), "flatten": (14040,), "f6": (84,), "logits": (4,)},
        {"c1": (25 * 1 + 1) * 6, "c3": (25 * 6 + 1) * 16, "c5": (25 * 16 + 1) * 120,
         "f6": (14040 + 1) * 84, "logits": (84 + 1) * 4},
    ),
    # 40x33x3, 2 classes: 36x29 -> 35x28 -> 31x24 -> 15x12 -> 11x8; flatten 10560
    (
        (40, 33, 3),
        2,
        {"c1": (36, 29, 6), "s2": (35, 28, 6), "c3": (31, 24, 16), "s4": (15, 12, 16),
         "c5": (11, 8, 120), "flatten": (10560,), "f6": (84,), "logits": (2,)},
        {"c1": (25 * 3 + 1) * 6, "c3": (25 * 6 + 1) * 16, "c5": (25 * 16 + 1) * 120,
         "f6": (10560 + 1) * 84, "logits": (84 + 1) * 2},
    ),
]
# fmt: on


@pytest.mark.parametrize(("shape", "classes", "outputs", "params"), LENET_CASES)
def test_lenet5_layout_and_parameters(shape, classes, outputs, params):
    model = lenet5(shape, classes)
    assert [layer.name for layer in model.layers] == [
        "image",
        "preprocess",
        "c1",
        "s2",
        "c3",
        "s4",
        "c5",
        "flatten",
        "f6",
        "logits",
        "probabilities",
    ]
    shapes = _shapes(model)
    assert {name: shapes[name] for name in outputs} == outputs
    assert _params(model) == params
    assert model.count_params() == sum(params.values())
    assert model.get_layer("s2").strides == (1, 1)
    assert model.get_layer("s4").strides == (2, 2)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lenet5_activation_and_linear_logits(activation):
    model = lenet5((32, 32, 3), 3, activation=activation)
    for name in ("c1", "c3", "c5", "f6"):
        assert model.get_layer(name).activation.__name__ == activation
    assert model.get_layer("logits").activation.__name__ == "linear"
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    probs = model.predict(images, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_lenet5_preprocess_scales_pixels_by_1_over_255():
    model = lenet5((32, 32, 1), 2)
    head = keras.Model(model.input, model.get_layer("preprocess").output)
    np.testing.assert_allclose(head(np.full((1, 32, 32, 1), 255.0, "float32")), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"activation": "sigmoid"}, "sigmoid"),
        ({"input_shape": (32, 32)}, "(32, 32)"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_lenet5_rejects_bad_arguments(kwargs, culprit):
    args = {"input_shape": (32, 32, 3), "num_classes": 3, **kwargs}
    with pytest.raises(LayerscopeError, match=re.escape(culprit)):
        lenet5(**args)


def test_vgg16_is_flat_and_named(vgg_fc):
    assert not any(isinstance(layer, keras.Model) for layer in vgg_fc.layers)
    names = [layer.name for layer in vgg_fc.layers]
    assert names == [
        "image",
        "preprocess",
        *BLOCK_LAYERS,
        "flatten",
        "head_norm",
        "fc1",
        "dropout",
        "logits",
        "probabilities",
    ]
    assert tuple(vgg_fc.get_layer("block3_conv3").output.shape) == (None, 8, 8, 256)
    assert vgg_fc.get_layer("probabilities").dtype_policy.compute_dtype == "float32"


def test_vgg16_conv_base_parameter_count(vgg_fc):
    assert sum(BLOCK_PARAMS.values()) == CONV_BASE_PARAMS
    base = sum(vgg_fc.get_layer(name).count_params() for name in BLOCK_LAYERS)
    assert base == CONV_BASE_PARAMS


@pytest.mark.parametrize(
    ("shape", "classes", "head", "head_params"),
    [
        # 32x32: block5_pool is 1x1x512, flatten 512; head_norm 4*512 (scale, offset, moving
        # mean and variance); fc1 512*256+256; logits 257*4
        ((32, 32, 3), 4, "fc", 4 * 512 + (512 * 256 + 256) + (256 + 1) * 4),
        # 48x64: block5_pool is 1x2x512 (48/32 floors to 1), flatten 1024
        ((48, 64, 3), 11, "fc", 4 * 1024 + (1024 * 256 + 256) + (256 + 1) * 11),
        ((32, 32, 3), 4, "gap", (512 + 1) * 4),
        ((48, 64, 3), 11, "gap", (512 + 1) * 11),
    ],
)
def test_vgg16_total_parameters(shape, classes, head, head_params):
    model = vgg16(shape, classes, weights="none", head=head)
    assert model.count_params() == CONV_BASE_PARAMS + head_params


def test_vgg16_gap_head_layout():
    model = vgg16((32, 32, 3), 5, weights="none", head="gap")
    assert [layer.name for layer in model.layers][-3:] == [
        "gap",
        "logits",
        "probabilities",
    ]
    assert model.get_layer("logits").kernel.shape == (512, 5)


def test_vgg16_preprocess_is_caffe_bgr_minus_mean(vgg_fc):
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], "float32")  # R, G, B
    out = keras.Model(vgg_fc.input, vgg_fc.get_layer("preprocess").output)(np.tile(pixel, (1, 32, 32, 1)))
    np.testing.assert_allclose(np.asarray(out)[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


@pytest.mark.parametrize("k", range(6))
def test_set_frozen_blocks_freezes_exactly_blocks_1_to_k(vgg_fc, k):
    set_frozen_blocks(vgg_fc, k)
    frozen = {layer.name for layer in vgg_fc.layers if not layer.trainable}
    assert frozen == {name for name in BLOCK_LAYERS if int(name[5]) <= k}
    trainable = sum(int(np.prod(w.shape)) for w in vgg_fc.trainable_weights)
    expected_frozen = sum(BLOCK_PARAMS[b] for b in range(1, k + 1))
    moving_statistics = 2 * 512  # head_norm's mean and variance at 32x32 (flatten 512)
    assert trainable == vgg_fc.count_params() - expected_frozen - moving_statistics
    set_frozen_blocks(vgg_fc, 0)


def test_vgg16_freeze_blocks_argument():
    model = vgg16((32, 32, 3), 2, weights="none", freeze_blocks=3)
    assert not model.get_layer("block3_conv3").trainable
    assert model.get_layer("block4_conv1").trainable
    assert model.get_layer("fc1").trainable


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"freeze_blocks": 6}, "6"),
        ({"freeze_blocks": -1}, "-1"),
        ({"head": "max"}, "'max'"),
        ({"input_shape": (16, 16, 3)}, "(16, 16, 3)"),
        ({"input_shape": (32, 32, 1)}, "(32, 32, 1)"),
    ],
)
def test_vgg16_rejects_bad_arguments(kwargs, culprit):
    args = {"input_shape": (32, 32, 3), "num_classes": 3, "weights": "none", **kwargs}
    with pytest.raises(LayerscopeError, match=re.escape(culprit)):
        vgg16(**args)


def test_block_of():
    assert block_of("block3_conv3") == 3
    assert block_of("block5_pool") == 5
    assert block_of("fc1") is None
    assert block_of("logits") is None


def test_split_at_block_shares_layers_and_trains_the_full_model():
    model = vgg16((32, 32, 3), 3, weights="none", freeze_blocks=3)
    extractor, tail = split_at_block(model, 3)
    assert tuple(extractor.output.shape) == (None, 4, 4, 256)
    assert tail.get_layer("fc1") is model.get_layer("fc1")
    assert tail.get_layer("block4_conv1") is model.get_layer("block4_conv1")
    assert "block3_conv3" not in {layer.name for layer in tail.layers}

    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    labels = np.array([0, 1, 2, 0])
    np.testing.assert_allclose(model(images), tail(extractor(images)), rtol=1e-6, atol=1e-7)

    before = {n: model.get_layer(n).get_weights()[0].copy() for n in ("block4_conv1", "fc1", "logits")}
    features = extractor.predict(images, verbose=0)
    tail.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    tail.train_on_batch(features, labels)
    for name, kernel in before.items():
        assert not np.array_equal(model.get_layer(name).get_weights()[0], kernel), name
    np.testing.assert_allclose(model(images), tail(extractor(images)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k", [0, 6])
def test_split_at_block_rejects_bad_block(vgg_fc, k):
    with pytest.raises(LayerscopeError, match=f"got {k}"):
        split_at_block(vgg_fc, k)


def test_split_at_block_needs_vgg_layers():
    with pytest.raises(LayerscopeError, match="block2_pool"):
        split_at_block(lenet5((32, 32, 3), 2), 2)


def test_vgg16_saved_model_reloads(tmp_path, vgg_fc):
    path = tmp_path / "model.keras"
    vgg_fc.save(path)
    reloaded = keras.saving.load_model(path)
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), vgg_fc.predict(images, verbose=0))
    assert isinstance(reloaded.get_layer("preprocess"), keras.layers.Rescaling)


def test_vgg16_preprocess_is_bit_identical_to_bgr_minus_mean(vgg_fc):
    """The Keras-only preprocessing does the old custom layer's arithmetic exactly (float32)."""
    images = np.random.default_rng(5).uniform(-50, 300, (3, 32, 32, 3)).astype("float32")
    out = keras.Model(vgg_fc.input, vgg_fc.get_layer("preprocess").output)(images)
    expected = images[..., ::-1] - np.asarray(IMAGENET_MEAN_BGR, dtype="float32")
    assert np.array_equal(np.asarray(out), expected)


@pytest.mark.pipeline(minutes=1)  # a TensorFlow child process
def test_a_saved_vgg16_loads_with_plain_keras(tmp_path, vgg_fc):
    """``keras.models.load_model`` in a process that never imports layerscope."""
    path = tmp_path / "model.keras"
    vgg_fc.save(path)
    images = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", vgg_fc.predict(images, verbose=0))
    script = textwrap.dedent(
        f"""
        import sys
        import keras, numpy as np, tensorflow as tf
        assert not tf.config.list_physical_devices("GPU"), "the test hides every GPU"
        model = keras.models.load_model({str(path)!r})
        out = model.predict(np.load({str(tmp_path / "images.npy")!r}), verbose=0)
        assert not any(name.startswith("layerscope") for name in sys.modules), "layerscope was imported"
        print(np.array_equal(out, np.load({str(tmp_path / "expected.npy")!r})))
        """
    )
    run = run_python("-c", script, env=cpu_env(TF_CPP_MIN_LOG_LEVEL="3"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "True"


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_models_under_mixed_bfloat16(mixed_bfloat16):
    images = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for model in (
        lenet5((32, 32, 3), 3),
        vgg16((32, 32, 3), 3, weights="none", head="gap"),
    ):
        assert model.layers[2].compute_dtype == "bfloat16"
        assert model.layers[2].variable_dtype == "float32"
        probs = model.predict(images, verbose=0)
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(images, np.array([0, 2])))


def test_head_norm_statistics_catch_up_within_a_short_run():
    """Inference uses the moving statistics: after 60 steps they must match the features'
    (Keras' default momentum 0.99 leaves the mean 45% short, and validation collapses)."""
    model = vgg16((32, 32, 3), 2, weights="none", freeze_blocks=5)
    _, tail = split_at_block(model, 5)
    rng = np.random.default_rng(0)
    features = (200 + 50 * rng.normal(size=(60 * 16, 1, 1, 512))).astype("float32")
    labels = rng.integers(0, 2, len(features))
    tail.compile(keras.optimizers.SGD(1e-3), "sparse_categorical_crossentropy")
    tail.fit(features, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
    norm = model.get_layer("head_norm")
    # averaged over the 512 channels: with momentum 0.99 the mean would read 200 * (1 - 0.99**60) = 91
    assert np.mean(norm.moving_mean) == pytest.approx(200, rel=0.02)
    assert np.mean(norm.moving_variance) == pytest.approx(50**2, rel=0.1)
