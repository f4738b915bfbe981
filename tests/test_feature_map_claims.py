"""Study B's claims read from hand-written feature-map tables: verdicts and numbers known by construction."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.explain.feature_map_claims import (
    StudyBFiles,
    invariance_claim,
    onset_claim,
    own_feature_claim,
    study_b_claims,
)
from layerscope.results.claims import paper_comparison

COLOUR = "cosine of mean colour change (linear first layer: its change is spatially flat)"


def write(tmp_path, run: str, name: str, rows: list[dict]):
    path = tmp_path / run / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def channels_table(tmp_path, run: str, chosen: list[float], random: list[float]):
    rows = [
        {
            "stage": stage,
            "change_measure": COLOUR if stage == "first" else "Pearson of x* - x",
            "change_corr_mean": c,
            "random_change_corr_mean": r,
        }
        for stage, c, r in zip(("first", "middle", "last"), chosen, random, strict=True)
    ]
    return write(tmp_path, run, "feature_map_channels.csv", rows)


def test_own_feature_holds_only_when_shown_and_random_channels_differ(tmp_path):
    a = channels_table(tmp_path, "vgg16-a", [-0.10, 0.20, 0.30], [0.05, 0.10, 0.15])
    claim = own_feature_claim([a])
    assert claim["verdict"] == "holds" and math.isnan(claim["p_value"])
    assert claim["ours"] == (
        "shown vs random channels, mean pairwise similarity of x* - x: "
        "vgg16-a: first -0.10 vs 0.05 (colour cos), middle 0.20 vs 0.10, last 0.30 vs 0.15"
    )
    # Shown channels alike (0.92, the old strongest-first figure) while the layer's differ: not shown.
    b = channels_table(tmp_path, "vgg16-b", [-0.10, 0.20, 0.92], [0.05, 0.10, 0.15])
    assert own_feature_claim([b])["verdict"] == "not shown"
    assert own_feature_claim([a, b])["verdict"] == "not shown"
    # Random channels alike at every stage: the layer's channels share one feature.
    c = channels_table(tmp_path, "vgg16-c", [0.60, 0.70, 0.10], [0.50, 0.80, 0.90])
    assert own_feature_claim([c])["verdict"] == "opposite"
    # A stage without a measure (one colour) is named and left out of the verdict.
    d = channels_table(tmp_path, "lenet5-d", [math.nan, 0.20, 0.30], [math.nan, 0.10, 0.10])
    d_claim = own_feature_claim([d])
    assert d_claim["verdict"] == "holds" and f"first not measured ({COLOUR})" in d_claim["ours"]
    assert own_feature_claim([])["verdict"] == "not measured"


def invariance_table(tmp_path, run: str, means: list[float]):
    rows = [
        {"layer": f"c{depth}", "depth": depth, "mean": mean, "change_mean": 1.0 if depth == 1 else 0.25}
        for depth, mean in enumerate(means, start=1)
    ]
    return write(tmp_path, run, "invariance.csv", rows)


def test_invariance_direction_per_run_and_over_runs(tmp_path):
    rises = invariance_table(tmp_path, "run-a", [0.2, 0.5, 0.9])
    falls = invariance_table(tmp_path, "run-b", [0.95, 0.6, 0.4])
    claim = invariance_claim([rises])
    assert claim["verdict"] == "holds"
    assert claim["ours"] == "run-a: x* correlate 0.20 at c1 and 0.90 at c3 (rho 1.00); x* - x 1.00 and 0.25"
    reversed_claim = invariance_claim([falls])
    assert reversed_claim["verdict"] == "opposite" and "(rho -1.00)" in reversed_claim["ours"]
    assert "same change to every image" in reversed_claim["test"]  # the direction is explained
    assert invariance_claim([rises, falls])["verdict"] == "not shown"
    assert invariance_claim([invariance_table(tmp_path, "run-c", [0.5, 0.9, 0.5])])["verdict"] == "not shown"


def onset_table(tmp_path, run: str, medians: list[float]):
    rows = [
        {"stage": stage, "depth": depth, "onset_median": median, "last_step": 300}
        for depth, (stage, median) in enumerate(zip(("first", "middle", "last"), medians, strict=True), start=1)
    ]
    return write(tmp_path, run, "onset.csv", rows)


@pytest.mark.parametrize(
    ("medians", "verdict", "text"),
    [
        ([10, 40, 200], "holds", "first 10, middle 40, last 200"),
        ([10, 10, math.nan], "holds", "first 10, middle 10, last never"),  # never settled: latest
        ([200, 40, 10], "opposite", "first 200, middle 40, last 10"),
        ([10, 200, 40], "not shown", "first 10, middle 200, last 40"),
        ([20, 20, 20], "not shown", "first 20, middle 20, last 20"),
        ([math.nan, math.nan, math.nan], "not shown", "first never, middle never, last never"),
    ],
)
def test_onset_order_by_depth(tmp_path, medians, verdict, text):
    claim = onset_claim([onset_table(tmp_path, "lenet5-relu-adam", medians)])
    assert claim["verdict"] == verdict
    assert claim["ours"] == f"lenet5-relu-adam: median onset {text} (last step 300)"


def test_study_b_rows_join_the_claims_table(tmp_path):
    files = StudyBFiles(
        channels=[channels_table(tmp_path, "vgg16-finetune", [0.0, 0.1, 0.2], [0.0, 0.1, 0.1])],
        invariance=[invariance_table(tmp_path, "vgg16-finetune", [0.9, 0.5, 0.3])],
        onset=[onset_table(tmp_path, "lenet5-relu-adam", [10, 40, 200])],
    )
    assert [c["verdict"] for c in study_b_claims(files)] == ["holds", "opposite", "holds"]
    assert [c["verdict"] for c in study_b_claims(None)] == ["not measured"] * 3
    table = paper_comparison({"vgg16-finetune": None}, study_b=files)
    assert table.loc["Study B: features appear later in deeper stages", "verdict"] == "holds"
    assert table.loc["Study B: each channel shows its own feature", "verdict"] == "holds"
    row = table.loc["Study B: last-stage maps are more alike across images than first-stage maps"]
    assert row["verdict"] == "opposite" and row["paper"].startswith("the same object in different images")


def test_a_table_without_its_columns_is_named(tmp_path):
    path = write(tmp_path, "run-a", "onset.csv", [{"stage": "first"}])
    with pytest.raises(LayerscopeError, match=r"run-a/onset.csv: lacks column\(s\) depth, onset_median, last_step"):
        onset_claim([path])
