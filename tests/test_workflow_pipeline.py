"""The whole pipeline through Snakemake on the smoke config (every model family, weight-change
figures, explanations, tables, report), 36 jobs (``snakemake -n``) on the CPU. The SLURM
profile's plan and the refusals before any job are test_workflow_dry_runs'."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import CPU_LINE, run_snakemake
from PIL import Image

from layerscope.results.writer import TABLE_STEMS

pytestmark = pytest.mark.pipeline(minutes=8)  # conftest schedules the longest first

SMOKE = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
SMOKE_RUNS = [
    "lenet5-tanh-sgd",
    "vgg16-scratch-sgd",
    "vgg16-freeze3-momentum",
    "vgg16-freeze5-momentum",
    "vgg16-finetune",
    "vgg16-gap-freeze3",
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke config's whole pipeline, every GPU hidden: the CPU path on any machine."""
    workdir = tmp_path_factory.mktemp("smoke")
    run = run_snakemake(workdir, "--configfile", str(REPO / "config/smoke.yaml"), profile="default")
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir / "results/smoke"


@pytest.mark.parametrize("run_id", SMOKE_RUNS)
def test_every_family_trains_through_snakemake(smoke, run_id):
    run = smoke / "runs" / run_id
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run_id"] == run_id and metrics["epochs_run"] == 1
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == metrics["test"]["n"] == 12
    right = int((predictions["true"] == predictions["predicted"]).sum())  # the accuracy, counted by hand
    assert metrics["test"]["accuracy"] == pytest.approx(right / 12, abs=5e-4)
    assert (run / "model.keras").stat().st_size > 0
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.weights.h5"))
    if run_id in SMOKE["explain"]["onset"]["runs"]:
        assert checkpoints[0].startswith("final_") and checkpoints[1:3] == [
            "step_000000.weights.h5",
            "step_000001.weights.h5",
        ]
    else:  # step checkpoints (about 0.9 GB per VGG-16 run at 64 px) only for the onset study's runs
        assert checkpoints == []
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["extra"]["run"] == run_id and any(k.endswith("model.keras") for k in prov["outputs"])
    assert (smoke / "benchmarks/train" / f"{run_id}.tsv").is_file()
    log = (smoke / "logs/train" / f"{run_id}.log").read_text()
    assert "test accuracy" in log
    ours = [line for line in log.splitlines() if " layerscope." in line]  # after TensorFlow's start-up noise
    assert ours[0].endswith(f"layerscope.core.devices: {CPU_LINE}")  # the fixture hides every GPU
    # the smoke config has no early stopping: the log says so, for the console's progress line
    assert "layerscope.train.fit: no early stopping: training runs every epoch up to 1" in log


def test_frozen_parameters_by_family(smoke):
    frozen = {
        r: json.loads((smoke / "runs" / r / "metrics.json").read_text())["parameters"]["frozen"] for r in SMOKE_RUNS
    }
    assert frozen["vgg16-freeze5-momentum"] == 14_714_688  # the whole conv base
    assert frozen["vgg16-freeze3-momentum"] == frozen["vgg16-gap-freeze3"] == 1_735_488
    assert frozen["vgg16-finetune"] == frozen["vgg16-scratch-sgd"] == frozen["lenet5-tanh-sgd"] == 0


def written_png(path) -> bool:
    """The job wrote a whole PNG. What it draws is pinned by the figure's own tests
    (test_render3d, test_scene3d, test_tables, test_explanations, test_explain_quality_study)."""
    with Image.open(path) as image:
        image.load()  # a truncated file fails here
        return image.format == "PNG" and min(image.size) > 0


def test_weight_change_figures(smoke):
    for run_id in SMOKE_RUNS:
        figures = smoke / "runs" / run_id / "figures"
        for name in ("weight_changes_3d.png", "weight_changes_heatmap.png", "weight_changes_blocks.png"):
            assert written_png(figures / name), figures / name
        assert not (figures / "weight_changes.gif").exists()  # smoke.yaml animates nothing (paper paths do)
    assert written_png(smoke / "figures/weight_changes_freeze_comparison.png")


