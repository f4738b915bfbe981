"""Onset and invariance on hand-made maps whose correlations are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.errors import LayerscopeError
from layerscope.explain import feature_onset, mean_pairwise_correlation, pearson

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
