import keras
import numpy as np
import pandas as pd
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import spread_over_classes
from layerscope.explain.explanations import select_images
from layerscope.explain.feature_map_study import (
    FeatureMapFiles,
    feature_map_study,
    invariance_study,
    invariance_verdict,
    write_feature_maps,
)
from layerscope.explain.feature_maps import pairwise_correlations


def predictions():
    rows = [("a", "a"), ("a", "b"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "a")]
    return pd.DataFrame(rows, columns=["true", "predicted"])


def test_selection_alternates_correct_and_wrong_per_class():
    p = predictions()
    chosen = select_images(p, ["a", "b", "c"], per_class=2, seed=0)
    picked = p.loc[chosen]
    a = picked[picked["true"] == "a"]
    assert len(a) == 2 and set(a["predicted"]) == {"a", "b"}  # one right, one wrong
    assert (picked[picked["true"] == "b"]["predicted"] == "b").all() and len(picked[picked["true"] == "b"]) == 2
    assert picked[picked["true"] == "c"].index.tolist() == [6]  # only one image of c exists
    assert np.array_equal(chosen, select_images(p, ["a", "b", "c"], per_class=2, seed=0))


def test_selection_of_nothing_is_an_error():
    with pytest.raises(LayerscopeError, match="no test predictions"):
        select_images(predictions(), ["x"], per_class=2, seed=0)


def test_pairwise_correlations_known_answers():
    a = np.arange(12.0).reshape(2, 2, 3)
    np.testing.assert_allclose(pairwise_correlations([a, a, a]), [1, 1, 1])
    np.testing.assert_allclose(pairwise_correlations([a, -a, 2 * a + 5]), [-1, 1, -1])
    r = pairwise_correlations([a, np.ones_like(a), a])  # a constant map has no correlation
    np.testing.assert_allclose(r, [1])
    b = np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(pairwise_correlations([b, np.array([1.0, 0.0, 1.0, 0.0])]), [0.0], atol=1e-12)
    with pytest.raises(LayerscopeError, match="at least 2"):
        pairwise_correlations([a])


def verdict_table(means, sds=(0.05, 0.05, 0.05)):
    return pd.DataFrame(
        {
            "layer": ["c1", "c2", "c3"],
            "depth": [1, 2, 3],
            "mean": means,
            "sd": sds,
            "images": 4,
            "start_images_mean": 0.5,
        }
    )


def test_invariance_verdict_says_which_way_the_correlation_goes():
    holds = invariance_verdict(verdict_table([0.2, 0.5, 0.9]))
    assert "holds here" in holds and "0.20 (sd 0.05)" in holds and "at c3" in holds
    assert "is reversed here" in invariance_verdict(verdict_table([0.99, 0.5, 0.1]))
    assert "is not clear here" in invariance_verdict(verdict_table([0.5, 0.9, 0.5]))
    assert "within the spread" in invariance_verdict(verdict_table([0.5, 0.5, 0.6], (0.2, 0.2, 0.2)))


def tiny_conv_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="c3")(x)
    x = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    rng = np.random.default_rng(0)
    for name in ("c1", "c2", "c3"):
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(size=layer.kernel.shape).astype(np.float32), np.full(2, 0.1, np.float32)])
    return model


CFG = {"steps": 3, "alpha": 1.0, "layers": None, "channels": None, "count": 2, "max_correlation": 0.5, "images": 2}


def test_invariance_of_identical_images_is_one_and_of_a_negated_pair_minus_one():
    model = tiny_conv_model()
    image = np.random.default_rng(1).uniform(0, 255, (8, 8, 1)).astype(np.float32)
    table, optimised, verdict = invariance_study(model, np.stack([image] * 3), CFG)
    assert table["layer"].tolist() == ["c1", "c2", "c3"] and table["depth"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(table["mean"], 1.0)
    np.testing.assert_allclose(table["sd"], 0.0, atol=1e-12)
    assert table["n_pairs"].tolist() == [3, 3, 3] and table["images"].tolist() == [3, 3, 3]
    np.testing.assert_allclose(table["start_images_mean"], 1.0)
    assert optimised["c2"].shape == (3, 8, 8, 1) and not np.allclose(optimised["c2"][0], image[..., 0:1])
    assert "is not clear here" in verdict  # flat at 1: no direction
    # The first layer is linear: two images mirrored around 127.5 get the same change,
    # so their x* stay mirrored: correlation -1.
    pair = np.stack([image, 255 - image])
    table, _, _ = invariance_study(model, pair, CFG, layers=["c1"])
    np.testing.assert_allclose(table["change_mean"], 1.0)
    np.testing.assert_allclose(table["start_images_mean"], -1.0)


def test_feature_map_study_ascends_every_stage_from_images_of_both_classes():
    model = tiny_conv_model()
    images = np.random.default_rng(2).uniform(0, 255, (5, 8, 8, 1)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1])
    np.testing.assert_array_equal(spread_over_classes(labels, 2), [0, 3])
    np.testing.assert_array_equal(spread_over_classes(labels, 4), [0, 3, 1, 4])
    np.testing.assert_array_equal(spread_over_classes(labels, 9), [0, 3, 1, 4, 2])
    stages, table = feature_map_study(model, images, labels, CFG)
    assert list(stages) == ["first", "middle", "last"] and stages["middle"]["layer"] == "c2"
    assert stages["last"]["optimised"].shape == (2, 2, 8, 8, 1)  # channels, images
    np.testing.assert_array_equal(stages["first"]["start"], images[[0, 3]])
    assert len(table) == 3 * 2 * 2
    assert (table["objective_end"] > table["objective_start"]).all()
    # 3 steps of 1 grey level (RMS) each move the image by at most 3 on average.
    assert table["mean_abs_change"].between(0.5, 3.0).all()


