"""bfloat16 against float32 over two results folders (benchmarks/precision_runs.py), on hand-worked runs."""

import json

import numpy as np
import pytest
from precision_runs import compare, main, paired, read_runs


def write_run(results, run_id, precision, accuracy, balanced, seconds):
    run = results / "runs" / run_id
    run.mkdir(parents=True)
    metrics = {
        "run_id": run_id,
        "precision": precision,
        "train_seconds": seconds,
        "test": {"accuracy": accuracy, "balanced_accuracy": balanced},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_paired_difference_by_hand():
    fp32, bf16 = np.array([0.70, 0.60, 0.65]), np.array([0.68, 0.61, 0.62])
    out = paired(fp32, bf16)
    # differences -0.02, +0.01, -0.03: mean -0.01333, sd 0.020817, t(0.975, 2) = 4.302653
    assert out["difference"] == pytest.approx(-0.0133, abs=1e-4)
    half = 4.302653 * 0.020817 / np.sqrt(3)
    assert out["ci95"] == pytest.approx([-0.01333 - half, -0.01333 + half], abs=1e-4)
    # seed variances 0.0025 and 0.0014333 (0.68, 0.61, 0.62): pooled sqrt(0.0019667) = 0.044347
    assert out["seed_sd"] == pytest.approx(0.0443, abs=1e-4)
    assert out["within_noise"] is True
    assert paired(np.array([0.7, 0.71, 0.69]), np.array([0.6, 0.61, 0.59]))["within_noise"] is False
    assert paired(np.array([0.7]), np.array([0.6]))["ci95"] is None


def test_compare_pairs_seeds_and_reports_the_speedup(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, (acc32, acc16) in zip((None, 43, 44), ((0.70, 0.68), (0.60, 0.61), (0.65, 0.62)), strict=True):
        run = "vgg16-finetune" + (f"-seed{seed}" if seed else "")
        write_run(a, run, "float32", acc32, acc32 - 0.1, 90.0)
        write_run(b, run, "mixed_bfloat16", acc16, acc16 - 0.1, 20.0)
    write_run(a, "lenet5-tanh-sgd-seed44", "float32", 0.5, 0.4, 10.0)  # only in one folder: left out
    (precision_a, runs_a), (precision_b, runs_b) = read_runs(a), read_runs(b)
    assert (precision_a, precision_b) == ("float32", "mixed_bfloat16")
    [record] = compare(runs_a, runs_b)
    assert record["approach"] == "vgg16-finetune" and record["seeds"] == 3
    assert record["accuracy"]["float32"] == [0.65, 0.05]
    assert record["accuracy"]["difference"] == pytest.approx(-0.0133, abs=1e-4)
    assert record["balanced_accuracy"]["difference"] == pytest.approx(-0.0133, abs=1e-4)
    assert record["train_seconds"] == {"float32": 270, "bf16": 60} and record["speedup"] == 4.5


def test_a_folder_of_mixed_precisions_is_refused(tmp_path, capsys):
    write_run(tmp_path / "a", "lenet5-tanh-sgd", "float32", 0.5, 0.4, 1.0)
    write_run(tmp_path / "a", "vgg16-finetune", "mixed_bfloat16", 0.5, 0.4, 1.0)
    with pytest.raises(SystemExit, match="computed in float32, mixed_bfloat16"):
        read_runs(tmp_path / "a")
    write_run(tmp_path / "b", "lenet5-tanh-sgd", "float32", 0.5, 0.4, 1.0)
    with pytest.raises(SystemExit, match="none computed in mixed_bfloat16"):
        main([str(tmp_path / "b"), str(tmp_path / "b")])
