"""Perturbation fills: hand-worked fill images, the choice rule, and a model whose evidence is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.cells import REGION, SIZE, STRIPES, cell, darkness_model
from PIL import Image
from scipy import ndimage

from layerscope.core.errors import LayerscopeError
from layerscope.explain.fill_study import FillFiles, measure_fills, summarise_fills, write_fill_study
from layerscope.explain.fills import (
    FILLS,
    ChosenFill,
    choose_fill,
    fill_images,
    fill_scores,
    hide,
    read_fill_choice,
    resolve_fill,
    superpixel_mask,
    total_variation,
)
from layerscope.explain.lime_method import LIME, superpixels
from layerscope.explain.quality import deletion_insertion


def two_halves() -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 4 two-channel image, left half segment 0, right half segment 1."""
    image = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2)
    segments = np.zeros((1, 4, 4), np.int64)
    segments[:, :, 2:] = 1
    return image, segments


def test_fill_images_by_hand():
    image, segments = two_halves()
    np.testing.assert_array_equal(fill_images(image, segments, "black"), np.zeros_like(image))
    np.testing.assert_array_equal(fill_images(image, None, "zero"), np.zeros_like(image))  # the old name
    np.testing.assert_allclose(fill_images(image, None, "mean")[0, 0, 0], [15.0, 16.0])  # mean of 0..30, 1..31
    # Left half: pixels (r, c) with c in 0, 1 -> channel 0 values 8r + 2c: mean 13; right half 17.
    by_segment = fill_images(image, segments, "segment_mean")[0, ..., 0]
    np.testing.assert_allclose(by_segment[:, :2], 13.0)
    np.testing.assert_allclose(by_segment[:, 2:], 17.0)
    blurred = ndimage.gaussian_filter(image, sigma=(0, 4 / 16, 4 / 16, 0))
    np.testing.assert_allclose(fill_images(image, None, "blur"), blurred)


def test_inpainting_a_superpixel_continues_a_linear_ramp_around_it():
    """Biharmonic inpainting reproduces a linear function: an inner superpixel comes back as it was."""
    rows, cols = np.indices((16, 16))
    ramp = (4.0 * cols + 2.0 * rows + 30)[None, ..., None].astype(np.float32)
    segments = np.zeros((1, 16, 16), np.int64)
    segments[0, 6:10, 5:11] = 1  # filled from the ramp around it
    inner = fill_images(ramp, segments, "inpaint")[0, 6:10, 5:11]
    np.testing.assert_allclose(inner, ramp[0, 6:10, 5:11], atol=1e-3)


def test_bad_fills_are_named():
    image, _ = two_halves()
    with pytest.raises(LayerscopeError, match="fill must be one of"):
        fill_images(image, None, "grey")
    with pytest.raises(LayerscopeError, match="segment_mean fill needs superpixels"):
        fill_images(image, None, "segment_mean")
    with pytest.raises(LayerscopeError, match="needs the images' superpixels"):
        deletion_insertion(darkness_model(), np.zeros((1, SIZE, SIZE, 3)), np.zeros((1, 4, 4)), baseline="inpaint")


def test_hide_masks_and_distances_by_hand():
    image, segments = two_halves()
    masked = hide(image, np.full_like(image, -1), segments == 1)
    np.testing.assert_array_equal(masked[0, :, :2], image[0, :, :2])
    np.testing.assert_array_equal(masked[0, :, 2:], -1)
    np.testing.assert_allclose(total_variation(np.array([1.0, 0.0]), np.array([0.5, 0.5])), 0.5)
    np.testing.assert_allclose(total_variation(np.array([[0.2, 0.8]]), np.array([[0.2, 0.8]])), [0.0])
    grid = np.arange(8).repeat(2).reshape(4, 4)  # 8 superpixels of 2 px
    rng = np.random.default_rng(0)
    assert superpixel_mask(grid, 0.25, rng).sum() == 2 * 2  # 2 of 8 superpixels
    assert superpixel_mask(grid, 0.01, rng).sum() == 2  # at least one


