"""Where a finished run's time went: job seconds per rule, and each training job's time outside its epochs.

Reads the Snakemake ``benchmark:`` records of an experiment folder
(``benchmarks/<rule>.tsv`` and ``benchmarks/<rule>/<run>.tsv``) and prints per rule the
job count, total, mean and largest job seconds and the peak memory; then, for each
training job, its seconds, the sum of its epochs' seconds (``history.csv``) and the
difference (imports, model build, weight loading, evaluation, writing), split into the
evaluation's forward passes over every split (``evaluation_seconds`` in ``metrics.json``,
work the outputs need: Table 8's train, validation and test accuracy) and the rest. With
``--against OTHER`` the same rules of another finished run stand beside them with the
ratio OTHER / this. Each folder's machine is read from its training provenance and printed.

Usage: python benchmarks/rule_seconds.py results/default [--against results/default-before]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from layerscope.core.machine import machines_of


def job_records(results: Path) -> pd.DataFrame:
    """One row per benchmarked job: rule, job (run id or the rule), seconds, peak memory (MB)."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        relative = tsv.relative_to(results / "benchmarks")
        rule = relative.parts[0] if len(relative.parts) > 1 else tsv.stem
        record = pd.read_csv(tsv, sep="\t").iloc[-1]
        rows.append({"rule": rule, "job": tsv.stem, "s": float(record["s"]), "max_rss_mb": float(record["max_rss"])})
    if not rows:
        raise SystemExit(f"no benchmark record under {results / 'benchmarks'}: is it a finished experiment folder?")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Job count, total, mean and largest seconds and peak memory per rule, largest total first."""
    seconds = {"total_s": ("s", "sum"), "mean_s": ("s", "mean"), "max_s": ("s", "max")}
    table = jobs.groupby("rule").agg(jobs=("s", "size"), **seconds, max_rss_mb=("max_rss_mb", "max"))
    return table.sort_values("total_s", ascending=False)


def trained_on(results: Path) -> list[str]:
    """The machines a finished experiment's training jobs ran on, from their provenance."""
    return machines_of(json.loads(p.read_text()) for p in sorted(Path(results).glob("runs/*/provenance.json")))


def training_seconds(results: Path, run_id: str) -> tuple[float, pd.Series, float] | None:
    """A finished training job's wall seconds (its benchmark record), its epochs' seconds
    (``history.csv``) and its evaluation's seconds (``metrics.json``; NaN from runs that predate it)."""
    benchmark = results / "benchmarks" / "train" / f"{run_id}.tsv"
    run = results / "runs" / run_id
    if not (benchmark.is_file() and (run / "history.csv").is_file() and (run / "metrics.json").is_file()):
        return None
    evaluation = json.loads((run / "metrics.json").read_text()).get("evaluation_seconds", float("nan"))
    job_s = float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1])
    return job_s, pd.read_csv(run / "history.csv")["seconds"], evaluation


def resumed(job_s: float, epochs: pd.Series) -> bool:
    """A job shorter than its own epochs resumed a killed attempt: its record times only the last attempt."""
    return job_s < float(epochs.sum())


def outside_epochs(results: Path, jobs: pd.DataFrame) -> pd.DataFrame:
    """Per training job: job seconds, epochs, seconds in epochs and outside them (evaluation and the rest)."""
    rows = []
    for run_id in jobs.query("rule == 'train'")["job"]:
        if (timing := training_seconds(results, run_id)) is None:
            continue
        job_s, epochs, evaluation_s = timing
        outside_s = job_s - float(epochs.sum())
        rows.append(
            {
                "run": run_id,
                "job_s": job_s,
                "epochs": len(epochs),
                "epoch_s": float(epochs.median()),
                "in_epochs_s": float(epochs.sum()),
                "outside_s": outside_s,
                "evaluation_s": evaluation_s,
                "other_s": outside_s - evaluation_s,
                "resumed": resumed(job_s, epochs),
            }
        )
    return pd.DataFrame(rows).sort_values("outside_s", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--against", type=Path, help="another finished experiment folder, shown beside this one")
    args = parser.parse_args()
    for folder in (args.results, args.against):
        if folder is not None:
            print(f"{folder} trained on: {'; '.join(trained_on(folder)) or 'unknown (no training provenance)'}")
    print()
    jobs = job_records(args.results)
    rules = per_rule(jobs)
    if args.against:
        other = per_rule(job_records(args.against))
        rules[f"{args.against.name}_total_s"] = other["total_s"].reindex(rules.index)
        rules["ratio"] = rules[f"{args.against.name}_total_s"] / rules["total_s"]
    print(f"Job seconds per rule ({args.results}; {jobs['s'].sum() / 60:.1f} job minutes in all):")
    print(rules.round(2).to_string())
    training = outside_epochs(args.results, jobs)
    if not training.empty:
        whole = training[~training["resumed"]]
        print(
            f"\nTraining jobs: {whole['outside_s'].sum():.0f} of {whole['job_s'].sum():.0f} s outside their "
            f"epochs ({whole['outside_s'].sum() / whole['job_s'].sum():.0%}; resumed jobs left out), "
            f"{whole['evaluation_s'].sum(min_count=1):.0f} s of them the evaluation's forward passes "
            "(nan: not recorded); most first:"
        )
        print(training.round(1).to_string(index=False))


if __name__ == "__main__":
    main()
