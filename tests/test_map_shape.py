"""Map concentration, stability and mirroring against hand-computed values."""

import numpy as np
import pytest

from layerscope.explain.map_shape import gini, map_shape_table, mirroring, sharpest_sentence, stability, top_share


def test_gini_by_hand():
    assert gini(np.ones((4, 4))) == pytest.approx(0.0)
    # one pixel of n holds everything: (n - 1) / n
    assert gini(np.array([[0, 0], [0, 5.0]])) == pytest.approx(0.75)
    # sorted [1, 3]: (2*1 - 3) * 1 + (2*2 - 3) * 3 = 2, over n * total = 8
    assert gini(np.array([3.0, 1.0])) == pytest.approx(0.25)
    assert gini(np.zeros(5)) == 0.0 and gini(-np.ones(3)) == 0.0  # nothing positive: flat


def test_top_share_by_hand():
    assert top_share(np.ones(10)) == pytest.approx(0.1)
    assert top_share(np.eye(1, 10).ravel()) == pytest.approx(1.0)
    assert top_share(np.arange(20.0)) == pytest.approx((19 + 18) / 190)


def test_stability_is_one_for_equal_maps_and_minus_one_for_reversed_ranks():
    maps = np.arange(8.0).reshape(2, 2, 2)
    assert stability(maps, maps * 3 + 1) == pytest.approx(1.0)
    assert stability(maps, -maps) == pytest.approx(-1.0)
    assert np.isnan(stability(np.ones((1, 2, 2)), maps[:1]))


def test_table_and_sentence():
    rng = np.random.default_rng(0)
    sharp = np.zeros((3, 8, 8))
    sharp[:, 2, 3] = 1.0  # block 3: all mass on one pixel, the same for both seeds
    flat = rng.random((3, 8, 8)) + 1.0
    maps = {
        "s42": {"block3_conv3": sharp, "block5_conv3": flat},
        "s43": {"block3_conv3": sharp + 1e-9 * rng.random((3, 8, 8)), "block5_conv3": rng.random((3, 8, 8)) + 1.0},
    }
    table = map_shape_table(maps).set_index("block")
    assert table.loc[3, "gini"] == pytest.approx(63 / 64, abs=1e-6) and table.loc[3, "top10_share"] > 0.99
    assert table.loc[5, "gini"] < 0.2 and abs(table.loc[5, "stability"]) < 0.4  # independent noise
    assert (table.loc[3, "seeds"], table.loc[3, "images"]) == (2, 3)
    sentence = sharpest_sentence(table.reset_index())
    assert sentence.startswith("'Block 3 is sharpest' holds: Gini index of the Grad-CAM maps, block 3 0.98")
    one_seed = map_shape_table({"s42": maps["s42"]})
    assert one_seed["stability"].isna().all()
    assert "does not hold (block 5 is)" in sharpest_sentence(
        map_shape_table({"a": {"block3_conv3": flat, "block5_conv3": sharp}})
    )


def test_mirroring_is_one_for_maps_that_follow_the_image_and_minus_one_for_a_fixed_ramp():
    maps = np.random.default_rng(1).random((3, 4, 6))
    assert mirroring(maps, maps[:, :, ::-1]) == pytest.approx(1.0)  # each map moves with its image
    ramp = np.broadcast_to(np.arange(6.0), (3, 4, 6))  # hot on the right whatever the image
    assert mirroring(ramp, ramp) == pytest.approx(-1.0)
    both = map_shape_table({"a": {"block5_conv3": ramp}}, {"a": {"block5_conv3": ramp}})
    assert both["mirroring"].tolist() == pytest.approx([-1.0])
    # Gini of 0..5 alike: mean |i - j| over 36 pairs (70 / 36) over twice the mean (5): 0.389
    assert "block 5 0.389 (mirroring -1.00)" in sharpest_sentence(both, study_block=5)
    assert map_shape_table({"a": {"block5_conv3": ramp}})["mirroring"].isna().all()  # not measured
