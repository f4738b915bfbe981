"""The freeze-depth recommendation against hand-computed answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.core.render import write_table
from layerscope.explain.map_shape import map_shape_table
from layerscope.results.freeze_signals import depth_by_movement
from layerscope.results.recommendation import (
    block_faithfulness,
    block_movement,
    recommend,
    write_recommendation,
)

LAYERS = {1: "block1_conv2", 2: "block2_conv2", 3: "block3_conv3", 4: "block4_conv3", 5: "block5_conv3"}


def quality_rows(scores: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Grad-CAM rows whose insertion minus deletion AUC is ``scores[run][block]``, plus a
    LIME row that must be ignored."""
    rows = []
    for run, by_block in scores.items():
        for block, score in by_block.items():
            rows.append((run, "gradcam", LAYERS[block], "deletion_auc", 0.3))
            rows.append((run, "gradcam", LAYERS[block], "insertion_auc", 0.3 + score))
        rows.append((run, "lime", None, "insertion_auc", 9.0))
    return pd.DataFrame(rows, columns=["run", "method", "layer", "metric", "value"])


def fake_run(run_id: str, val: float, correct: int, n: int = 40) -> dict:
    """A finished run whose first ``correct`` of ``n`` test images are right."""
    truth = ["a" if i % 2 else "b" for i in range(n)]
    predicted = [t if i < correct else ("b" if t == "a" else "a") for i, t in enumerate(truth)]
    accuracy = correct / n
    return {
        "run_id": run_id,
        "val": {"accuracy": val},
        "test": {"accuracy": accuracy, "accuracy_ci": [accuracy - 0.1, accuracy + 0.1]},
        "test_predictions": pd.DataFrame(
            {"path": [f"{i}.png" for i in range(n)], "true": truth, "predicted": predicted}
        ),
    }


def sweep(correct: dict[int, int], replicated: bool = True) -> dict:
    """Two optimizers per depth; momentum wins on validation and carries ``correct``.

    With ``replicated``, the deepest SGD cell has two more seeds, all right on every image:
    a seed variance measured, and 0, so the tests are the image bootstrap's.
    """
    runs = {}
    for k, right in correct.items():
        runs[f"vgg16-freeze{k}-momentum"] = fake_run(f"vgg16-freeze{k}-momentum", 0.8, right)
        runs[f"vgg16-freeze{k}-sgd"] = fake_run(f"vgg16-freeze{k}-sgd", 0.5, 40)  # best on test, not on val
    if replicated:
        deepest = f"vgg16-freeze{max(correct)}-sgd"
        runs.update({f"{deepest}-seed{s}": fake_run(f"{deepest}-seed{s}", 0.5, 40) for s in (43, 44)})
    return runs


def test_faithfulness_is_the_mean_over_runs_of_insertion_minus_deletion():
    table = block_faithfulness(quality_rows({"t": {3: 0.2, 4: 0.1}, "f": {3: 0.4, 4: 0.3}}))
    assert table["block"].tolist() == [3, 4] and table["layer"].tolist() == ["block3_conv3", "block4_conv3"]
    np.testing.assert_allclose(table["faithfulness"], [0.3, 0.2])
    np.testing.assert_allclose(table["faithfulness_sd"], [math.sqrt(0.02)] * 2)
    with pytest.raises(LayerscopeError, match="no Grad-CAM"):
        block_faithfulness(quality_rows({"t": {}}))


def test_movement_freezes_the_leading_blocks_below_the_median():
    assert depth_by_movement({1: 0.01, 2: 0.02, 3: 0.03, 4: 0.5, 5: 0.8}) == 3
    assert depth_by_movement({1: 0.9, 2: 0.01, 3: 0.02, 4: 0.5, 5: 0.8}) == 1  # block 1 moved most: freeze one anyway
    summary = pd.DataFrame(
        {"reading": [0, 1, 1, 1], "block": ["block1", "block1", "block2", "head"], "net_rel": [9.0, 0.1, 0.2, 5.0]}
    )
    assert block_movement(summary) == {1: 0.1, 2: 0.2}  # last reading, conv blocks only


def test_recommendation_that_is_the_best_depth():
    faith = {"t": {1: 0.1, 2: 0.2, 3: 0.5, 4: 0.3, 5: 0.0}}
    table, verdict = recommend(quality_rows(faith), None, sweep({3: 30, 4: 25, 5: 20}))
    assert table["frozen_blocks"].tolist() == [1, 2, 3, 4, 5]
    assert table["rank_faithfulness"].tolist() == [4.0, 3.0, 1.0, 2.0, 5.0]
    assert table["rank_weight_change"].isna().all() and table["mean_rank"].tolist() == [4.0, 3.0, 1.0, 2.0, 5.0]
    assert table["run"].tolist()[2:] == ["vgg16-freeze3-momentum", "vgg16-freeze4-momentum", "vgg16-freeze5-momentum"]
    np.testing.assert_allclose(table["test_accuracy"].iloc[2:], [0.75, 0.625, 0.5])
    assert verdict["recommended"] == 3 and verdict["best"] == 3 and verdict["n"] == 3
    assert verdict["rho"] == pytest.approx(1.0)  # faithfulness 3 > 4 > 5, accuracy too
    assert "which is the depth the sweep found best" in verdict["sentence"]


