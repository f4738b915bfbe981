"""The explanation_quality rule's library: every output, on tiny hand-built models and a fake maps.npz."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.models import small_vgg
from PIL import Image

from layerscope.core.errors import LayerscopeError
from layerscope.explain.cam import CAM
from layerscope.explain.explanations import read_explained
from layerscope.explain.fills import ChosenFill
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.lime_method import LIME
from layerscope.explain.quality import gradcam_fn, gradcam_layers_fn, parameter_randomisation, randomisation_tables
from layerscope.explain.quality_report import readings
from layerscope.explain.quality_study import (
    CURVE_COLUMNS,
    RANDOMISATION_TABLE_COLUMNS,
    TABLE_COLUMNS,
    QualityFiles,
    lime_read_at,
    quality_layers,
    write_quality,
)
from layerscope.train.models import lenet5, vgg16

SIZE, CLASSES, TEST = 32, 4, 10
CFG = {"images": None, "steps": 3, "baseline": "auto", "lime_images": 1, "lime_samples": 10}
LIME_SETTINGS = {"num_samples": 20, "top_labels": 2, "batch_size": 64, "n_segments": 50, "compactness": 10.0}
LIME_SETTINGS["hide"] = "auto"
MEASURED = "segment_mean"  # the perturbation_fills rule's choice, which auto takes
CHOSEN = np.array([0, 2, 3, 5, 8])
GRADCAM_LAYERS = ["block1_conv2", "block2_conv2", "block3_conv2"]


def blocky_images() -> np.ndarray:
    """Blocky images with noise: SLIC finds enough superpixels in them for LIME."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, size=(TEST, SIZE // 8, SIZE // 8, 3))
    images = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    return np.clip(images + rng.normal(0, 10, images.shape), 0, 255).astype(np.uint8)


def fake_maps(model, cam_model, images, cam: bool = True) -> dict[str, np.ndarray]:
    """What the explain rule writes to maps.npz, for the images at CHOSEN."""
    x = images[CHOSEN].astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    evidence = LIME(model, num_samples=20, seed=0, progress=False).evidence(x)
    maps = {
        "indices": CHOSEN,
        "true": np.array([0, 1, 2, 3, 0]),
        "predicted": predicted,
        "lime_labels": evidence["labels"],
        "lime_positive": evidence["positive"],
        "lime_negative": evidence["negative"],
        "paths": np.array([f"img{i}.png" for i in CHOSEN]),
    }
    if cam:
        cam_predicted = cam_model.predict(x, verbose=0).argmax(axis=1)
        maps.update(cam=CAM(cam_model, upsample=True).explain(x, cam_predicted), cam_predicted=cam_predicted)
    return maps