def test_write_feature_maps_writes_every_output_of_the_rule(tmp_path):
    model = tiny_conv_model()
    images = np.random.default_rng(3).uniform(0, 255, (6, 8, 8, 1)).astype(np.float32)
    labels = np.array([0, 1, 1, 1, 0, 1])
    files = FeatureMapFiles(
        *(
            tmp_path / name
            for name in (
                "maps.npz",
                "gains.csv",
                "channels.csv",
                "maps.png",
                "invariance.csv",
                "invariance.md",
                "invariance.png",
            )
        )
    )
    record = write_feature_maps(
        model, images, labels, ["good", "cracked"], {**CFG, "invariance_images": 3}, "tiny", files
    )
    verdict = record["invariance_verdict"]
    with np.load(files.maps) as saved:
        assert saved["last/optimised"].shape == (2, 2, 8, 8, 1)
    assert len(pd.read_csv(files.gains)) == 3 * 2 * 2
    table = pd.read_csv(files.invariance_table)
    # Invariance is read on the most frequent class (label 1: 4 images, 3 used).
    assert set(table["class"]) == {"cracked"} and table["images"].tolist() == [3, 3, 3]
    assert files.verdict.read_text() == verdict + "\n"
    assert all(path.stat().st_size > 0 for path in (files.figure, files.invariance))
    # How each stage's channels were chosen, in the table and the provenance record alike.
    channels = pd.read_csv(files.channels)
    assert channels["stage"].tolist() == ["first", "middle", "last"] and (channels["rule"] == "distinct").all()
    # Grey input: the linear first layer's flat change has no colour direction to compare.
    assert channels["change_measure"].tolist()[0].startswith("none") and channels["change_corr_mean"].isna()[0]
    assert (channels["change_measure"].iloc[1:] == "Pearson of x* - x").all()
    last = record["channels"]["last"]
    assert (last["layer"], last["rule"], last["max_correlation"]) == ("c3", "distinct", 0.5)
    assert channels["channels"].iloc[-1] == " ".join(map(str, last["channels"]))
    assert len(last["profile_correlations"]) == 2 and len(last["random_channels"]) == 2


def test_flat_explanation_panels_say_why_they_are_flat(monkeypatch, tmp_path):
    """A LIME side with no segment, and a Grad-CAM map that ReLU cut to zero, are labelled, not left blank."""
    from layerscope.explain import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig))
    rng = np.random.default_rng(0)
    positive = rng.random((2, 1, 8, 8))
    negative = -rng.random((2, 1, 8, 8))
    negative[1] = 0.0  # image 1: no segment counts against its label
    block = rng.random((2, 8, 8))
    block[0] = 0.0  # image 0: Grad-CAM all zero
    maps = {
        "predicted": np.array([0, 1]),
        "lime_labels": np.array([[0], [1]]),
        "lime_positive": positive,
        "lime_negative": negative,
        "gradcam/block4_conv3": block,
    }
    figures.plot_explanations(
        rng.integers(0, 255, (2, 8, 8, 3)), maps, [0, 1], ["ok", "bad"], "run", tmp_path / "e.png"
    )
    notes = [[text.get_text() for text in ax.texts] for ax in drawn[0].axes]
    assert notes == [[], [], [], ["all zero\nafter ReLU"], [], [], ["no segment\nagainst bad"], []]
    assert figures.flat_panel_note(np.zeros((3, 3)), "x") == "x" and figures.flat_panel_note(np.eye(3), "x") is None
