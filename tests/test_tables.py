"""Result tables and figures from hand-written run files (no training)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.runs import CLASSES, FREEZE, OTHERS, RUN_IDS, html_rows, markdown_rows, write_run

from layerscope.core.errors import LayerscopeError
from layerscope.core.render import to_markdown, write_table
from layerscope.core.statistics import SeedVariance
from layerscope.results import claims as study_claims
from layerscope.results import comparisons, differences, run_files, selection, tables, writer
from layerscope.results import figures as result_figures
from layerscope.results import gate as sanity
from layerscope.results import readme as readme_block
from layerscope.results.comparisons import correctness, seed_test
from layerscope.results.figures import plot_freeze_heatmap, plot_validation_curves
from layerscope.train.optimizers import OPTIMIZERS


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for run_id, accuracies in OTHERS.items():
        write_run(root, run_id, accuracies)
    for (k, opt), (val, test) in FREEZE.items():
        write_run(root, f"vgg16-freeze{k}-{opt}", (0.9, val, test), test_f1=0.8 if (k, opt) == (3, "nag") else None)
    return root


@pytest.fixture
def runs(runs_dir: Path) -> dict:
    return run_files.load_runs(runs_dir, RUN_IDS)


def test_unfinished_run_is_kept_as_none(runs):
    assert list(runs) == RUN_IDS
    assert runs["vgg16-freeze4-nag"] is None and runs["vgg16-freeze4-sgd"] is not None


def test_freeze_grid_holds_the_test_accuracies(runs):
    grid = tables.freeze_grid(runs)
    assert list(grid.index) == [5, 4, 3, 2, 1] and list(grid.columns) == ["SGD", "Momentum", "NAG"]
    for (k, opt), (_, test) in FREEZE.items():
        assert grid.loc[k, OPTIMIZERS[opt]] == test
    assert math.isnan(grid.loc[4, "NAG"])


def test_missing_cell_reads_missing_in_every_format(runs, tmp_path):
    csv, md, tex, page = write_table(tables.freeze_grid(runs), tmp_path / "grid")
    assert markdown_rows(md.read_text())["4"]["NAG"] == "missing"
    assert pd.read_csv(csv, index_col=0).loc[4, "NAG"] == "missing"
    assert r"4 & 0.540 & 0.550 & missing \\" in tex.read_text()
    assert html_rows(page.read_text())["4"]["NAG"] == ("missing", False)
    assert re.fullmatch(r"\|:-+\|(-+:\|){3}", md.read_text().splitlines()[1])  # index left, numbers right
    assert "<caption>" not in page.read_text() and 'class="layerscope"' in page.read_text()
    assert html_rows(page.read_text())["4"]["NAG"] == ("missing", False)


def test_grid_best_is_the_one_top_cell(runs, tmp_path):
    grid = tables.freeze_grid(runs)
    _, md, tex, page = write_table(grid, tmp_path / "grid", best=grid.columns, best_scope="grid")
    assert md.read_text().count("**") == 2 and markdown_rows(md.read_text())["2"]["SGD"] == "**0.950**"
    assert tex.read_text().count(r"\textbf") == 1 and r"2 & \textbf{0.950} & 0.560 & 0.570 \\" in tex.read_text()
    page_rows = html_rows(page.read_text())
    assert page_rows["2"]["SGD"] == ("0.950", True) and page_rows["2"]["Momentum"] == ("0.560", False)
    assert sum(bold for row in page_rows.values() for _, bold in row.values()) == 1


def test_column_best_marks_each_columns_maximum(runs, tmp_path):
    _, md, _, _ = write_table(
        tables.freeze3_by_optimizer(runs),
        tmp_path / "t6",
        best=["val_accuracy", "test_accuracy", "test_f1_weighted"],
    )
    rows = markdown_rows(md.read_text())
    assert rows["Momentum"]["val_accuracy"] == "**0.900**" and rows["Momentum"]["test_accuracy"] == "**0.700**"
    assert rows["NAG"]["test_f1_weighted"] == "**0.800**" and rows["Momentum"]["test_f1_weighted"] == "0.700"


def test_summary_picks_transfer_by_validation_not_test(runs):
    table8 = tables.summary(runs)
    assert table8.loc["Transfer (3 frozen blocks)", "run"] == "vgg16-freeze3-momentum"
    best_depth = table8.loc["Best freeze depth (by validation)"]
    assert best_depth["run"] == "vgg16-freeze3-momentum"  # not freeze2-sgd, the best on test
    assert best_depth["test_accuracy"] == 0.70
    assert best_depth["missing_candidates"] == 1  # freeze4-nag
    assert table8.loc["LeNet-5", "run"] == "lenet5-relu-adam"
    assert table8.loc["Fixed feature extraction", "run"] == "vgg16-freeze5-nag"
    assert table8.loc["Majority class", "test_accuracy"] == 0.25


def health(best: int, epochs: int, *flags: str) -> dict:
    return {"best_epoch": best, "epochs_run": epochs, "flags": list(flags)}


def test_a_flagged_run_is_never_silently_the_best(runs_dir):
    # freeze3-momentum has the best validation accuracy but never converged
    (runs_dir / "vgg16-freeze3-momentum").rename(runs_dir / "old")
    write_run(runs_dir, "vgg16-freeze3-momentum", (0.9, 0.90, 0.70), health=health(3, 3, "not converged"))
    runs = run_files.load_runs(runs_dir, RUN_IDS)
    transfer = tables.summary(runs).loc["Transfer (3 frozen blocks)"]
    assert (transfer["run"], transfer["flags"]) == ("vgg16-freeze3-nag", "")
    assert transfer["passed_over"] == "vgg16-freeze3-momentum (val 0.900, not converged)"
    notes = readme_block.approach_table(tables.summary(runs)).loc["Transfer (3 frozen blocks)", "notes"]
    assert notes == "passed over: vgg16-freeze3-momentum (val 0.900, not converged)"
    assert sanity.sanity_gate(runs)["run"] == "vgg16-finetune"
    # when every candidate is flagged the best flagged one is shown, with its flags
    depth3 = {run_id: runs[run_id] for run_id in runs if run_id.startswith("vgg16-freeze3")}
    for run_id in depth3:
        depth3[run_id] = {**runs[run_id], "health": health(3, 3, "collapsed")}
    row = tables.summary(depth3).loc["Transfer (3 frozen blocks)"]
    assert (row["run"], row["flags"], row["passed_over"]) == ("vgg16-freeze3-momentum", "collapsed", "")


def test_the_gate_picks_its_run_as_table8_does_over_seeds(runs_dir):
    """A second seed of the best single run moves the gate's pick: flagged, or healthy with a low validation mean."""
    assert sanity.sanity_gate(run_files.load_runs(runs_dir, RUN_IDS))["run"] == "vgg16-finetune"
    ids = [*RUN_IDS, "vgg16-finetune-seed43"]
    write_run(runs_dir, "vgg16-finetune-seed43", (0.9, 0.95, 0.70), health=health(3, 3, "not converged"))
    runs = run_files.load_runs(runs_dir, ids)
    assert tables.summary(runs).loc["Fine-tuning", "flags"] == "not converged (1 of 2 seeds)"
    # fine-tuning's cell has a flagged seed: the best healthy VGG-16 cell by validation is
    # freeze3-momentum (0.90; scratch 0.85, every other freeze cell below 0.73)
    assert sanity.sanity_gate(runs)["run"] == "vgg16-freeze3-momentum"
    shutil.rmtree(runs_dir / "vgg16-finetune-seed43")
    write_run(runs_dir, "vgg16-finetune-seed43", (0.9, 0.10, 0.70), health=health(2, 3))
    # healthy now, but fine-tuning's validation mean is (0.92 + 0.10) / 2 = 0.51 < 0.90
    assert sanity.sanity_gate(run_files.load_runs(runs_dir, ids))["run"] == "vgg16-freeze3-momentum"


