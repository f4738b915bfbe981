"""Onset and invariance on hand-made maps whose correlations are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.explain.onset import feature_onset, mean_pairwise_correlation, pearson

FINAL = [1, 2, 3, 4]
REVERSED = [4, 3, 2, 1]  # r = -1
SWAPPED = [1, 2, 4, 3]  # r = 4 / 5 = 0.8
STRETCHED = [1, 2, 3, 5]  # r = 6.5 / sqrt(8.75 * 5) = 0.98270


def test_pearson_by_hand():
    assert pearson(SWAPPED, FINAL) == pytest.approx(0.8)
    assert pearson(STRETCHED, FINAL) == pytest.approx(6.5 / np.sqrt(43.75))
    assert pearson(REVERSED, FINAL) == pytest.approx(-1)
    assert np.isnan(pearson([2, 2, 2, 2], FINAL))


def test_onset_is_where_correlation_stays_above_threshold():
    maps = {
        "early": [REVERSED, REVERSED, SWAPPED, STRETCHED, FINAL],  # -1, -1, .8, .98, 1
        "late": [STRETCHED, REVERSED, SWAPPED, STRETCHED, FINAL],  # high at first, then a dip
    }
    onset = feature_onset(maps, threshold=0.9)
    assert onset["early"].index == 3 and onset["early"].step == 3
    np.testing.assert_allclose(onset["early"].correlation, [-1, -1, 0.8, 6.5 / np.sqrt(43.75), 1])
    assert onset["late"].index == 3
    lowered = feature_onset(maps, threshold=0.75, steps=[0, 100, 200, 300, 400])
    assert lowered["early"].index == 2 and lowered["early"].step == 200
    assert lowered["late"].index == 2
    assert feature_onset(maps, threshold=-1)["late"].index == 0


def test_onset_on_multidimensional_maps_and_constant_final_map():
    final = np.arange(8.0).reshape(2, 2, 2)
    maps = {"conv": [-final, 2 * final + 1, final], "dead": [final, final, np.zeros((2, 2, 2))]}
    onset = feature_onset(maps, steps=[10, 20, 30])
    assert onset["conv"].index == 1 and onset["conv"].step == 20
    assert onset["dead"].index is None and onset["dead"].step is None
    with pytest.raises(LayerscopeError, match="3 checkpoint maps but 2 steps"):
        feature_onset({"conv": maps["conv"]}, steps=[1, 2])


def test_mean_pairwise_correlation_by_hand():
    result = mean_pairwise_correlation(
        {"early": [FINAL, [2, 4, 6, 8], REVERSED], "late": [FINAL, STRETCHED, [2, 3, 4, 5]]}
    )
    assert result["early"] == pytest.approx((1 - 1 - 1) / 3)
    r = 6.5 / np.sqrt(43.75)
    assert result["late"] == pytest.approx((r + 1 + r) / 3)
    with pytest.raises(LayerscopeError, match="at least 2 images"):
        mean_pairwise_correlation({"one": [FINAL]})


@pytest.mark.parametrize("last", [1, 2, 5, 123, 300, 5000])
@pytest.mark.parametrize("ratio", [1.5, 1.2])
def test_checkpoint_steps_are_log_spaced_from_step_1_to_the_last(last, ratio):
    from layerscope.train.fit import StepCheckpoints

    steps = StepCheckpoints.schedule(last, ratio)
    assert steps[0] == 1 and steps[-1] == last
    gaps = np.diff(steps)
    assert (gaps > 0).all()
    # each step at most `ratio` times the previous one, except where the next integer is further
    assert all(b <= ratio * a or b == a + 1 for a, b in zip(steps, steps[1:]))
    # and no denser than needed: skipping a step would break the ratio
    assert all(c > ratio * a for a, c in zip(steps, steps[2:]))


def test_checkpoint_schedule_by_hand():
    from layerscope.train.fit import StepCheckpoints

    assert StepCheckpoints.schedule(300) == [1, 2, 3, 4, 6, 9, 13, 19, 28, 42, 63, 94, 141, 211, 300]
    assert StepCheckpoints.schedule(0) == []


def synthetic_training(settle: dict[str, list[int]], steps: list[int], size: int = 64, seed: int = 0):
    """Maps (readings, units, size) per layer: unit u's map is its reference from step
    settle[layer][u] on; before that it is the reference's negative (r = -1), except
    for a transient match two readings earlier (r = 1) that the onset must not take."""
    rng = np.random.default_rng(seed)
    maps = {}
    for layer, onsets in settle.items():
        reference = rng.normal(size=(len(onsets), size))
        series = np.empty((len(steps), len(onsets), size))
        for u, onset in enumerate(onsets):
            k = steps.index(onset)
            for r in range(len(steps)):
                transient = r == k - 2
                series[r, u] = reference[u] if r >= k or transient else -reference[u] + 0.1 * rng.normal(size=size)
        maps[layer] = (series, reference)
    return maps


def test_onset_on_synthetic_layers_settling_at_known_steps():
    from layerscope.explain.onset import correlation_curves, layer_onset

    steps = [0, 1, 2, 3, 4, 6, 9, 13, 19, 28, 42, 63, 94, 141, 211, 300]
    settle = {
        "first": [9, 13, 19, 28, 42],
        "middle": [63, 94, 94, 141, 94],
        "last": [141, 211, 211, 300, 211],
    }
    for layer, (series, reference) in synthetic_training(settle, steps).items():
        curves = correlation_curves(series, reference)
        assert curves.shape == (5, len(steps))
        np.testing.assert_allclose(curves[:, -1], 1.0)
        onset = layer_onset(curves, steps, threshold=0.9)
        np.testing.assert_array_equal(onset.unit_steps, settle[layer])
        assert (onset.units, onset.settled) == (5, 5)
        expected = np.quantile(settle[layer], [0.25, 0.5, 0.75])
        assert (onset.q25, onset.median, onset.q75) == tuple(expected)
    first = layer_onset(correlation_curves(*synthetic_training({"a": [9, 13, 19, 28, 42]}, steps)["a"]), steps)
    assert (first.q25, first.median, first.q75) == (13, 19, 28)


def test_layer_onset_leaves_out_constant_units_and_checks_steps():
    from layerscope.explain.onset import correlation_curves, layer_onset

    reference = np.array([[1.0, 2, 3, 4], [5, 5, 5, 5]])  # the second unit's map is constant
    series = np.stack([[REVERSED, FINAL], [SWAPPED, FINAL], [STRETCHED, FINAL], [FINAL, FINAL]]).astype(float)
    curves = correlation_curves(series, reference)
    np.testing.assert_allclose(curves[0], [-1, 0.8, 6.5 / np.sqrt(43.75), 1])
    assert np.isnan(curves[1]).all()
    onset = layer_onset(curves, [0, 10, 20, 40], threshold=0.9)
    assert (onset.median, onset.units, onset.settled) == (20, 2, 1)
    assert np.isnan(onset.unit_steps[1])
    assert layer_onset(curves, [0, 10, 20, 40], threshold=0.75).median == 10
    with pytest.raises(LayerscopeError, match="steps must increase"):
        layer_onset(curves, [0, 10, 10, 40])
    with pytest.raises(LayerscopeError, match="4 readings per curve but 3 steps"):
        layer_onset(curves, [0, 10, 20])
    with pytest.raises(LayerscopeError, match="do not match reference"):
        correlation_curves(series, reference[:1])


def test_checkpoint_ratio_must_exceed_one(tmp_path):
    from layerscope.train.fit import StepCheckpoints

    with pytest.raises(LayerscopeError, match="training.checkpoint_ratio must be > 1.*got 1.0"):
        StepCheckpoints(None, tmp_path, ratio=1.0)


def test_measure_onset_reads_every_checkpoint_as_fresh_models_would(tmp_path):
    """One traced ascent per layer follows each loaded checkpoint: the curves equal those of fresh models."""
    import keras

    from layerscope.explain.base import spread_over_classes
    from layerscope.explain.feature_maps import GradientAscent, representative_channels
    from layerscope.explain.onset import correlation_curves
    from layerscope.explain.onset_study import ascent_changes, measure_onset

    def three_conv_net():
        inputs = keras.Input((12, 12, 1))
        x = inputs
        for name in ("c1", "c2", "c3"):
            x = keras.layers.Conv2D(4, 3, activation="relu", name=name)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))

    names = ("step_000000", "step_000001", "final_000004")
    paths = [tmp_path / f"{name}.weights.h5" for name in names]
    for seed, path in enumerate(paths):
        keras.utils.set_random_seed(seed)
        three_conv_net().save_weights(path)
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 255, (6, 12, 12, 1)).astype(np.float32), np.array([0, 1] * 3)
    stages = {"first": "c1", "middle": "c2", "last": "c3"}
    onset = {"images": 2, "channels": 2, "threshold": 0.9}
    ascent = {"layers": stages, "steps": 3, "alpha": 1.0}
    curves, _ = measure_onset(three_conv_net(), tmp_path, images, labels, ascent, onset)

    shown = images[spread_over_classes(labels, 2)]
    fresh = []
    for path in paths:
        model = three_conv_net()
        model.load_weights(path)
        fresh.append(model)
    for layer in stages.values():
        channels = representative_channels(fresh[-1], layer, shown, k=2)
        maps = np.stack([ascent_changes(GradientAscent(m, layer, steps=3, alpha=1.0), shown, channels) for m in fresh])
        expected = correlation_curves(maps, maps[-1])
        got = curves[curves["layer"] == layer]["correlation"].to_numpy().reshape(expected.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert np.nanmin(expected[:, 0]) < 0.99  # the first reading differs from the final one
