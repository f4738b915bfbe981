"""LIME's stability and agreement (explain/lime_checks.py) and the claim rows built on them (results/lime_claims.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.cells import REGION, SIZE, STRIPES, cell, darkness_model

from layerscope.core.errors import LayerscopeError
from layerscope.explain.fills import ChosenFill
from layerscope.explain.lime_checks import (
    COLUMNS,
    MEASURES,
    check_lime,
    gradcam_layer,
    superpixel_means,
    write_lime_checks,
)
from layerscope.explain.lime_method import LIME
from layerscope.results.comparisons import claims_table
from layerscope.results.lime_claims import STABLE_RHO, lime_claims, read_lime_checks

LIME_SETTINGS = {"num_samples": 150, "top_labels": 2, "batch_size": 64, "n_segments": 16, "compactness": 10.0}


def test_superpixel_means_by_hand():
    maps = np.array([[[1.0, 3.0], [5.0, 7.0]]])
    segments = np.array([[[4, 9], [4, 4]]])  # labels need not start at 0
    (means,) = superpixel_means(maps, segments)
    np.testing.assert_allclose(means, [(1 + 5 + 7) / 3, 3.0])


def test_gradcam_layer_is_block3_else_the_deepest_drawn():
    assert gradcam_layer({"gradcam/block3_conv3": 0, "gradcam/block5_conv3": 0, "cam": 0}) == "block3_conv3"
    assert gradcam_layer({"gradcam/c3": 0, "gradcam/c5": 0}) == "c5"


def test_one_seed_twice_is_perfectly_stable_and_agrees_with_its_own_map():
    model, images = darkness_model(), np.stack([cell(4, True), cell(5, True)])
    targets = np.array([1, 1])
    own = LIME(model, seed=3, hide="mean", progress=False, **LIME_SETTINGS).explain(images, targets)
    frame = check_lime(model, images, targets, {"cam": None, "gradcam": own}, "mean", LIME_SETTINGS, [3, 3])
    np.testing.assert_allclose(frame["stability"], 1.0)
    np.testing.assert_allclose(frame["lime_gradcam"], 1.0)
    assert frame["lime_cam"].isna().all() and frame["gradcam_cam"].isna().all()
    assert (frame["fill"] == "mean").all()


def fake_maps(images: np.ndarray, fill: str) -> dict[str, np.ndarray]:
    """What the explain rule writes for the darkness model (seed 0): 4 images, stripes as Grad-CAM and CAM."""
    n = len(images)
    stripes = np.zeros((n, SIZE, SIZE), np.float32)
    stripes[:, REGION[0], REGION[1]] = STRIPES
    evidence = LIME(darkness_model(), seed=0, hide=fill, progress=False, **LIME_SETTINGS).evidence(images)
    return {
        "indices": np.arange(n),
        "true": np.array([0, 1, 0, 1]),
        "predicted": evidence["labels"][:, 0],
        "lime_labels": evidence["labels"],
        "lime_positive": evidence["positive"],
        "lime_negative": evidence["negative"],
        "lime_hide": np.array(fill),
        "gradcam/block3_conv3": stripes,
        "gradcam/block5_conv3": np.zeros_like(stripes),
        "cam": stripes,
        "cam_predicted": np.ones(n, np.int64),
    }


def test_the_explain_rules_maps_stand_in_for_the_first_seed():
    """evidence() (the explain rule's, top labels) and explain() of the predicted class: one fit, same weights."""
    model, images = darkness_model(), np.stack([cell(4, True), cell(1, False)])
    maps = fake_maps(images, "blur")
    given = maps["lime_positive"][:, 0] + maps["lime_negative"][:, 0]
    references = {"cam": maps["cam"], "gradcam": None}
    args = (model, images, maps["predicted"], references, "blur", LIME_SETTINGS, [0, 1])
    pd.testing.assert_frame_equal(check_lime(*args, given=given), check_lime(*args), atol=1e-6)


def test_written_table_has_a_row_per_image_and_fill(tmp_path):
    images = np.stack([cell(s, True) for s in range(4, 8)])
    maps = fake_maps(images, "segment_mean")
    table = write_lime_checks(
        darkness_model(),
        images,
        maps,
        {"images": 2, "seeds": 2},
        {**LIME_SETTINGS, "hide": "auto"},
        ChosenFill("segment_mean", "measured"),
        0,
        "toy",
        tmp_path / "lime_checks.csv",
        tmp_path / "lime_checks.md",
    )
    assert list(table.columns) == COLUMNS + MEASURES
    assert table["fill"].tolist() == ["black", "black", "segment_mean", "segment_mean"]
    assert table["image"].tolist() == [0, 1, 0, 1]  # classes spread: one image of each
    assert (table["layer"] == "block3_conv3").all() and (table["seeds"] == 2).all()
    np.testing.assert_allclose(table["gradcam_cam"], 1.0)  # the same stripes map twice
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "lime_checks.csv"), table, check_dtype=False)
    text = (tmp_path / "lime_checks.md").read_text()
    assert "| LIME vs Grad-CAM (block3_conv3) |" in text and "superpixel mean (measured)" in text
    with pytest.raises(LayerscopeError, match="made with the segment_mean fill, but explain.lime.hide gives blur"):
        write_lime_checks(
            darkness_model(), images, maps, {"images": 2, "seeds": 2}, LIME_SETTINGS, ChosenFill("blur", "measured"),
            0, "toy", tmp_path / "a.csv", tmp_path / "a.md",
        )  # fmt: skip


