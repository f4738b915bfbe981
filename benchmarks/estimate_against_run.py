"""Hold the cost estimate against a finished run of the same config on this machine kind.

The estimate is a rate model (seconds per epoch from a few timed training steps of each
trained part) times an epoch model (how many epochs early stopping leaves). This prints both against what the run
measured, per architecture, so a wrong total can be traced to the part that is wrong:
measured and predicted seconds per epoch (from ``history.csv``), epochs run against the
likely count, and the training jobs' seconds against the likely total.

The device is timed here, in the precision the run recorded: run it on the machine kind
the results came from (their CPU is printed beside this one's) with the cores idle.

Usage: ``python benchmarks/estimate_against_run.py results/default [--config config/config.yaml]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd
from rule_seconds import trained_on

from layerscope.results.costs import training_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a finished run's results folder, e.g. results/default")
    parser.add_argument("--config", default="config/config.yaml", help="the config that run was made with")
    args = parser.parse_args(argv)

    from layerscope.core.scripting import use_onednn

    use_onednn()
    from layerscope.train.estimate import class_count, image_counts, measure_device, training_job_costs
    from layerscope.train.precision import use_policy
    from layerscope.train.resolved import load_config
    from layerscope.train.runs import split_replicate

    config = load_config(args.config)
    metrics = {p.parent.name: json.loads(p.read_text()) for p in sorted(args.results.glob("runs/*/metrics.json"))}
    precisions = {m.get("precision", "float32") for m in metrics.values()}
    if len(precisions) != 1:
        raise SystemExit(f"{args.results} mixes precisions {sorted(precisions)}: compare one at a time")
    print("run made on:", "; ".join(trained_on(args.results)))
    precision = use_policy(precisions.pop())
    classes, images = class_count(config), image_counts(config)
    device = measure_device(config, classes, precision)
    costs = training_job_costs(config, list(metrics), images, classes)
    print(f"timed here in {precision}: each trained part's steps, and {device.flops_per_second / 1e9:.0f} GFLOP/s")

    rows = []
    for cost in costs:
        if (timing := training_seconds(args.results, cost.job)) is None:
            continue
        job_s, epoch_seconds, _ = timing
        earliest, likely, _ = cost.epochs
        rows.append(
            {
                "run": split_replicate(cost.job)[0],
                "epoch_s": float(epoch_seconds.mean()),
                "predicted_epoch_s": cost.fixed_and_epoch_seconds(device)[1],
                "epochs": len(epoch_seconds),
                "likely_epochs": likely,
                "earliest_epochs": earliest,
                "job_s": job_s,
                "predicted_job_s": cost.seconds(device)[1],
            }
        )
    table = pd.DataFrame(rows)
    per_run = table.groupby("run").agg(
        seeds=("run", "size"),
        epoch_s=("epoch_s", "mean"),
        predicted_epoch_s=("predicted_epoch_s", "first"),
        epochs=("epochs", "mean"),
        likely_epochs=("likely_epochs", "first"),
        job_s=("job_s", "sum"),
        predicted_job_s=("predicted_job_s", "sum"),
    )
    per_run["rate_ratio"] = per_run["predicted_epoch_s"] / per_run["epoch_s"]
    per_run["epochs_ratio"] = per_run["likely_epochs"] / per_run["epochs"]
    print(per_run.sort_values("job_s", ascending=False).round(2).to_markdown())
    measured, predicted = table["job_s"].sum(), table["predicted_job_s"].sum()
    weights = table["epoch_s"] * table["epochs"]
    print(
        f"\ntraining jobs: measured {measured / 60:.1f} min, predicted (likely, epochs only) {predicted / 60:.1f} min; "
        f"rate ratio predicted/measured weighted by measured epoch time "
        f"{(table['predicted_epoch_s'] * table['epochs']).sum() / weights.sum():.2f}, "
        f"median over runs {statistics.median(per_run['rate_ratio']):.2f}; "
        f"epochs likely/run {table['likely_epochs'].sum() / table['epochs'].sum():.2f}; "
        f"median epochs run / (patience + 1) {statistics.median(table['epochs'] / table['earliest_epochs']):.2f}"
    )


if __name__ == "__main__":
    main()