def test_table9_shows_seeds_epochs_best_epochs_and_flags(tmp_path):
    seeds = {
        "vgg16-freeze4-sgd": ((0.9, 0.70, 0.60), health(2, 5)),
        "vgg16-freeze4-sgd-seed43": ((0.9, 0.72, 0.64), health(3, 6)),
        "vgg16-freeze4-sgd-seed44": ((0.9, 0.50, 0.50), health(4, 4, "not converged", "collapsed")),
        "vgg16-freeze5-sgd": ((0.9, 0.60, 0.55), health(7, 10)),
    }
    for run_id, (accuracies, run_health) in seeds.items():
        write_run(tmp_path, run_id, accuracies, health=run_health)
    runs = run_files.load_runs(tmp_path, list(seeds))
    table = tables.table9_statistics(runs)
    row = table.loc["vgg16-freeze4-sgd"]
    assert row["seeds"] == 3
    assert row["test_accuracy_seed_mean"] == pytest.approx(0.58)
    assert row["test_accuracy_seed_sd"] == pytest.approx(0.072111, abs=1e-6)
    assert row["val_accuracy_seed_mean"] == pytest.approx(0.64)
    assert (row["epochs_run"], row["best_epoch"]) == ("5, 6, 4", "2, 3, 4")
    assert row["flags"] == "not converged (1 of 3 seeds), collapsed (1 of 3 seeds)"
    single = table.loc["vgg16-freeze5-sgd"]
    assert (single["seeds"], single["epochs_run"], single["best_epoch"], single["flags"]) == (1, "10", "7", "")
    grid = tables.freeze_grid(runs)
    assert grid.loc[4, "SGD"] == pytest.approx(0.58) and grid.loc[5, "SGD"] == pytest.approx(0.55)