def files_in(folder) -> QualityFiles:
    return QualityFiles(
        *(
            folder / name
            for name in (
                "quality.csv",
                "quality_curves.csv",
                "randomisation.csv",
                "quality.md",
                "quality.tex",
                "quality.png",
            )
        )
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    model, cam_model, images = small_vgg(), small_vgg(head="gap", seed=1), blocky_images()
    np.savez(folder / "maps.npz", **fake_maps(model, cam_model, images))
    files = files_in(folder)
    with np.load(folder / "maps.npz") as maps:
        result = write_quality(
            model, images, maps, CFG, LIME_SETTINGS, 0, "toy", files, cam_model, "toy-gap", 8, measured_fill=MEASURED
        )
    return files, result, model


def test_every_output_is_written_with_exact_columns_and_rows(written):
    files, result, model = written
    n, points, depths, cam_depths = len(CHOSEN), CFG["steps"] + 1, 9, 7
    lime_readings = ["logits", "block3_conv2", "block2_conv2", "block1_conv2", "block1_conv1"]
    assert lime_read_at(model, GRADCAM_LAYERS) == lime_readings

    table = pd.read_csv(files.table)
    assert list(table.columns) == TABLE_COLUMNS
    assert (table["run"] == "toy").all()
    methods = [*(("gradcam", layer) for layer in GRADCAM_LAYERS), ("lime", ""), ("cam", ""), ("random", "")]
    methods.append(("random_cam", ""))
    pairs = list(dict.fromkeys(zip(table["method"], table["layer"].fillna(""))))
    assert pairs == methods
    by_metric = table.groupby("metric").size()
    assert by_metric["deletion_auc"] == by_metric["insertion_auc"] == len(methods)
    assert by_metric["random_logit_spearman"] == len(GRADCAM_LAYERS) + 2  # gradcam layers, lime, cam
    randomisation_rows = 2 * (len(GRADCAM_LAYERS) * depths + cam_depths + len(lime_readings))
    assert table["metric"].str.startswith("randomisation_").sum() == randomisation_rows
    assert len(table) == 2 * len(methods) + randomisation_rows + len(GRADCAM_LAYERS) + 2
    random = table[(table["method"] == "random") & (table["metric"] == "deletion_auc")]
    assert len(random) == 1 and random["n"].item() == n and random["layer"].isna().all()
    lime_logit = table[(table["method"] == "lime") & (table["metric"] == "random_logit_spearman")]
    assert lime_logit["n"].item() <= CFG["lime_images"]

    curves = pd.read_csv(files.curves)
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == len(methods) * 2 * points
    assert set(curves["curve"]) == {"deletion", "insertion"} and (curves["n"] == n).all()
    np.testing.assert_allclose(sorted(set(curves["fraction"])), np.rint(np.linspace(0, 1, points) * SIZE**2) / SIZE**2)

    randomisation = pd.read_csv(files.randomisation)
    assert list(randomisation.columns) == RANDOMISATION_TABLE_COLUMNS
    assert len(randomisation) == randomisation_rows // 2
    gradcam = randomisation[randomisation["layer"] == "block2_conv2"]
    assert gradcam["depth"].tolist() == list(range(1, depths + 1))
    assert gradcam["randomised"].iloc[0] == "logits" and gradcam["randomised"].iloc[-1] == "block1_conv1"
    lime = randomisation[randomisation["method"] == "lime"]
    assert lime["randomised"].tolist() == lime_readings and lime["depth"].tolist() == [1, 4, 6, 8, 9]
    assert len(randomisation[randomisation["method"] == "cam"]) == cam_depths

    image = np.asarray(Image.open(files.figure).convert("RGB"), dtype=float)
    assert image.shape[1] > 1000 and image.std() > 5
    assert set(result.timings) == {"gradcam_maps", "deletion_insertion", "randomisation", "random_logit"}


def test_markdown_has_the_main_table_and_a_reading_per_check(written):
    files, _, _ = written
    text = files.summary.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(rows) == len(GRADCAM_LAYERS) + 4
    assert all(line.count("|") == 8 for line in rows)
    assert rows[0].startswith("| gradcam | block1_conv2 |") and rows[-1].startswith("| random_cam |  |")
    assert "CAM and random_cam on the GAP model toy-gap" in text
    assert "deleted pixels replaced by: superpixel mean (measured)" in text
    assert "hidden superpixels: superpixel mean (measured)" in text
    latex = files.latex.read_text()
    assert latex.count(r"\\") == 1 + len(GRADCAM_LAYERS) + 4 and r"gradcam & block1\_conv2 &" in latex
    for start in ("Deletion and insertion:", "Grad-CAM by layer:", "Cascading randomisation:", "Random logit:"):
        assert f"- {start}" in text


def test_without_cam_there_is_no_cam_row(tmp_path):
    model, images = small_vgg(), blocky_images()
    maps = fake_maps(model, None, images, cam=False)
    cfg = {**CFG, "images": 2, "baseline": "zero"}  # fills set in the config: no measurement needed
    lime = {**LIME_SETTINGS, "hide": "inpaint"}
    result = write_quality(model, images, maps, cfg, lime, 0, "toy", files_in(tmp_path))
    assert set(result.table["method"]) == {"gradcam", "lime", "random"}
    assert result.images == 2 and (result.table.loc[result.table["metric"] == "deletion_auc", "n"] == 2).all()
    assert result.fills == {
        "deletion": ChosenFill("black", "set in config"),
        "lime": ChosenFill("inpaint", "set in config"),
    }
    with pytest.raises(LayerscopeError, match="CAM"):
        write_quality(model, images, maps, cfg, lime, 0, "toy", files_in(tmp_path), small_vgg(head="gap"))
    with pytest.raises(LayerscopeError, match="explain.quality.baseline: auto needs the perturbation_fills"):
        write_quality(model, images, maps, CFG, lime, 0, "toy", files_in(tmp_path))


def test_quality_layers_are_each_blocks_last_conv_else_every_conv():
    model = vgg16((SIZE, SIZE, 3), CLASSES, weights="none")
    assert quality_layers(model) == ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
    assert quality_layers(lenet5((SIZE, SIZE, 1), CLASSES)) == ["c1", "c3", "c5"]
    assert quality_layers(small_vgg()) == GRADCAM_LAYERS


def test_one_pass_gradcam_equals_gradcam_per_layer_and_follows_weights_changed_in_place():
    model, x = small_vgg(), blocky_images()[:4].astype(np.float32)
    t = np.array([0, 1, 2, 3])
    explain = gradcam_layers_fn(GRADCAM_LAYERS, batch_size=3)  # two batches
    maps = explain(model, x, t)
    for layer in GRADCAM_LAYERS:
        np.testing.assert_allclose(
            maps[layer], GradCAM(model, layer, upsample=True).explain(x, t), rtol=1e-4, atol=1e-6
        )
    with pytest.raises(LayerscopeError, match="explain_layers"):
        GradCAM(model, GRADCAM_LAYERS).explain(x, t)
    dense = model.get_layer("logits")
    dense.kernel.assign(-dense.kernel)
    changed = explain(model, x, t)["block3_conv2"]
    np.testing.assert_allclose(changed, GradCAM(model, "block3_conv2", upsample=True).explain(x, t), atol=1e-6)


def test_multi_map_cascade_matches_parameter_randomisation_where_read():
    model, x, t = small_vgg(), blocky_images()[:3], np.array([0, 1, 2])
    expected = parameter_randomisation(model, gradcam_fn("block2_conv2"), x, t, seed=3)
    read = ["logits", "block2_conv2", "block1_conv1"]
    tables = randomisation_tables(model, gradcam_layers_fn(GRADCAM_LAYERS), x, t, seed=3, read_at=read)
    assert list(tables) == GRADCAM_LAYERS
    got = tables["block2_conv2"]
    assert got["layer"].tolist() == read
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected[expected["layer"].isin(read)].reset_index(drop=True), atol=1e-3
    )


