"""What a finished run cost: job seconds per rule and per training run, from Snakemake's own records.

Snakemake's ``benchmark:`` files (``benchmarks/<rule>.tsv``, ``benchmarks/<rule>/<job>.tsv``)
time every heavy job; training jobs' ``history.csv`` and ``metrics.json`` split a job's time
into epochs, the evaluation's forward passes, and the rest (imports, model build, writing).
The cost tables are what a user reads before changing the grid: what a rule, a run and
each extra seed of it cost on the machine named beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from layerscope.core.errors import LayerscopeError
from layerscope.core.timings import cost_table
from layerscope.train.runs import split_replicate


def job_records(results: Path) -> pd.DataFrame:
    """One row per benchmarked job: rule, job (run id or the rule), seconds, peak memory (MB).

    Raises:
        LayerscopeError: the folder holds no benchmark record.
    """
    rows = []
    for tsv in sorted((Path(results) / "benchmarks").rglob("*.tsv")):
        relative = tsv.relative_to(Path(results) / "benchmarks")
        rule = relative.parts[0] if len(relative.parts) > 1 else tsv.stem
        record = pd.read_csv(tsv, sep="\t").iloc[-1]
        rows.append({"rule": rule, "job": tsv.stem, "s": float(record["s"]), "max_rss_mb": float(record["max_rss"])})
    if not rows:
        raise LayerscopeError(f"no benchmark record under {Path(results) / 'benchmarks'}: is the run finished?")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Job count, total, mean and largest seconds and peak memory per rule, largest total first."""
    seconds = {"total_s": ("s", "sum"), "mean_s": ("s", "mean"), "max_s": ("s", "max")}
    table = jobs.groupby("rule").agg(jobs=("s", "size"), **seconds, max_rss_mb=("max_rss_mb", "max"))
    return table.sort_values("total_s", ascending=False)


def training_seconds(results: Path, run_id: str) -> tuple[float, pd.Series, float] | None:
    """A training job's wall seconds, its epochs' seconds and its evaluation's; None if unfinished.

    From its benchmark record, ``history.csv`` and ``metrics.json``.
    """
    benchmark = Path(results) / "benchmarks" / "train" / f"{run_id}.tsv"
    run = Path(results) / "runs" / run_id
    if not (benchmark.is_file() and (run / "history.csv").is_file() and (run / "metrics.json").is_file()):
        return None
    evaluation = json.loads((run / "metrics.json").read_text()).get("evaluation_seconds", float("nan"))
    job_s = float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1])
    return job_s, pd.read_csv(run / "history.csv")["seconds"], evaluation


def resumed(job_s: float, epochs: pd.Series) -> bool:
    """A job shorter than its own epochs resumed a killed attempt: its record times only the last attempt."""
    return job_s < float(epochs.sum())


def training_costs(results: Path, jobs: pd.DataFrame) -> pd.DataFrame:
    """Per training job: its run, job seconds, epochs, and where the seconds went.

    Columns: run and whether it is a seed replicate, job seconds, epochs run, median epoch
    seconds, seconds in epochs, in the evaluation and elsewhere, and ``resumed`` (the record
    times the last attempt only).
    """
    rows = []
    for run_id in jobs.query("rule == 'train'")["job"]:
        if (timing := training_seconds(results, run_id)) is None:
            continue
        job_s, epochs, evaluation_s = timing
        base, seed = split_replicate(run_id)
        outside_s = job_s - float(epochs.sum())
        rows.append(
            {
                "job": run_id,
                "run": base,
                "seed_replicate": seed is not None,
                "job_s": job_s,
                "epochs": len(epochs),
                "epoch_s": float(epochs.median()),
                "in_epochs_s": float(epochs.sum()),
                "evaluation_s": evaluation_s,
                "other_s": outside_s - evaluation_s,
                "resumed": resumed(job_s, epochs),
            }
        )
    columns = ["job", "run", "seed_replicate", "job_s", "epochs", "epoch_s", "in_epochs_s", "evaluation_s"]
    return pd.DataFrame(rows, columns=[*columns, "other_s", "resumed"])


def per_run(training: pd.DataFrame) -> pd.DataFrame:
    """Per run of the grid: its seeds, the mean seconds of one seed, and what all its seeds cost together."""
    grouped = training.groupby("run")
    table = pd.DataFrame(
        {
            "seeds": grouped.size(),
            "epochs_mean": grouped["epochs"].mean(),
            "epoch_s": grouped["epoch_s"].median(),
            "seconds_per_seed": grouped["job_s"].mean(),
            "seconds_all_seeds": grouped["job_s"].sum(),
        }
    )
    return table.sort_values("seconds_all_seeds", ascending=False)


def write_cost_tables(results: Path, out_dir: Path, machines: list[str]) -> list[Path]:
    """Write ``cost_rules`` (per rule) and ``cost_runs`` (per run, per seed) tables, each captioned with the machine."""
    from layerscope.core.render import write_table

    jobs = job_records(results)
    where = "; ".join(machines) or "machine not recorded"
    rules = per_rule(jobs).round(2)
    runs = per_run(training_costs(results, jobs)).round(2)
    return [
        *write_table(
            rules,
            Path(out_dir) / cost_table("cost_rules"),
            caption=f"Job seconds per rule ({jobs['s'].sum() / 60:.1f} job minutes in all), on {where}.",
        ),
        *write_table(
            runs,
            Path(out_dir) / cost_table("cost_runs"),
            caption=f"Training seconds per run: one seed, and all its seeds together, on {where}.",
        ),
    ]
