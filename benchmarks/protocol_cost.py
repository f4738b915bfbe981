"""What each choice of cells x seeds costs under the single protocol, from a finished experiment's own runs.

Reads every finished freeze-sweep run of an experiment folder (``history.csv`` for the
seconds per epoch and the epochs run, ``benchmarks/train/<run>.tsv`` for the job's
wall seconds) and prints per depth: seconds per epoch, epochs run (early stopping
decides), job seconds and seconds outside the epochs. Then, for each choice of seeded
cells, the training minutes it costs (depths x optimizers x seeds x job seconds of that
depth) and the expected half-width of a cell mean's 95% interval with that many seeds
(sqrt(sd_seed^2 / seeds + p(1 - p) / images), sd_seed the measured spread across seeds
where replicates exist). The machine the runs trained on is read from their provenance.

Usage: python benchmarks/protocol_cost.py results/default [--images 657] [--seed-sd 0.03]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
from rule_seconds import resumed, trained_on, training_seconds

from layerscope.train.runs import parse_name, split_replicate

OPTIMIZERS = ("sgd", "momentum", "nag")


def depth_costs(results: Path) -> pd.DataFrame:
    """Per finished freeze run: depth, optimizer, seed, epochs run, median epoch seconds, job seconds."""
    rows = []
    for history_file in sorted((results / "runs").glob("vgg16-freeze*/history.csv")):
        run_id = history_file.parent.name
        family, depth, optimizer = parse_name(run_id)
        timing = training_seconds(results, run_id)
        if family != "freeze" or timing is None:
            continue
        job, epochs = timing
        metrics = json.loads(history_file.with_name("metrics.json").read_text())
        rows.append(
            {
                "run": run_id,
                "depth": depth,
                "optimizer": optimizer,
                "replicate": split_replicate(run_id)[1] is not None,
                "epochs": len(epochs),
                "epoch_s": float(epochs.median()),
                "job_s": job,
                "outside_epochs_s": job - float(epochs.sum()),
                "resumed": resumed(job, epochs),
                "test_accuracy": float(metrics["test"]["accuracy"]),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--images", type=int, default=657, help="test images (elpv default: 657)")
    parser.add_argument("--accuracy", type=float, default=0.70, help="typical test accuracy p")
    parser.add_argument("--seed-sd", type=float, default=None, help="seed sd when no replicates finished")
    args = parser.parse_args()
    print(f"Trained on: {'; '.join(trained_on(args.results)) or 'unknown (no training provenance)'}\n")
    runs = depth_costs(args.results)
    if runs.empty:
        raise SystemExit(f"no finished freeze run with a benchmark record under {args.results}")
    print(runs.round(3).to_string(index=False))
    per_depth = runs.groupby("depth").agg(
        runs=("run", "size"), epochs=("epochs", "mean"), epoch_s=("epoch_s", "median")
    )
    per_depth["job_s"] = runs[~runs["resumed"]].groupby("depth")["job_s"].mean()
    print(
        "\nPer depth (means over its finished runs; job seconds of the unresumed ones):\n"
        + per_depth.round(1).to_string()
    )
    runs["cell"] = runs["run"].map(lambda run_id: split_replicate(run_id)[0])
    spread = runs.groupby("cell")["test_accuracy"].agg(["size", "std"]).query("size > 1")
    measured = float(spread["std"].mean()) if len(spread) else None
    seed_sd = args.seed_sd if args.seed_sd is not None else (measured if measured is not None else 0.03)
    source = "--seed-sd" if args.seed_sd is not None else (f"{len(spread)} seeded cells" if measured else "assumed")
    print(f"\nSeed sd of test accuracy: {seed_sd:.3f} ({source})")
    image_var = args.accuracy * (1 - args.accuracy) / args.images
    choices = {
        "every cell, 1 seed": {k: {opt: 1 for opt in OPTIMIZERS} for k in per_depth.index},
        "every cell, 3 seeds": {k: {opt: 3 for opt in OPTIMIZERS} for k in per_depth.index},
        "momentum 3 seeds, SGD/NAG 1": {k: {"sgd": 1, "momentum": 3, "nag": 1} for k in per_depth.index},
        "momentum 3 seeds at every depth, depth 5 all 3 seeds, rest 1": {
            k: {"sgd": 3 if k == 5 else 1, "momentum": 3, "nag": 3 if k == 5 else 1} for k in per_depth.index
        },
    }
    lines = []
    for name, plan in choices.items():
        seconds = sum(per_depth.loc[k, "job_s"] * n for k, cells in plan.items() for n in cells.values())
        width = {n: 1.96 * math.sqrt(seed_sd**2 / n + image_var) for n in (1, 3)}
        lines.append(
            f"{name}: {seconds / 60:.0f} min of training; 95% half-width of a cell mean "
            f"±{width[1]:.3f} with 1 seed, ±{width[3]:.3f} with 3 (seed sd {seed_sd:.3f}, {args.images} images)"
        )
    print("\nChoices (sweep training only):\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