def test_approach_outside_the_grid_says_so(runs):
    table8 = tables.summary({k: v for k, v in runs.items() if "scratch" not in k})
    assert table8.loc["Random weights", "run"] == tables.NOT_IN_GRID
    assert table8.loc["LeNet-5", "run"] == "lenet5-relu-adam"


def test_transfer_row_follows_the_configured_depth(runs):
    table8 = tables.summary(runs, transfer=2)
    assert "Transfer (3 frozen blocks)" not in table8.index
    assert table8.loc["Transfer (2 frozen blocks)", "run"] == "vgg16-freeze2-nag"  # best val at depth 2


def test_transfer_row_named_by_run_is_that_run_even_when_another_optimizer_scores_higher(runs):
    by_depth = tables.summary(runs, transfer=3).loc["Transfer (3 frozen blocks)", "run"]
    named = tables.summary(runs, transfer="vgg16-freeze3-sgd").loc["Transfer (3 frozen blocks)", "run"]
    assert by_depth != "vgg16-freeze3-sgd" and named == "vgg16-freeze3-sgd"


def test_summary_carries_intervals_probe_and_seed_spread(tmp_path):
    write_run(tmp_path, "vgg16-freeze3-momentum", (0.9, 0.8, 0.70), ci=(0.64, 0.76))
    write_run(tmp_path, "vgg16-freeze3-momentum-seed1", (0.9, 0.8, 0.74))
    write_run(tmp_path, "vgg16-freeze3-momentum-seed2", (0.9, 0.8, 0.72))
    ids = ["vgg16-freeze3-momentum", "vgg16-freeze3-momentum-seed1", "vgg16-freeze3-momentum-seed2"]
    probe = {
        "train": {"accuracy": 0.8},
        "val": {"accuracy": 0.7},
        "test": {"accuracy": 0.66, "f1_weighted": 0.6},
    }
    table8 = tables.summary(run_files.load_runs(tmp_path, ids), probe=probe)
    row = table8.loc["Transfer (3 frozen blocks)"]
    assert (row["run"], row["test_accuracy"]) == (
        "vgg16-freeze3-momentum",
        0.70,
    )  # replicates are not candidates
    assert (row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]) == (0.64, 0.76)
    assert row["seeds"] == 3
    assert row["test_accuracy_seed_mean"] == pytest.approx(0.72)
    assert row["test_accuracy_seed_sd"] == pytest.approx(0.02)
    assert table8.loc[tables.PROBE, "test_accuracy"] == 0.66
    # one seed has no spread: "n/a", which pandas reads back as NaN, not "missing"
    single = tables.summary(run_files.load_runs(tmp_path, ids[:1]), probe=probe)
    assert single.loc["Transfer (3 frozen blocks)", "test_accuracy_seed_sd"] == selection.NOT_APPLICABLE == "n/a"
    assert single.loc[tables.PROBE, "test_accuracy_seed_sd"] == "n/a"
    assert markdown_rows(to_markdown(single.loc[[tables.PROBE]]))[tables.PROBE]["test_accuracy_seed_sd"] == "n/a"


def test_losses_are_those_of_the_kept_epoch(runs):
    row = tables.vgg_by_initialisation(runs).loc["vgg16-freeze5-sgd"]
    assert (row["best_epoch"], row["train_loss"], row["val_loss"]) == (2, 0.8, 0.5)


def test_finetune_table_by_split(runs):
    rows = markdown_rows(to_markdown(tables.finetune_result(runs)))
    assert rows["test"] == {
        "split": "test",
        "n": "12",
        "accuracy": "0.800",
        "f1_weighted": "0.800",
        "f1_macro": "0.800",
    }
    unfinished = markdown_rows(to_markdown(tables.finetune_result({"vgg16-finetune": None})))
    assert set(unfinished["val"].values()) == {"val", "missing"}