def checks(stability_black, stability_new, lime_cam, gradcam_cam=0.6) -> pd.DataFrame:
    """A stacked lime_checks table of two runs, two images each, black and the run's chosen fill."""
    rows = []
    for old, stability in ((True, stability_black), (False, stability_new)):
        for k, value in enumerate(stability):
            rows.append(
                {
                    "run": f"run{k // 2}",
                    "image": k % 2,
                    "fill": "black" if old else ("segment_mean", "inpaint")[k // 2],
                    "seeds": 3,
                    "samples": 500,
                    "layer": "block3_conv3",
                    "stability": value,
                    "lime_cam": lime_cam[k] if old else lime_cam[k] + 0.1,
                    "lime_gradcam": 0.2,
                    "gradcam_cam": gradcam_cam,
                }
            )
    return pd.DataFrame(rows)


def test_claims_test_each_judgement_per_fill():
    table = checks([0.2, 0.3, 0.25, 0.35], [0.8, 0.95, 0.85, 0.9], lime_cam=[0.0, 0.1, 0.05, 0.15])
    claims = claims_table(lime_claims(table))
    assert len(claims) == 4
    stability_black, agreement_black, stability_new, agreement_new = claims.index
    assert "black fill" in stability_black
    assert "the fill measured per run: superpixel mean (run0), biharmonic inpainting (run1)" in stability_new
    row = claims.loc[stability_black]
    # mean 0.275, sd 0.0645 over 4 images: t = (0.275 - 0.7) / (0.0645 / 2) = -13.2, 3 df
    assert row["verdict"] == "holds" and row["p_value"] == pytest.approx(0.00094, rel=0.05)
    assert row["ours"].startswith("Spearman between seeds 0.28 [0.17, 0.38] over 4 images of 2 runs, 3 seeds of 500")
    new = claims.loc[stability_new]
    assert new["verdict"] == "opposite"  # 0.875, significantly above 0.7: stable with this fill
    assert "minus black 0.60 [0.54, 0.66] (paired p = 8.6e-05)" in new["ours"]  # gains 0.6, 0.65, 0.6, 0.55: t = 29.4
    # Grad-CAM agrees with CAM at 0.6, LIME at 0.075 (black) and 0.175: LIME is the odd one out
    agreement = claims.loc[agreement_black]
    assert agreement["verdict"] == "holds" and "Grad-CAM minus LIME 0.52 [0.42, 0.63]" in agreement["ours"]
    assert "LIME vs Grad-CAM (block3_conv3) 0.20" in agreement["ours"]
    assert claims.loc[agreement_new, "verdict"] == "holds"
    assert all(f"{STABLE_RHO}" in claim for claim in (stability_black, stability_new))


def test_claims_without_checks_or_cam_say_not_measured(tmp_path):
    assert lime_claims(None) == []
    no_cam = checks([0.2, 0.3, 0.25, 0.35], [0.5] * 4, lime_cam=[np.nan] * 4, gradcam_cam=np.nan)
    claims = claims_table(lime_claims(no_cam))
    agreement = [claim for claim in claims.index if "inspectors" in claim]
    assert (claims.loc[agreement, "verdict"] == "not measured").all()
    assert all("LIME vs CAM not measured" in text for text in claims.loc[agreement, "ours"])
    no_cam.to_csv(tmp_path / "a.csv", index=False)
    assert len(read_lime_checks([tmp_path / "a.csv", tmp_path / "a.csv"])) == 2 * len(no_cam)
    assert read_lime_checks([]) is None
    (tmp_path / "bad.csv").write_bytes(b"")
    with pytest.raises(LayerscopeError, match=r"bad.csv: unreadable LIME checks"):
        read_lime_checks([tmp_path / "bad.csv"])