def test_explanations(smoke):
    maps = np.load(smoke / "explain/vgg16-freeze3-momentum/maps.npz")
    n = len(maps["indices"])
    assert n == 4  # one image per class
    for layer in ("block3_conv3", "block4_conv3", "block5_conv3"):
        assert maps[f"gradcam/{layer}"].shape == (n, 40, 40)
    assert maps["cam"].shape == (n, 40, 40)
    assert maps["lime_positive"].shape == (n, 2, 40, 40) and (maps["lime_negative"] <= 0).all()
    assert written_png(smoke / "explain/vgg16-freeze3-momentum/explanations.png")
    assert written_png(smoke / "explain/lenet5-tanh-sgd/feature_maps.png")
    invariance = pd.read_csv(smoke / "explain/lenet5-tanh-sgd/invariance.csv")
    assert invariance["layer"].tolist() == ["c1", "c3", "c5"]  # values: test_explain_feature_maps
    onset = pd.read_csv(smoke / "explain/lenet5-tanh-sgd/onset.csv")
    assert onset["layer"].tolist() == ["c1", "c3", "c5"] and onset["depth"].tolist() == [1, 2, 3]
    curves = pd.read_csv(smoke / "explain/lenet5-tanh-sgd/onset_curves.csv")
    # step 0, then log-spaced (ratio 1.5) up to the run's last step 4, whose reading is the final weights
    assert sorted(set(curves["step"])) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("run_id", "layers"),
    [
        ("vgg16-freeze3-momentum", ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]),
        ("lenet5-tanh-sgd", ["c1", "c3", "c5"]),
    ],
)
def test_explanation_quality(smoke, run_id, layers):
    folder = smoke / "explain" / run_id
    table = pd.read_csv(folder / "quality.csv")
    assert list(table.columns) == ["run", "method", "layer", "metric", "value", "sd", "n"]
    assert (table["run"] == run_id).all()
    assert set(table["method"]) == {"gradcam", "lime", "cam", "random", "random_cam"}
    assert table.loc[table["method"] == "gradcam", "layer"].unique().tolist() == layers
    random = table[(table["method"] == "random") & (table["metric"] == "deletion_auc")]
    assert random["n"].tolist() == [4]  # the explain rule's images, one per class
    assert len(pd.read_csv(folder / "quality_curves.csv")) == (len(layers) + 4) * 2 * 6  # smoke: 5 steps
    assert set(pd.read_csv(folder / "randomisation.csv")["method"]) == {"gradcam", "lime", "cam"}
    assert "- Cascading randomisation:" in (folder / "quality.md").read_text()
    assert written_png(folder / "quality.png")


def test_freeze_recommendation_reads_the_quality_tables_and_the_sweep(smoke):
    table = pd.read_csv(smoke / "tables/freeze_recommendation_blocks.csv", na_values="missing")
    assert table["frozen_blocks"].tolist() == [1, 2, 3, 4, 5]
    probes = pd.read_csv(smoke / "baselines/block_probes.csv")
    assert table["probe_val_accuracy"].tolist() == pytest.approx(probes["val_accuracy"].tolist())
    assert table["rgn"].notna().all()  # every block's relative gradient norm at the start of fine-tuning
    ranking = pd.read_csv(smoke / "tables/freeze_recommendation.csv", na_values="missing")
    assert (ranking["kind"] == "baseline").sum() == 3 and (ranking["kind"] == "signal").sum() == 5
    assert ranking["sweeps"].max() == 1  # one optimizer, one seed: one sweep of depths 3 and 5
    quality = pd.read_csv(smoke / "explain/vgg16-freeze3-momentum/quality.csv")  # the one explained VGG-16 run
    gradcam = quality[quality["method"] == "gradcam"].pivot_table(index="layer", columns="metric", values="value")
    faithfulness = gradcam["insertion_auc"] - gradcam["deletion_auc"]
    assert table["faithfulness"].tolist() == pytest.approx(faithfulness.sort_index().tolist())
    assert table["finetune_change_pct"].notna().all()  # the smoke grid fine-tunes
    swept = table.dropna(subset=["test_accuracy"])
    assert swept["run"].tolist() == ["vgg16-freeze3-momentum", "vgg16-freeze5-momentum"]
    for row in swept.itertuples():
        metrics = json.loads((smoke / "runs" / row.run / "metrics.json").read_text())
        assert row.test_accuracy == pytest.approx(metrics["test"]["accuracy"], abs=5e-4)
    verdict = json.loads((smoke / "tables/freeze_recommendation.json").read_text())
    ranked = table.sort_values(["mean_rank", "rank_faithfulness"])  # ties go to the more faithful block
    assert verdict["recommended"] == ranked["frozen_blocks"].iloc[0]
    assert verdict["n"] == 2 and verdict["sentence"] in (smoke / "tables/freeze_recommendation_blocks.md").read_text()
    assert verdict["signals"] in (smoke / "tables/freeze_recommendation.md").read_text()
    shape = pd.read_csv(smoke / "explain/vgg16-freeze3-momentum/map_shape.csv", na_values="missing")
    assert shape["block"].tolist() == [1, 2, 3, 4, 5] and shape["gini"].notna().all()  # values: test_map_shape
    assert shape["mirroring"].notna().any()
    assert verdict["map_shape"]["vgg16-freeze3-momentum"].startswith("'Block 3 is sharpest'")
    assert written_png(smoke / "figures/freeze_recommendation.png")