def test_lenet5_layout_counts_by_hand():
    layout = tables.lenet5_layout((32, 32, 3), 4)
    c1, c3, c5 = (5 * 5 * 3 + 1) * 6, (5 * 5 * 6 + 1) * 16, (5 * 5 * 16 + 1) * 120  # 456, 2416, 48120
    f6 = (7 * 7 * 120 + 1) * 84  # 32-4=28, pool stride 1 -> 27, -4 -> 23, pool /2 -> 11, -4 -> 7
    logits = (84 + 1) * 4
    assert layout["parameters"].to_dict() == {
        "image": 0,
        "preprocess": 0,
        "c1": c1,
        "s2": 0,
        "c3": c3,
        "s4": 0,
        "c5": c5,
        "flatten": 0,
        "f6": f6,
        "logits": logits,
        "probabilities": 0,
        "total": c1 + c3 + c5 + f6 + logits,
    }
    assert layout.loc["s2", "output_shape"] == "27 x 27 x 6" and layout.loc["flatten", "output_shape"] == "5880"


@pytest.mark.parametrize(("baseline", "passed"), [((0.25, 0.10), True), ((0.85, 0.10), False), ((0.25, 0.90), False)])
def test_sanity_gate_needs_both_accuracy_and_f1(tmp_path, baseline, passed):
    write_run(tmp_path, "vgg16-freeze3-momentum", (0.9, 0.90, 0.70), baseline=baseline)
    write_run(tmp_path, "vgg16-freeze2-sgd", (0.9, 0.60, 0.95), baseline=(0.0, 0.0))
    gate = sanity.sanity_gate(run_files.load_runs(tmp_path, ["vgg16-freeze3-momentum", "vgg16-freeze2-sgd"]))
    assert gate["run"] == "vgg16-freeze3-momentum" and gate["passed"] is passed


@pytest.mark.parametrize(("probe_accuracy", "passed"), [(0.65, True), (0.75, False)])
def test_sanity_gate_needs_the_linear_probe_beaten(tmp_path, probe_accuracy, passed):
    write_run(tmp_path, "vgg16-freeze3-momentum", (0.9, 0.90, 0.70))
    probe = {"test": {"accuracy": probe_accuracy, "f1_weighted": 0.5}}
    gate = sanity.sanity_gate(run_files.load_runs(tmp_path, ["vgg16-freeze3-momentum"]), probe)
    assert gate["beats_majority"] is True and gate["passed"] is passed
    line = sanity.gate_line(gate, CLASSES)
    assert ("does not beat a logistic regression" in line) is (not passed)


def test_sanity_gate_fails_without_a_finished_vgg_run(runs_dir):
    gate = sanity.sanity_gate(run_files.load_runs(runs_dir, ["lenet5-tanh-sgd", "vgg16-freeze4-nag"]))
    assert gate["run"] is None and gate["passed"] is False


def test_claims_are_tested_on_paired_predictions(tmp_path):
    # fine-tuning right on 20 images where transfer is wrong, transfer right on 2 where fine-tuning is wrong
    finetune = [True] * 60 + [True] * 20 + [False] * 2 + [False] * 18
    transfer = [True] * 60 + [False] * 20 + [True] * 2 + [False] * 18
    write_run(tmp_path, "vgg16-finetune", (0.9, 0.9, 0.80), correct=finetune)
    write_run(tmp_path, "vgg16-freeze3-momentum", (0.9, 0.8, 0.62), correct=transfer)
    ids = ["vgg16-finetune", "vgg16-freeze3-momentum"]
    # no cell trained twice: the difference is reported, but nothing says how far retraining moves it
    alone = run_files.load_runs(tmp_path, ids)
    row = differences.approach_tests(alone).loc["Fine-tuning vs Transfer (3 frozen blocks)"]
    assert row["difference"] == pytest.approx(0.80 - 0.62) and row["verdict"] == "not measured"
    assert math.isnan(row["difference_ci_low"]) and math.isnan(row["p_value"])
    claim = study_claims.paper_comparison(alone).loc["Fine-tuning beats transfer (3 frozen blocks)"]
    assert claim["verdict"] == "not measured" and "difference +0.180 (no cell has two finished seeds" in claim["ours"]
    # a depth-5 cell under three seeds, 0.70, 0.71 and 0.72 (seed variance 0.0001, sd 0.01, 2 df)
    seeded = ["vgg16-freeze5-sgd", "vgg16-freeze5-sgd-seed43", "vgg16-freeze5-sgd-seed44"]
    for run_id, count in zip(seeded, (70, 71, 72), strict=True):
        write_run(tmp_path, run_id, (0.9, 0.7, count / 100), correct=correct_count(count))
    runs = run_files.load_runs(tmp_path, [*ids, *seeded])
    row = differences.approach_tests(runs).loc["Fine-tuning vs Transfer (3 frozen blocks)"]
    assert (row["seeds_a"], row["seeds_b"]) == (1, 1)
    assert row["difference"] == pytest.approx(0.80 - 0.62)
    # 20 vs 2 discordant images (image sd about 0.045) and retraining sd 0.01 x sqrt(2) = 0.014,
    # t-distributed with 2 df: wider than the image bootstrap's interval, 0 still outside
    images_only = seed_test([runs[ids[0]]], [runs[ids[1]]], SeedVariance(0.0, 1, 1))
    assert 0.05 < images_only.low < 0.18 < images_only.high < 0.31
    assert 0.0 < row["difference_ci_low"] < images_only.low - 0.005
    assert row["difference_ci_high"] > images_only.high + 0.005
    assert row["p_value"] < 0.05 and row["verdict"] == "holds"
    claims = study_claims.paper_comparison(runs)
    assert claims.loc["Fine-tuning beats transfer (3 frozen blocks)", "verdict"] == "holds"
    assert claims.loc["Transfer beats random weights", "verdict"] == "not measured"


