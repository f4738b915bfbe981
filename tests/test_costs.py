"""The cost tables read Snakemake's own benchmark records: known seconds in, known sums out."""

import json

import pandas as pd
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.core.timings import is_cost_table
from layerscope.results import costs

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def record(path, seconds, rss=100.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t0\t0\n")


def finished_run(results, run_id, job_s, epoch_seconds, evaluation_s):
    record(results / "benchmarks" / "train" / f"{run_id}.tsv", job_s, rss=500.0)
    run = results / "runs" / run_id
    run.mkdir(parents=True)
    pd.DataFrame({"epoch": range(1, len(epoch_seconds) + 1), "seconds": epoch_seconds}).to_csv(
        run / "history.csv", index=False
    )
    (run / "metrics.json").write_text(json.dumps({"evaluation_seconds": evaluation_s}))


def test_rules_runs_and_seeds_are_summed_from_the_records(tmp_path):
    finished_run(tmp_path, "vgg16-finetune", 100.0, [20.0, 30.0, 10.0], 5.0)
    finished_run(tmp_path, "vgg16-finetune-seed43", 140.0, [30.0, 30.0, 30.0, 30.0], 5.0)
    finished_run(tmp_path, "lenet5-tanh-sgd", 12.0, [4.0, 4.0], 1.0)
    record(tmp_path / "benchmarks" / "prepare_data.tsv", 30.0)
    jobs = costs.job_records(tmp_path)
    rules = costs.per_rule(jobs)
    assert rules.loc["train", "jobs"] == 3 and rules.loc["train", "total_s"] == pytest.approx(252.0)
    assert rules.loc["train", "max_rss_mb"] == 500.0 and rules.index[0] == "train"  # largest total first
    training = costs.training_costs(tmp_path, jobs).set_index("job")
    # 100 s job: 60 s in epochs, 5 s evaluation, 35 s elsewhere
    assert training.loc["vgg16-finetune", ["in_epochs_s", "evaluation_s", "other_s"]].tolist() == [60.0, 5.0, 35.0]
    assert training.loc["vgg16-finetune-seed43", "seed_replicate"]
    runs = costs.per_run(costs.training_costs(tmp_path, jobs))
    assert runs.loc["vgg16-finetune", "seeds"] == 2
    assert runs.loc["vgg16-finetune", "seconds_per_seed"] == pytest.approx(120.0)
    assert runs.loc["vgg16-finetune", "seconds_all_seeds"] == pytest.approx(240.0)
    assert runs.loc["vgg16-finetune", "epochs_mean"] == pytest.approx(3.5)
    assert list(runs.index) == ["vgg16-finetune", "lenet5-tanh-sgd"]


def test_a_job_shorter_than_its_epochs_is_marked_resumed(tmp_path):
    finished_run(tmp_path, "lenet5-tanh-sgd", 5.0, [4.0, 4.0], 1.0)
    training = costs.training_costs(tmp_path, costs.job_records(tmp_path))
    assert training["resumed"].tolist() == [True]


def test_a_folder_without_records_is_named(tmp_path):
    with pytest.raises(LayerscopeError, match="no benchmark record under"):
        costs.job_records(tmp_path)


def test_cost_tables_are_written_with_the_machine_in_the_caption(tmp_path):
    finished_run(tmp_path, "lenet5-tanh-sgd", 12.0, [4.0, 4.0], 1.0)
    written = costs.write_cost_tables(tmp_path, tmp_path / "tables", ["AMD EPYC (avx2), 2 cores"])
    assert {p.name for p in written} >= {"cost_rules.md", "cost_runs.csv"}
    assert all(is_cost_table(p) for p in written)  # so comparing two runs' results leaves them out
    assert "on AMD EPYC (avx2), 2 cores" in (tmp_path / "tables" / "cost_runs.md").read_text()
