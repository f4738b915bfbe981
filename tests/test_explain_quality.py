"""Explanation-quality metrics on hand-built models whose evidence is known exactly."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.models import gap_model
from scipy import ndimage

from layerscope.core.errors import LayerscopeError
from layerscope.explain.cam import CAM
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.lime_method import LIME
from layerscope.explain.quality import (
    cam_fn,
    deletion_insertion,
    gradcam_fn,
    lime_fn,
    parameter_randomisation,
    random_logit,
    random_maps,
    region_maps,
    spearman,
    summarise,
)

SIZE, N = 16, 4
PATCH = (slice(10, 14), slice(10, 14))  # the only pixels the patch model reads
ELSEWHERE = (slice(1, 5), slice(1, 5))
SCALE, BIAS = 8.0, -4.0


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def patch_model() -> keras.Model:
    """logit_1 - logit_0 = SCALE * mean(PATCH) + BIAS, so p_1 = sigmoid of that."""
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(2, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[PATCH] = SCALE / 16
    kernel = np.stack([np.zeros(SIZE * SIZE, np.float32), mask.ravel()], axis=1)
    model.get_layer("logits").set_weights([kernel, np.array([0.0, BIAS], np.float32)])
    return model


def patch_probability(x: np.ndarray) -> np.ndarray:
    return sigmoid(SCALE * x[:, PATCH[0], PATCH[1]].mean(axis=(1, 2)) + BIAS)


def patch_images() -> np.ndarray:
    """Background dark (0..0.2), the patch bright (0.8..1): class 1 is predicted."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, size=(N, SIZE, SIZE)).astype(np.float32)
    x[:, PATCH[0], PATCH[1]] = rng.uniform(0.8, 1, size=(N, 4, 4))
    return x