def test_the_probe_comparison_is_a_claim_tested_like_the_others(tmp_path):
    # the best VGG-16 run (three seeds) right on 80, 78, 82 of 100 images; the probe on the first 70
    ids = []
    for seed, count in zip(("", "-seed43", "-seed44"), (80, 78, 82), strict=True):
        write_run(tmp_path, f"vgg16-freeze3-momentum{seed}", (0.9, 0.85, count / 100), correct=correct_count(count))
        ids.append(f"vgg16-freeze3-momentum{seed}")
    runs = run_files.load_runs(tmp_path, ids)
    write_run(tmp_path / "probe", "lenet5-relu-adam", (0.9, 0.7, 0.70), correct=correct_count(70))
    probe = {
        **run_files.load_runs(tmp_path / "probe", ["lenet5-relu-adam"])["lenet5-relu-adam"],
        "run_id": "linear-probe",
    }
    claims = study_claims.paper_comparison(runs, "vgg16-freeze3-momentum", probe)
    claim = claims.loc[study_claims.PROBE_CLAIM]
    assert claim["paper"] == "0.778 vs 0.653 (transfer vs fixed features)"
    assert claim["ours"].startswith("vgg16-freeze3-momentum 0.800 ± 0.020 (3 seeds) vs linear probe 0.700 (1 seed)")
    # 10 images right for the network only, seed sd 0.02 on 2 df: +0.100 [-0.005, +0.212], not shown
    assert claim["ours"].endswith("difference +0.100 [-0.005, +0.212]")
    assert claim["verdict"] == "not shown (same direction)" and 0.05 < claim["p_value"] < 0.07
    assert study_claims.paper_comparison(runs, 3, None).loc[study_claims.PROBE_CLAIM, "verdict"] == "not measured"


def correct_count(k: int, n: int = 100) -> list[bool]:
    return [True] * k + [False] * (n - k)


def test_depth_and_approach_claims_are_tested_across_seeds(tmp_path):
    # depth 3 (momentum, three seeds) right on 80, 78, 82 of 100 images; depth 4 on 60, 62, 58;
    # LeNet-5 (one seed) on 70
    ids = []
    for k, counts in ((3, (80, 78, 82)), (4, (60, 62, 58))):
        for seed, count in zip(("", "-seed43", "-seed44"), counts, strict=True):
            run_id = f"vgg16-freeze{k}-momentum{seed}"
            write_run(tmp_path, run_id, (0.9, count / 100 + 0.05, count / 100), correct=correct_count(count))
            ids.append(run_id)
    write_run(tmp_path, "lenet5-relu-adam", (0.9, 0.7, 0.70), correct=correct_count(70))
    runs = run_files.load_runs(tmp_path, [*ids, "lenet5-relu-adam"])
    claims = study_claims.paper_comparison(runs)
    depth = claims.loc["Freezing blocks 1-3 is best"]
    assert depth["verdict"] == "holds" and depth["p_value"] < 0.01
    assert depth["ours"].startswith("depth 3 vs depth 4 (best other depth by validation): difference +0.200 [")
    assert "k=3: 0.800 ± 0.020 (3 runs)" in depth["ours"]
    lenet = claims.loc["Transfer beats LeNet-5"]
    assert lenet["ours"].startswith("transfer 0.800 ± 0.020 (3 seeds) vs LeNet-5 0.700 (1 seed); difference +0.100 [")
    assert lenet["test"] == "bootstrap over test images plus pooled seed variance"
    neighbours = differences.freeze_tests(runs).loc["Momentum: 3 vs 4 frozen blocks"]
    assert (neighbours["seeds_a"], neighbours["seeds_b"]) == (3, 3)
    assert neighbours["difference"] == pytest.approx(0.20) and neighbours["verdict"] == "holds"
    assert neighbours["difference_ci_low"] > 0.05
    cell = tables.table9_statistics(runs).loc["vgg16-freeze3-momentum"]
    assert cell["test_accuracy_seed_mean"] == pytest.approx(0.80)
    # seeds 0.78-0.82 and 100 images: the mean's interval is about +-0.08 wide, around 0.80
    assert 0.70 < cell["test_accuracy_seed_ci_low"] < 0.78 and 0.82 < cell["test_accuracy_seed_ci_high"] < 0.90
    # both cells' seeds sd 0.02: pooled variance 0.0004 over 4 degrees of freedom
    line = comparisons.variance_line(comparisons.training_variance(runs))
    assert line.startswith("Retraining variance: seed-to-seed sd of test accuracy 0.020, pooled over the 2 cells")
    assert "(4 degrees of freedom)" in line


