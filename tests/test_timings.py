"""Timings by one rule: training writes them through it, the results comparison drops them by it."""

import json

import pandas as pd
import pytest
from same_results import Differs, compare_files, compare_folders, main

from layerscope.core.errors import LayerscopeError
from layerscope.core.timings import cost_table, history_without_timings, is_cost_table, timings, without_timings


def test_timings_round_to_a_hundredth_and_refuse_a_name_the_comparison_would_keep():
    assert timings(train_seconds=3.14159, evaluation_seconds=0.126) == {
        "train_seconds": 3.14,
        "evaluation_seconds": 0.13,
    }
    with pytest.raises(LayerscopeError, match=r"end in '_seconds', got \['predict_time'\]"):
        timings(train_seconds=1.0, predict_time=2.0)


def test_without_timings_drops_exactly_the_seconds_keys():
    metrics = {"train_seconds": 1.0, "evaluation_seconds": 2.0, "fit_seconds": 3.0, "test": {"accuracy": 0.5}, "n": 4}
    assert without_timings(metrics) == {"test": {"accuracy": 0.5}, "n": 4}
    history = pd.DataFrame({"epoch": [1, 2], "loss": [0.9, 0.7], "seconds": [1.5, 1.4]})
    assert history_without_timings(history).columns.tolist() == ["epoch", "loss"]


def test_cost_tables_are_named_by_the_rule(tmp_path):
    assert cost_table("cost_rules") == "cost_rules"
    with pytest.raises(LayerscopeError, match=r"cost_<what>, got 'rule_seconds'"):
        cost_table("rule_seconds")
    assert is_cost_table(tmp_path / "cost_runs.md") and not is_cost_table(tmp_path / "table8_summary.csv")


def write_run(root, accuracy: float, seconds: float) -> None:
    """A results folder with one run (metrics, history, predictions) and a cost table, timed ``seconds``."""
    run = root / "runs" / "lenet5-tanh-sgd"
    run.mkdir(parents=True)
    metrics = {"test": {"accuracy": accuracy}, **timings(train_seconds=seconds, evaluation_seconds=seconds / 10)}
    (run / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"epoch": [1], "loss": [0.5], "seconds": [seconds]}).to_csv(run / "history.csv", index=False)
    (run / "predictions.csv").write_text("path,true,predicted\na.png,a,b\n")
    (root / "tables").mkdir()
    # A cost table as results.costs writes it: its columns never say "seconds", its name says "cost_"
    (root / "tables" / "cost_rules.csv").write_text(f"rule,jobs,total_s,max_rss_mb\ntrain,1,{seconds},{seconds * 40}\n")
    (root / "tables" / "table8_summary.csv").write_text(f"run,test_accuracy\nlenet5-tanh-sgd,{accuracy}\n")


def test_two_runs_that_differ_only_in_timings_are_the_same(tmp_path, capsys):
    write_run(tmp_path / "local", 0.5, 12.0)
    write_run(tmp_path / "slurm", 0.5, 31.0)  # every timing differs, the evaluation_seconds the old check kept too
    assert compare_folders(tmp_path / "local", tmp_path / "slurm") == 4  # metrics, history, predictions, Table 8
    assert main([str(tmp_path / "local"), str(tmp_path / "slurm")]) == 0
    assert "outputs equal: 4 files" in capsys.readouterr().out


def test_a_result_that_differs_is_named(tmp_path, capsys):
    write_run(tmp_path / "local", 0.5, 12.0)
    write_run(tmp_path / "slurm", 0.75, 12.0)
    metrics = "runs/lenet5-tanh-sgd/metrics.json"
    with pytest.raises(Differs, match=f"{metrics} differs between the two runs"):
        compare_folders(tmp_path / "local", tmp_path / "slurm")
    assert main([str(tmp_path / "local" / metrics), str(tmp_path / "slurm" / metrics)]) == 1
    assert "FAIL: metrics.json differs" in capsys.readouterr().err
    (tmp_path / "slurm" / "runs" / "lenet5-tanh-sgd" / "history.csv").unlink()
    with pytest.raises(Differs, match="history.csv is missing from the second run"):
        compare_files(
            *(tmp_path / side / "runs/lenet5-tanh-sgd/history.csv" for side in ("local", "slurm")), "history.csv"
        )