def test_tables_match_the_runs(smoke):
    grid = pd.read_csv(smoke / "tables/table9_freeze_grid.csv", index_col=0)
    for k in (3, 5):
        metrics = json.loads((smoke / "runs" / f"vgg16-freeze{k}-momentum/metrics.json").read_text())
        assert grid.loc[k].iloc[0] == pytest.approx(metrics["test"]["accuracy"], abs=5e-4)
    assert "## Baselines" in (smoke / "tables/summary.md").read_text()
    assert written_png(smoke / "figures/freeze_grid_heatmap.png")


def test_linear_probe_and_intervals_in_table8(smoke):
    probe = json.loads((smoke / "baselines/linear_probe/metrics.json").read_text())
    assert probe["layer"] == "block5_pool" and probe["test"]["n"] == 12
    table8 = pd.read_csv(smoke / "tables/table8_summary.csv", index_col=0, na_values="missing")
    row = table8.loc["Linear probe (logistic regression on frozen VGG-16 features)"]
    assert row["test_accuracy"] == pytest.approx(probe["test"]["accuracy"], abs=5e-4)
    transfer = table8.loc["Transfer (3 frozen blocks)"]
    assert transfer["run"] == "vgg16-freeze3-momentum"
    assert transfer["test_accuracy_ci_low"] <= transfer["test_accuracy"] <= transfer["test_accuracy_ci_high"]
    gate = json.loads((smoke / "tables/sanity_gate.json").read_text())
    assert gate["probe_accuracy"] == pytest.approx(probe["test"]["accuracy"])


def report_page(archive_path):
    """report.html of a zip report, and its ``results`` object (every report item)."""
    with zipfile.ZipFile(archive_path) as archive:
        page = archive.read(next(n for n in archive.namelist() if n.endswith("report.html"))).decode()
    results = re.search(r'<script id="results">\s*var results = (\{.*?\});\s*</script>', page, re.S)
    return page, json.loads(results.group(1))


def test_report_builds_opens_on_the_results_and_labels_every_item(smoke):
    workdir = smoke.parents[1]
    run = run_snakemake(workdir, "--report", "report.zip", "--configfile", str(REPO / "config/smoke.yaml"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ERROR/" not in run.stdout + run.stderr  # docutils' mark of a reStructuredText error in a caption
    page, results = report_page(workdir / "report.zip")
    assert "System Message" not in page and "Undefined substitution" not in page
    description = json.loads(re.search(r"var workflow_desc = (.*?);\n", page).group(1))
    assert "What the smoke run found" in description and "Baselines." in description
    gate = json.loads((smoke / "tables/sanity_gate.json").read_text())
    assert gate["sentence"].split(":")[0] in description  # PASSED or FAILED, from the run's own gate
    table8 = pd.read_csv(smoke / "tables/table8_summary.csv", index_col=0, na_values="missing")
    assert f"{table8.loc['Transfer (3 frozen blocks)', 'test_accuracy']:.3f}" in description
    unlabelled = [path for path, item in results.items() if set(item["labels"] or ()) != {"run", "method", "figure"}]
    assert not unlabelled
    shown = {Path(path).name for path, item in results.items() if item["mime_type"] == "text/html"}
    assert {f"{stem}.html" for stem in TABLE_STEMS} | {"freeze_recommendation.html", "landing.html"} <= shown
    scenes = [path for path in results if path.endswith("weight_changes_3d.html")]
    assert sorted(Path(path).parts[-3] for path in scenes) == sorted(SMOKE_RUNS)
    assert {results[path]["labels"]["run"] for path in scenes} == set(SMOKE_RUNS)