def test_a_run_that_lists_an_image_twice_is_named():
    preds = pd.DataFrame({"path": ["a.png", "b.png"], "true": ["x", "y"], "predicted": ["x", "x"]})
    doubled = pd.concat([preds, preds.iloc[:1]], ignore_index=True)
    with pytest.raises(LayerscopeError, match=r"run 'vgg16-b' has more than one test prediction for \['a.png'\]"):
        correctness(
            [{"run_id": "vgg16-a", "test_predictions": preds}, {"run_id": "vgg16-b", "test_predictions": doubled}]
        )
    other = preds.assign(path=["a.png", "c.png"])
    with pytest.raises(LayerscopeError, match="tested on different images or labels"):
        correctness(
            [{"run_id": "vgg16-a", "test_predictions": preds}, {"run_id": "vgg16-c", "test_predictions": other}]
        )


def test_freeze_neighbours_and_momentum_claim(runs):
    tests = differences.freeze_tests(runs)
    assert len(tests) == 12  # 4 neighbour pairs x 3 optimizers
    assert tests.loc["NAG: 3 vs 4 frozen blocks", "verdict"] == "not measured"  # freeze4-nag unfinished
    assert tests.loc["Momentum: 3 vs 4 frozen blocks", "difference"] == pytest.approx(0.15)
    claims = study_claims.paper_comparison(runs)
    # momentum/NAG beat SGD at depths 5, 3, 1 (x2), 4 (momentum); SGD wins at depth 2 (x2): 7 wins, 2 losses
    cell_by_cell = "Momentum methods (Momentum, NAG) beat plain SGD, cell by cell (seed means)"
    assert claims.loc[cell_by_cell, "ours"].startswith("wins 7, losses 2")
    assert claims.loc[cell_by_cell, "verdict"] == "not shown (same direction)"
    # no predictions in this fixture: the pooled seed-image test cannot be run, and says so
    pooled = "Momentum methods (Momentum, NAG) beat plain SGD (all depths and seeds pooled)"
    assert claims.loc[pooled, "verdict"] == "not measured"


def test_unreadable_metrics_file_is_named(runs_dir):
    (runs_dir / "vgg16-finetune" / "metrics.json").write_text("{not json")
    with pytest.raises(LayerscopeError, match=r"vgg16-finetune/metrics\.json"):
        run_files.load_runs(runs_dir, ["vgg16-finetune"])


