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

from layerscope.core.machine import machines_of
from layerscope.results.costs import job_records, per_rule, training_costs


def trained_on(results: Path) -> list[str]:
    """The machines a finished experiment's training jobs ran on, from their provenance."""
    return machines_of(json.loads(p.read_text()) for p in sorted(Path(results).glob("runs/*/provenance.json")))


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
    training = training_costs(args.results, jobs)
    if not training.empty:
        whole = training[~training["resumed"]].assign(outside_s=lambda t: t["job_s"] - t["in_epochs_s"])
        print(
            f"\nTraining jobs: {whole['outside_s'].sum():.0f} of {whole['job_s'].sum():.0f} s outside their "
            f"epochs ({whole['outside_s'].sum() / whole['job_s'].sum():.0%}; resumed jobs left out), "
            f"{whole['evaluation_s'].sum(min_count=1):.0f} s of them the evaluation's forward passes "
            "(nan: not recorded); most first:"
        )
        print(training.sort_values("other_s", ascending=False).round(1).to_string(index=False))


if __name__ == "__main__":
    main()