def summary_of(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A summarise_fills-shaped table: (cells, fill) -> tv at shares 0.1, 0.5."""
    rows = [
        {"cells": cells, "fill": fill, "share": share, "tv": tv}
        for (cells, fill), tvs in values.items()
        for share, tv in zip((0.1, 0.5), tvs)
    ]
    return pd.DataFrame(rows)


def test_the_choice_scores_defect_free_cells_only_ties_in_fills_order():
    summary = summary_of(
        {
            ("healthy", "black"): [0.8, 1.0],
            ("healthy", "mean"): [0.1, 0.3],  # 0.2
            ("healthy", "blur"): [0.05, 0.15],  # 0.1
            ("healthy", "inpaint"): [0.0, 0.2],  # 0.1, after blur in FILLS
            ("defective", "inpaint"): [0.0, 0.0],  # moves defective cells least: not scored
            ("defective", "blur"): [0.4, 0.6],
        }
    )
    assert fill_scores(summary, "healthy").to_dict() == pytest.approx(
        {"blur": 0.1, "inpaint": 0.1, "mean": 0.2, "black": 0.9}
    )
    assert list(fill_scores(summary, "healthy").index) == ["blur", "inpaint", "mean", "black"]
    assert choose_fill(summary, "healthy") == "blur"
    with pytest.raises(LayerscopeError, match="no fill was measured on 'none' cells"):
        choose_fill(summary, "none")


def test_config_values_resolve_to_a_fill_and_where_it_came_from(tmp_path):
    assert resolve_fill("auto", "blur", "explain.lime.hide") == ChosenFill("blur", "measured")
    assert resolve_fill("zero", None, "explain.quality.baseline") == ChosenFill("black", "set in config")
    assert resolve_fill("segment_mean", "blur", "k").note == "superpixel mean (set in config)"
    with pytest.raises(LayerscopeError, match="explain.lime.hide: auto needs the perturbation_fills"):
        resolve_fill("auto", None, "explain.lime.hide")
    with pytest.raises(LayerscopeError, match="explain.quality.baseline must be one of"):
        resolve_fill("grey", None, "explain.quality.baseline")
    (tmp_path / "fills.json").write_text(json.dumps({"fill": "inpaint"}))
    assert read_fill_choice(tmp_path / "fills.json") == "inpaint"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LayerscopeError, match=r"bad.json: unreadable fill choice"):
        read_fill_choice(tmp_path / "bad.json")


def test_measured_distances_of_a_uniform_bright_cell_are_known():
    """Bright flat cells: black makes the hidden share dark (P known by hand), every other fill changes nothing."""
    model = darkness_model()
    images = np.full((2, SIZE, SIZE, 3), 200, np.uint8)
    segments = np.stack([np.arange(16).repeat(64).reshape(SIZE, SIZE)] * 2)  # 16 superpixels of 2 rows
    measured = measure_fills(model, images, segments, [0.25, 0.5], masks=2, seed=0)
    clean = measured[measured["fill"] == "none"]

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    bright, black_pixel = sigmoid(40 * (0.3 - 200 / 255)), sigmoid(40 * 0.3)  # each pixel's darkness

    def defective(share_hidden):
        return sigmoid(40 * (share_hidden * black_pixel + (1 - share_hidden) * bright) - 4)

    np.testing.assert_allclose(clean["p1"], defective(0.0), rtol=1e-4)
    black = measured[measured["fill"] == "black"].set_index("share")
    for share in (0.25, 0.5):  # 4 and 8 of the 16 superpixels: exactly that share of the pixels
        expected = defective(share) - defective(0.0)  # two classes: the distance is the shift of P(defective)
        np.testing.assert_allclose(black.loc[share, "tv"], expected, rtol=1e-4)
    others = measured[~measured["fill"].isin(["none", "black"])]
    np.testing.assert_allclose(others["tv"], 0.0, atol=1e-6)
    summary = summarise_fills(measured.assign(cells="bright"))
    assert choose_fill(summary, "bright") == "mean"  # every other fill ties at 0: FILLS order


def known_answer_study(tmp_path) -> str:
    """The fill measurement on 4 defect-free and 4 striped cells of the darkness model; its choice."""
    images = np.stack([cell(s, False) for s in range(4)] + [cell(s, True) for s in range(4, 8)])
    labels = np.array([0] * 4 + [1] * 4)
    files = FillFiles(*(tmp_path / name for name in ("fills.csv", "fills.md", "fills.png", "fills.json")))
    cfg = {"images": 4, "masks": 2, "shares": [0.1, 0.25, 0.5]}
    segmentation = {"n_segments": 16, "compactness": 10.0}
    choice = write_fill_study(darkness_model(), images, labels, ["ok", "defective"], cfg, segmentation, 0, "toy", files)
    record = json.loads(files.choice.read_text())
    assert record["fill"] == choice and record["scored_cells"] == "class ok"
    scores = record["scores"]["class ok"]
    assert max(scores, key=scores.get) == "black" and scores["black"] > 0.5  # black on a healthy cell: a defect
    # Inpainting moves the striped cells least: it pulls the neighbouring stripes into what it hides.
    assert min(record["scores"]["class defective"], key=record["scores"]["class defective"].get) == "inpaint"
    summary = pd.read_csv(files.table)
    assert set(summary["fill"]) == {"none", *FILLS} and set(summary["cells"]) == {"class ok", "class defective"}
    assert "Chosen: **image mean** (mean)" in files.summary.read_text()
    assert np.asarray(Image.open(files.figure).convert("L"), dtype=float).std() > 5
    return choice


def superpixel_weights(model, image: np.ndarray, fill: str, target: int) -> tuple[np.ndarray, np.ndarray]:
    """LIME's weight per superpixel for ``target``, and each superpixel's count of dark (stripe) pixels."""
    segments = superpixels(image, n_segments=16)
    weights = LIME(model, num_samples=300, seed=0, n_segments=16, hide=fill, progress=False).explain(
        image[None], targets=target
    )[0]
    dark = np.zeros((SIZE, SIZE), bool)
    dark[REGION] = STRIPES
    labels = np.unique(segments)
    return (
        np.array([weights[segments == s][0] for s in labels]),
        np.array([dark[segments == s].sum() for s in labels]),
    )


def test_known_answer_black_makes_every_superpixel_evidence_for_healthy_the_chosen_fill_finds_the_stripes(
    tmp_path,
):
    """The issue's known answer, on a model that scores 'defective' by its share of dark pixels.

    Black: hiding any superpixel adds dark pixels, so every superpixel, the stripes' too,
    comes out as evidence for 'not defective'. The measured fill (the image's mean here:
    every non-black fill leaves a bright healthy cell as it is, a tie FILLS' order breaks)
    turns hidden stripes bright and hidden background stays bright, so the weights for
    'defective' rank the superpixels by their count of stripe pixels, and the background's are ~0.
    """
    model = darkness_model()
    choice = known_answer_study(tmp_path)
    assert choice == "mean"
    for seed in range(4, 8):
        image = cell(seed, True)
        assert model.predict(image[None].astype(np.float32), verbose=0)[0, 1] == pytest.approx(0.731, abs=1e-3)
        healthy, _ = superpixel_weights(model, image, "black", target=0)
        assert np.all(healthy > 0), "black: every superpixel is evidence for 'not defective'"
        weights, dark = superpixel_weights(model, image, choice, target=1)
        pairs = zip(*np.nonzero(dark[:, None] > dark[None, :]))  # (i, j): i holds more stripe pixels
        assert all(weights[i] > weights[j] for i, j in pairs), "more stripe pixels, more evidence for 'defective'"
        assert np.all(weights[dark > 0] > 0)
        assert np.abs(weights[dark == 0]).max() < 0.1 * weights.max()