def test_write_all_tables(runs_dir, tmp_path):
    files = writer.write_all_tables(runs_dir, RUN_IDS, tmp_path / "tables", (32, 32, 3), 4, CLASSES)
    assert all(path.is_file() for path in files) and len(files) == len(writer.TABLE_STEMS) * 4 + 3
    text = (tmp_path / "tables" / "summary.md").read_text()
    assert f"Missing runs (1 of {len(RUN_IDS)}): vgg16-freeze4-nag." in text
    assert "PASSED: vgg16-finetune" in text
    grid = markdown_rows(text.split("## Table 9. Test accuracy")[1])
    assert [grid["3"][c] for c in ("SGD", "Momentum", "NAG")] == ["0.600", "0.700", "0.610"]
    gate = json.loads((tmp_path / "tables" / "sanity_gate.json").read_text())
    assert gate["passed"] is True and gate["sentence"] in text  # the gate's sentence, as summary.md words it
    page = (tmp_path / "tables" / "table8_summary.html").read_text()
    assert "<caption>Table 8. Accuracy of each approach" in page and "<script>" in page
    assert html_rows(page)["Fine-tuning"]["run"] == ("vgg16-finetune", False)
    block = (tmp_path / "tables" / "readme_results.md").read_text()
    claims = block.split("\n\n")[0].splitlines()  # the claims lead, one line each, verdict first
    assert "- **not measured**: Fine-tuning beats transfer (3 frozen blocks). Paper: 0.792 vs 0.778." in [
        line.split(" Ours:")[0] for line in claims
    ]  # no predictions in this fixture: no test can be run, and the line says so
    approaches = markdown_rows(block.split("\n\n")[1])
    assert approaches["Fine-tuning"]["run"] == "vgg16-finetune"
    assert list(approaches["Fine-tuning"]) == [
        "approach (Table 8)",
        "run",
        "val acc",
        "test acc [95% CI]",
        "test weighted F1 [95% CI]",
        "notes",
    ]
    assert f"Baselines: {gate['sentence']}" in block
    unmeasured = (
        "Retraining variance: no cell has two finished seeds, so retraining variance is unmeasured: no verdict."
    )
    assert unmeasured in block and unmeasured in text  # one seed a cell in this fixture
    cells = markdown_rows(block.split("\n\n")[2])
    assert [cells[f"3 frozen, {c}"]["test acc, mean ± sd [95% CI]"] for c in ("SGD", "Momentum", "NAG")] == [
        "0.600",
        "0.700",
        "0.610",
    ]  # one seed each, no predictions in this fixture: no sd, no interval
    assert (
        cells["3 frozen, SGD"]["seeds"] == "1" and cells["4 frozen, NAG"]["test acc, mean ± sd [95% CI]"] == "missing"
    )
    assert "Fine-tuning beats transfer (3 frozen blocks)" in block
    assert "Trained on:" not in block
    writer.write_all_tables(
        runs_dir, RUN_IDS, tmp_path / "again", (32, 32, 3), 4, CLASSES, machines=["AMD EPYC 9R14, 2 cores"]
    )
    assert (tmp_path / "again" / "readme_results.md").read_text().endswith("Trained on: AMD EPYC 9R14, 2 cores.\n")


def test_the_results_block_is_spliced_between_its_markers_and_an_edit_is_seen():
    readme = "intro\n<!-- results: x sha256=" + "0" * 64 + " -->\nold numbers\n<!-- end of results -->\nrest\n"
    spliced = readme_block.splice(readme, "| a | 0.700 |\n", "results/default/tables/readme_results.md")
    assert spliced.startswith("intro\n<!-- results: results/default/tables/readme_results.md sha256=")
    assert spliced.endswith("| a | 0.700 |\n<!-- end of results -->\nrest\n")
    source, text, unedited = readme_block.pasted_block(spliced)
    assert (source, text, unedited) == ("results/default/tables/readme_results.md", "| a | 0.700 |\n", True)
    assert readme_block.pasted_block(spliced.replace("0.700", "0.750"))[2] is False
    with pytest.raises(LayerscopeError, match="exactly one"):
        readme_block.splice("no markers\n", "x\n", "y")