def test_read_explained_checks_lime_labels_and_indices_and_spreads_classes():
    model, images = small_vgg(), blocky_images()
    maps = fake_maps(model, None, images, cam=False)
    picked = read_explained(maps, images, count=3)
    assert picked.true.tolist() == [0, 1, 2] and picked.images.shape == (3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(picked.lime, (maps["lime_positive"] + maps["lime_negative"])[[0, 1, 2], 0])
    # a near-tie LIME ranked the other way: the predicted class's map is taken, not LIME's top one
    swapped = {
        **maps,
        "lime_labels": maps["lime_labels"][:, ::-1],
        "lime_positive": maps["lime_positive"][:, ::-1],
        "lime_negative": maps["lime_negative"][:, ::-1],
    }
    np.testing.assert_array_equal(read_explained(swapped, images).lime, read_explained(maps, images).lime)
    missing = {**maps, "lime_labels": np.full_like(maps["lime_labels"], -1)}
    with pytest.raises(LayerscopeError, match="do not include the predicted class"):
        read_explained(missing, images)
    with pytest.raises(LayerscopeError, match="test split"):
        read_explained(maps, images[:5])


def test_readings_name_who_beats_random_fails_randomisation_and_ignores_the_class():
    main = pd.DataFrame(
        [
            ("gradcam", "block1_conv2", 0.40, 0.01, 0.50, 0.02, 0.10, 0.9, 0.2),
            ("gradcam", "block2_conv2", 0.20, 0.03, 0.70, 0.01, 0.50, 0.1, 0.8),
            ("lime", None, 0.30, 0.2, 0.40, 0.2, 0.10, np.nan, 0.1),
            ("random", None, 0.35, 0.1, 0.45, 0.1, 0.10, np.nan, np.nan),
        ],
        columns=[
            "method",
            "layer",
            "deletion_auc",
            "deletion_auc_sd",
            "insertion_auc",
            "insertion_auc_sd",
            "difference",
            "randomisation_spearman",
            "random_logit_spearman",
        ],
    )
    first, blocks, randomisation, logit = readings(main)
    assert first.endswith(": gradcam/block2_conv2; not on both: gradcam/block1_conv2, lime.")
    assert blocks.endswith("most faithful at block2_conv2 (insertion - deletion 0.500), least at block1_conv2 (0.100).")
    main.loc[1, "deletion_auc_sd"] = 0.5  # the gap between layers is now within the spread over images
    assert readings(main)[1].endswith("within the spread over images (AUC sd up to 0.500).")
    assert ": gradcam/block1_conv2; pass: gradcam/block2_conv2; undefined (flat maps): lime." in randomisation
    assert logit.endswith(": gradcam/block2_conv2; class-sensitive: gradcam/block1_conv2, lime.")