def test_recommendation_tied_or_worse_is_said_with_its_test():
    faith = {"t": {3: 0.3, 4: 0.5, 5: 0.0}}
    moved = {1: 0.01, 2: 0.02, 3: 0.03, 4: 0.04, 5: 0.9}  # median 0.03: freeze 1-3
    table, verdict = recommend(quality_rows(faith), moved, sweep({3: 30, 4: 29, 5: 20}))
    # over the blocks with Grad-CAM (3-5): faithfulness ranks 4, 3, 5; movement |k - 3| ranks 3, 4, 5
    ranks = table.set_index("frozen_blocks").loc[3:5]
    assert ranks["rank_faithfulness"].tolist() == [2.0, 1.0, 3.0] and ranks["rank_weight_change"].tolist() == [1, 2, 3]
    assert ranks["mean_rank"].tolist() == [1.5, 1.5, 3.0]
    assert table["finetune_change_pct"].tolist() == pytest.approx([100 * v for v in moved.values()])
    # the tie goes to the more faithful block; 30 vs 29 right, one image apart: a resample
    # misses that image with probability (1 - 1/n)^n, about 0.37, so p is about 0.74
    assert verdict["recommended"] == 4 and verdict["best"] == 3 and verdict["p_value"] == pytest.approx(0.74, abs=0.06)
    assert "statistically tied with the sweep's best depth, 3 blocks (p = 0.7" in verdict["sentence"]
    assert "bootstrap over test images plus pooled seed variance" in verdict["sentence"]
    assert "weight change during fine-tuning" in verdict["sentence"]
    _, verdict = recommend(quality_rows(faith), None, sweep({3: 38, 4: 20, 5: 10}))
    assert (
        verdict["recommended"] == 4
        and verdict["p_value"] < 0.05
        and "worse than the sweep's best" in verdict["sentence"]
    )
    # no cell trained twice: nothing measures how far retraining moves a depth, so no verdict
    _, verdict = recommend(quality_rows(faith), None, sweep({3: 38, 4: 20, 5: 10}, replicated=False))
    assert math.isnan(verdict["p_value"])
    assert "untested against the sweep's best depth, 3 blocks (no cell has two finished seeds" in verdict["sentence"]


def test_write_recommendation_writes_tables_verdict_and_figure(tmp_path):
    quality = tmp_path / "quality.csv"
    quality_rows({"t": {1: 0.1, 2: 0.2, 3: 0.5, 4: 0.3, 5: 0.0}}).to_csv(quality, index=False)
    stem = tmp_path / "tables" / "freeze_recommendation"
    figure = tmp_path / "freeze_recommendation.png"
    shape = map_shape_table({"one seed": {"block3_conv3": np.eye(4)[None], "block5_conv3": np.ones((1, 4, 4))}})
    write_table(
        shape.set_index("block"), tmp_path / "explain" / "vgg16-freeze3-momentum" / "map_shape"
    )  # NaN stability
    verdict = write_recommendation(
        [quality],
        {},
        sweep({3: 30, 5: 20}),
        stem,
        figure,
        map_shape_files=[tmp_path / "explain" / "vgg16-freeze3-momentum" / "map_shape.csv"],
    )
    assert verdict["map_shape"]["vgg16-freeze3-momentum"].startswith("'Block 3 is sharpest' holds")
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["recommended"] == verdict["recommended"] == 3 and saved["rho"] == pytest.approx(1.0)
    markdown = stem.with_suffix(".md").read_text()
    assert verdict["signals"] in markdown and verdict["signals"] in verdict["sentence"]
    ranking = pd.read_csv(stem.with_suffix(".csv"), na_values="missing")
    assert ranking["kind"].tolist().count("baseline") == 3 and "Grad-CAM faithfulness at block k" in set(
        ranking["signal"]
    )
    blocks = Path(f"{stem}_blocks")
    assert verdict["sentence"] in blocks.with_suffix(".md").read_text()
    table = pd.read_csv(blocks.with_suffix(".csv"), na_values="missing")
    assert table["frozen_blocks"].tolist() == [1, 2, 3, 4, 5] and table["test_accuracy"].isna().tolist() == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert figure.stat().st_size > 10_000


def test_probe_and_gradient_norm_signals_join_the_block_table():
    rgn = {1: 0.01, 2: 0.02, 3: 0.03, 4: 0.5, 5: 0.9}  # median 0.03: blocks 1-3 would change least
    probes = {1: 0.60, 2: 0.65, 3: 0.70, 4: 0.72, 5: 0.71}
    table, _ = recommend(quality_rows({"t": {3: 0.3, 4: 0.5, 5: 0.0}}), None, sweep({3: 30, 4: 29}), probes, rgn)
    rows = table.set_index("frozen_blocks")
    assert rows["probe_val_accuracy"].tolist() == list(probes.values()) and rows["rgn"].tolist() == list(rgn.values())
    # ranked by distance from depth 3: |k - 3| = 2, 1, 0, 1, 2
    assert rows["rank_rgn"].tolist() == [4.5, 2.5, 1.0, 2.5, 4.5]
    assert rows["mean_rank"].notna().sum() == 3  # the recommendation still reads faithfulness (and movement) only
