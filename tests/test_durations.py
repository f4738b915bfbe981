"""Lengths of time in words, at the edges where the wording changes."""

import pytest

from layerscope.core.durations import hours_minutes, rough


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.4, "0 s"), (89, "89 s"), (90, "2 min"), (5369, "89 min"), (5370, "1.5 h"), (6 * 3600, "6.0 h")],
)
def test_rough(seconds, expected):
    assert rough(seconds) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(29, "0 min"), (31, "1 min"), (3569, "59 min"), (3570, "1 h 0 min"), (10080, "2 h 48 min")],
)
def test_hours_minutes(seconds, expected):
    assert hours_minutes(seconds) == expected