def test_the_readmes_short_block_is_read_from_the_finished_runs_files(tmp_path):
    """Study A's claims with their verdicts (no references, no study B), the baselines, the machine, the wall time."""
    tables = tmp_path / "tables"
    for folder in (tables, tmp_path / "runs" / "a", tmp_path / "runs" / "b"):
        folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "claim": ["Transfer beats LeNet-5", "Block 3 maps are sharpest", "Onset order", "vs Deitsch"],
            "paper": ["0.778 vs 0.625", "block 3", "20/100/200", "0.8842"],
            "ours": ["+0.120", "block 2", "0/63/94", "0.825"],
            "p_value": [0.0021, "missing", 0.5, "missing"],  # as write_table writes NaN
            "verdict": ["holds", "not shown (same direction)", "holds", "reference only"],
            "study": ["A", "A", "B", "A"],
        }
    ).to_csv(tables / "comparison_paper.csv", index=False)
    gate = {"passed": False, "run": "vgg16-freeze5-momentum", "accuracy": 0.7123, "baseline_accuracy": 0.5755}
    (tables / "sanity_gate.json").write_text(json.dumps({**gate, "probe_accuracy": 0.7341}))
    # Job seconds per rule, as the cost tables write them: 4,000 + 717 s = 78.6 min
    pd.DataFrame({"rule": ["train", "tables"], "jobs": [3, 1], "total_s": [4000.0, 717.0]}).to_csv(
        tables / "cost_rules.csv", index=False
    )
    machine = {"cpu_model": "AMD EPYC (family 25, model 1)", "cpu_count": 2, "cpu_isa": ["avx2"], "onednn": True}
    for run in ("a", "b"):  # one machine, named once
        (tmp_path / "runs" / run / "provenance.json").write_text(json.dumps({"machine": machine}))
    lines = readme_block.findings_block(tmp_path).splitlines()
    assert lines[:2] == [
        "- **holds**: Transfer beats LeNet-5 (p = 0.0021).",
        "- **not shown**: Block 3 maps are sharpest.",
    ]
    assert lines[2] == (
        "- Baselines: the best VGG-16 run by validation (vgg16-freeze5-momentum) scores test accuracy 0.712, "
        "against the majority class's 0.576 and the linear probe's 0.734."
    )
    assert lines[3].startswith("- Trained on AMD EPYC (family 25, model 1)") and lines[3].count("AMD EPYC") == 1
    assert lines[3].endswith(
        ": 1 h 19 min of jobs (each job's last run, summed; a rerun of one stage counts only that stage anew)."
    )
    assert len(lines) == 4
    (tables / "sanity_gate.json").unlink()
    with pytest.raises(LayerscopeError, match=r"sanity_gate\.json: .*is the run finished"):
        readme_block.findings_block(tmp_path)


def test_make_readme_results_pastes_both_blocks_from_one_run(tmp_path, monkeypatch):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "readme_results.md").write_text("| a | 0.700 |\n")
    monkeypatch.setattr(readme_block, "findings_block", lambda run: f"- found in {Path(run).name}\n")
    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text("top\n<!-- findings: x sha256=" + "0" * 64 + " -->\n<!-- end of findings -->\n")
    results.write_text("<!-- results: x sha256=" + "0" * 64 + " -->\nold\n<!-- end of results -->\nend\n")
    readme_block.main(str(readme), str(results), str(tmp_path))
    assert readme_block.pasted_block(readme.read_text(), readme_block.FINDINGS) == (
        tmp_path.as_posix(),
        f"- found in {tmp_path.name}\n",
        True,
    )
    assert readme_block.pasted_block(results.read_text()) == (
        (tmp_path / "tables" / "readme_results.md").as_posix(),
        "| a | 0.700 |\n",
        True,
    )


def test_figures_draw_the_runs_values(runs_dir, runs, tmp_path, monkeypatch):
    drawn = []
    original = result_figures.save_figure
    monkeypatch.setattr(result_figures, "save_figure", lambda fig, path: drawn.append(fig) or original(fig, path))
    plot_validation_curves(run_files.load_histories(runs_dir, RUN_IDS), tmp_path / "curves.png")
    plot_freeze_heatmap(tables.freeze_grid(runs), tmp_path / "heatmap.png")
    (curves,), (heatmap, _colorbar) = drawn[0].axes, drawn[1].axes

    lines = {line.get_label(): line for line in curves.get_lines()}
    finished = [run_id for run_id in RUN_IDS if run_id != "vgg16-freeze4-nag"]
    assert sorted(lines) == sorted(finished)
    val = {**{r: a[1] for r, a in OTHERS.items()}, **{f"vgg16-freeze{k}-{o}": a[0] for (k, o), a in FREEZE.items()}}
    for run_id in finished:  # each run's history as write_run wrote it: 0.3, 0.5, then its val accuracy
        assert lines[run_id].get_xdata().tolist() == [1, 2, 3]
        assert lines[run_id].get_ydata().tolist() == pytest.approx([0.3, 0.5, val[run_id]])
    legend = [text.get_text() for text in curves.get_legend().get_texts()]
    assert "vgg16-freeze4-nag (missing)" in legend

    cells = heatmap.get_images()[0].get_array()  # rows: 5 .. 1 frozen blocks; columns SGD, Momentum, NAG
    by_hand = [[FREEZE.get((k, o), (0, np.nan))[1] for o in ("sgd", "momentum", "nag")] for k in (5, 4, 3, 2, 1)]
    np.testing.assert_allclose(np.ma.filled(cells, np.nan), by_hand)
    assert cells.mask.tolist() == np.isnan(by_hand).tolist()  # freeze4-nag never finished: grey, hatched
    texts = [text.get_text() for text in heatmap.texts]
    assert texts[:6] == ["0.510", "0.520", "0.530", "0.540", "0.550", "missing"]