def conv_model() -> keras.Model:
    """An untrained (seeded) conv net: enough structure for Grad-CAM to depend on."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x))
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs)


def colour_images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, size=(n, SIZE, SIZE, 3)).astype(np.float32)


def brightness(model, images, targets) -> np.ndarray:
    """A 'map' that ignores the model: it must fail both sanity checks."""
    return np.asarray(images).mean(axis=-1)


def test_deletion_curve_of_the_oracle_map_is_known_by_hand():
    """Oracle ranks the patch first, ties in row-major order: after k of 20 steps the first
    round(k * 256 / 20) patch pixels (row-major) are zero, the rest of the patch intact."""
    x = patch_images()
    oracle = region_maps((N, SIZE, SIZE), *PATCH)
    result = deletion_insertion(patch_model(), x, oracle, targets=1, steps=20, baseline="zero")
    expected = []
    for k in range(21):
        removed = min(round(k * SIZE * SIZE / 20), 16)
        patch = x[:, PATCH[0], PATCH[1]].reshape(N, 16).copy()
        patch[:, :removed] = 0
        expected.append(sigmoid(SCALE * patch.mean(axis=1) + BIAS))
    np.testing.assert_allclose(result.deletion, np.stack(expected, axis=1), rtol=1e-5)
    np.testing.assert_allclose(result.fractions, np.rint(np.arange(21) * 256 / 20) / 256)
    assert result.deletion.shape == result.insertion.shape == (N, 21)
    np.testing.assert_array_equal(result.targets, np.ones(N))


def test_curve_ends_are_the_clean_baseline_and_blurred_probabilities():
    x = patch_images()
    model = patch_model()
    maps = random_maps((N, 4, 4), seed=3)  # coarse maps are upsampled to 16x16
    zero = deletion_insertion(model, x, maps, steps=5, baseline="zero")
    np.testing.assert_array_equal(zero.targets, np.ones(N))  # the prediction by default
    clean = patch_probability(x)
    np.testing.assert_allclose(zero.deletion[:, 0], clean, rtol=1e-5)
    np.testing.assert_allclose(zero.deletion[:, -1], sigmoid(BIAS), rtol=1e-5)  # all-zero image
    np.testing.assert_allclose(zero.insertion[:, -1], clean, rtol=1e-5)
    blurred = ndimage.gaussian_filter(x, sigma=(0, SIZE / 16, SIZE / 16))  # sigma = size / 16
    np.testing.assert_allclose(zero.insertion[:, 0], patch_probability(blurred), rtol=1e-5)
    mean = deletion_insertion(model, x, maps, steps=5, baseline="mean")
    np.testing.assert_allclose(mean.deletion[:, -1], sigmoid(SCALE * x.mean(axis=(1, 2)) + BIAS), rtol=1e-5)
    blur = deletion_insertion(model, x, maps, steps=5, baseline="blur")
    np.testing.assert_allclose(blur.deletion[:, -1], blur.insertion[:, 0], rtol=1e-6)


# Deleting into the blur leaves a bright blob the model still reads: a narrower spread.
@pytest.mark.parametrize(("baseline", "margin"), [("mean", 0.1), ("zero", 0.1), ("blur", 0.02)])
def test_oracle_beats_random_beats_a_misplaced_map(baseline, margin):
    x = patch_images()
    model = patch_model()
    scores = {
        name: deletion_insertion(model, x, maps, targets=1, baseline=baseline)
        for name, maps in {
            "oracle": region_maps((N, SIZE, SIZE), *PATCH),
            "random": random_maps((N, SIZE, SIZE), seed=0),
            "elsewhere": region_maps((N, SIZE, SIZE), *ELSEWHERE),
        }.items()
    }
    deletion = {name: r.deletion_auc for name, r in scores.items()}
    insertion = {name: r.insertion_auc for name, r in scores.items()}
    assert np.all(deletion["oracle"] < deletion["random"] - margin)
    assert np.all(deletion["random"] < deletion["elsewhere"] - margin)
    assert np.all(insertion["oracle"] > insertion["random"] + 0.05)  # insertion ignores the baseline
    assert np.all(insertion["random"] > insertion["elsewhere"] + 0.05)


def test_batch_size_does_not_change_the_curves():
    x, maps = patch_images(), random_maps((N, SIZE, SIZE), seed=1)
    small = deletion_insertion(patch_model(), x, maps, steps=7, batch_size=5)
    large = deletion_insertion(patch_model(), x, maps, steps=7, batch_size=500)
    np.testing.assert_allclose(small.deletion, large.deletion, rtol=1e-6)
    np.testing.assert_allclose(small.insertion, large.insertion, rtol=1e-6)


def test_gradcam_decorrelates_under_cascading_randomisation_and_the_model_is_untouched():
    model = conv_model()
    before = [w.copy() for w in model.get_weights()]
    table = parameter_randomisation(model, gradcam_fn("conv2"), colour_images(), seed=0)
    assert list(table.columns) == ["layer", "depth", "spearman", "spearman_sd", "spearman_abs", "spearman_abs_sd", "n"]
    assert table["layer"].tolist() == ["logits", "conv2", "conv1"]  # from the output down
    assert table["depth"].tolist() == [1, 2, 3]
    assert (table["n"] == 6).all()
    assert table["spearman"].max() < 0.5
    assert table["spearman_abs"].max() < 0.5
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_cascade_redraws_one_more_layer_per_step_as_zero_mean_kernels_of_the_same_sd():
    model = conv_model()
    kernel, bias = model.get_layer("conv2").get_weights()
    model.get_layer("conv2").set_weights([kernel - 0.5, bias])  # a mean far from zero
    seen = []

    def record(m, images, targets):
        seen.append({layer.name: layer.get_weights()[0] for layer in m.layers if layer.weights})
        return brightness(m, images, targets)

    parameter_randomisation(model, record, colour_images(), seed=0)
    original, steps = seen[0], seen[1:]
    assert len(steps) == 3
    for step, randomised in zip(steps, (["logits"], ["logits", "conv2"], ["logits", "conv2", "conv1"])):
        for name, kernel in step.items():
            if name not in randomised:
                np.testing.assert_array_equal(kernel, original[name])
                continue
            assert not np.allclose(kernel, original[name])
            assert kernel.std() == pytest.approx(original[name].std(), rel=0.25)
            assert abs(kernel.mean()) < 4 * kernel.std() / np.sqrt(kernel.size)


def test_a_model_ignoring_map_keeps_correlation_one_at_every_depth():
    table = parameter_randomisation(conv_model(), brightness, colour_images(), seed=0)
    assert len(table) == 3
    np.testing.assert_allclose(table["spearman"], 1.0)
    np.testing.assert_allclose(table["spearman_abs"], 1.0)


def test_random_logit_of_a_model_ignoring_map_is_one():
    model = conv_model()
    frame = random_logit(model, brightness, colour_images(5), targets=[0, 1, 2, 0, 1], seed=0)
    assert frame.shape == (5, 4)
    assert list(frame.columns) == ["image", "target", "other", "spearman"]
    assert (frame["other"] != frame["target"]).all() and frame["other"].between(0, 2).all()
    np.testing.assert_allclose(frame["spearman"], 1.0)


def test_random_logit_takes_parameter_randomisations_argument_order():
    names = ["model", "explain_fn", "images", "targets", "seed"]
    assert list(inspect.signature(random_logit).parameters) == names
    assert list(inspect.signature(parameter_randomisation).parameters) == names


def test_random_logit_other_classes_cover_all_but_the_target():
    frame = random_logit(conv_model(), brightness, colour_images(60), targets=1, seed=5)
    assert set(frame["other"]) == {0, 2}


def test_flat_maps_share_no_order_with_varied_ones_and_two_flat_ones_are_left_out():
    varied, flat = np.arange(9.0).reshape(3, 3), np.zeros((3, 3))
    assert spearman(varied, varied[::-1, ::-1]) == pytest.approx(-1.0)
    assert spearman(varied, flat) == 0.0
    assert np.isnan(spearman(flat, flat))
    explained, other = np.stack([varied, varied, flat]), np.stack([varied, flat, flat])
    frame = random_logit(conv_model(), lambda m, x, t: explained if t[0] == 0 else other, colour_images(3), targets=0)
    np.testing.assert_allclose(frame["spearman"], [1.0, 0.0, np.nan])
    row = summarise(frame, "toy").iloc[0]
    assert (row["value"], row["n"]) == (0.5, 2)


def test_adapters_call_the_study_explainers_with_their_settings():
    model, x, t = gap_model((SIZE, SIZE, 3), seed=1), colour_images(2), np.array([0, 2])
    np.testing.assert_allclose(cam_fn()(model, x, t), CAM(model, upsample=True).explain(x, t))
    gradcam = gradcam_fn("conv", upsample=False)(model, x, t)
    np.testing.assert_allclose(gradcam, GradCAM(model, "conv").explain(x, t))
    lime = {"num_samples": 20, "top_labels": 2, "batch_size": 64, "n_segments": 50, "compactness": 10.0, "hide": "blur"}
    maps = lime_fn({**lime, "other_key": 1}, seed=3)(model, x, t)  # the config block, extra keys ignored
    expected = LIME(model, seed=3, progress=False, **lime).explain(x, t)
    np.testing.assert_array_equal(maps, expected)
    assert maps.shape == (2, SIZE, SIZE)


def test_same_seed_same_results():
    model, images = conv_model(), colour_images(4)
    explain = gradcam_fn("conv2")
    pd.testing.assert_frame_equal(
        parameter_randomisation(model, explain, images, seed=7),
        parameter_randomisation(model, explain, images, seed=7),
    )
    pd.testing.assert_frame_equal(
        random_logit(model, explain, images, seed=7), random_logit(model, explain, images, seed=7)
    )
    np.testing.assert_array_equal(random_maps((2, 3, 3), 7), random_maps((2, 3, 3), 7))
    assert not np.array_equal(random_maps((2, 3, 3), 7), random_maps((2, 3, 3), 8))


def test_summary_rows_are_tidy():
    x = patch_images()
    curves = deletion_insertion(patch_model(), x, random_maps((N, SIZE, SIZE), 0), steps=4)
    model, images = conv_model(), colour_images(3)
    table = pd.concat(
        [
            summarise(curves, "random", run="r1"),
            summarise(parameter_randomisation(model, brightness, images), "brightness", run="r1"),
            summarise(random_logit(model, gradcam_fn("conv2"), images), "gradcam", "conv2", run="r1"),
        ],
        ignore_index=True,
    )
    assert list(table.columns) == ["run", "method", "layer", "metric", "value", "sd", "n"]
    assert table["metric"].tolist() == [
        "deletion_auc",
        "insertion_auc",
        "randomisation_spearman@logits",
        "randomisation_spearman_abs@logits",
        "randomisation_spearman@conv2",
        "randomisation_spearman_abs@conv2",
        "randomisation_spearman@conv1",
        "randomisation_spearman_abs@conv1",
        "random_logit_spearman",
    ]
    assert table["n"].tolist() == [N, N] + [3] * 7
    np.testing.assert_allclose(table["value"].iloc[0], curves.deletion_auc.mean())
    np.testing.assert_allclose(table["sd"].iloc[1], curves.insertion_auc.std(ddof=1))
    with pytest.raises(LayerscopeError, match="summarise"):
        summarise(pd.DataFrame({"x": [1]}), "m")


def test_bad_arguments_are_named():
    model, x = patch_model(), patch_images()
    with pytest.raises(LayerscopeError, match="maps"):
        deletion_insertion(model, x, random_maps((N - 1, SIZE, SIZE), 0))
    with pytest.raises(LayerscopeError, match="maps"):
        deletion_insertion(model, x, random_maps((N, SIZE), 0))
    with pytest.raises(LayerscopeError, match="steps"):
        deletion_insertion(model, x, random_maps((N, SIZE, SIZE), 0), steps=0)
    with pytest.raises(LayerscopeError, match="baseline"):
        deletion_insertion(model, x, random_maps((N, SIZE, SIZE), 0), baseline="grey")
    with pytest.raises(LayerscopeError, match="explain_fn"):
        parameter_randomisation(model, lambda m, x, t: x[:1], x)


def test_remembered_maps_are_the_trained_models_and_other_models_are_explained_afresh():
    """remember keeps the fixed model's maps per (images, targets); a clone is never served them."""
    from layerscope.explain.quality import remember

    model, other = conv_model(), conv_model()
    calls = []

    def explain(m, images, targets):
        calls.append(m)
        return gradcam_fn("conv2")(m, images, targets)

    kept = remember(explain, model)
    x = colour_images()
    first = kept(model, x, np.zeros(len(x), np.int32))
    np.testing.assert_array_equal(kept(model, x.copy(), np.zeros(len(x), np.int32)), first)
    kept(model, x, np.ones(len(x), np.int32))
    kept(other, x, np.zeros(len(x), np.int32))
    kept(other, x, np.zeros(len(x), np.int32))
    assert calls == [model, model, other, other]


def test_lime_of_a_fixed_model_keeps_its_maps():
    """lime_fn with fixed= (outputs kept) gives the maps of a plain lime_fn, for every class."""
    model, x = conv_model(), colour_images(2)
    lime = {
        "batch_size": 32,
        "num_samples": 40,
        "top_labels": 2,
        "n_segments": 50,
        "compactness": 10.0,
        "hide": "black",
    }
    fixed, plain = lime_fn(lime, seed=3, fixed=model), lime_fn(lime, seed=3)
    for t in (np.array([0, 1]), np.array([2, 0])):
        np.testing.assert_array_equal(fixed(model, x, t), plain(model, x, t))
