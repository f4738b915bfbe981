"""Early stopping's patience chosen on validation histories (prints a table and the pick).

A run trained to a fixed cap with no early stopping holds, in its validation losses, the
run every shorter patience would have made: early stopping with patience p stops after p
epochs without a lower validation loss and keeps the best epoch's weights, which is a
function of the history alone. So one no-stopping run per seed (benchmarks/patience_study.yaml)
prices every patience at once. Per family and patience, the table gives each seed's
stopping epoch, the epoch whose weights it keeps, and that epoch's validation loss and
accuracy against the lowest validation loss within the cap.

The pick: the smallest patience that, on every seed of the family, keeps an epoch whose
validation loss is within ``--tolerance`` (0.01) of the lowest the run reached within the
cap: a later improvement smaller than that is not worth the wait. Where a patience would
not have stopped a run before the cap, it keeps the cap's best, so the cap must be long
enough to see the improvements that matter.
The test split is never read.

Usage (after the study's runs):
    python benchmarks/select_patience.py results/patience-study --check results/default --config config/config.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from layerscope.train.resolved import load_config
from layerscope.train.runs import parse_name, parse_run_id, run_patience
from layerscope.train.stopping import early_stop

PATIENCES = tuple(range(2, 11))


def patience_table(histories: dict[str, pd.DataFrame], patiences=PATIENCES) -> pd.DataFrame:
    """One row per run and patience: where it stops, the epoch it keeps, and how far from the cap's best."""
    rows = []
    for run, history in histories.items():
        losses = history["val_loss"].tolist()
        lowest = min(losses)
        for patience in patiences:
            stopped, kept = early_stop(losses, patience)
            rows.append(
                {
                    "family": parse_name(run)[0],
                    "run": run,
                    "patience": patience,
                    "epochs_run": stopped,
                    "kept_epoch": kept,
                    "stops_before_cap": stopped < len(losses),
                    "val_loss": losses[kept - 1],
                    "excess_loss": losses[kept - 1] - lowest,
                    "val_accuracy": float(history["val_accuracy"].iloc[kept - 1]),
                    "best_epoch_in_cap": losses.index(lowest) + 1,
                    "cap": len(losses),
                }
            )
    return pd.DataFrame(rows)


def pick(table: pd.DataFrame, tolerance: float) -> dict[str, int | None]:
    """Per family: the smallest patience that keeps every seed within ``tolerance`` of its lowest loss."""
    picks = {}
    for family, rows in table.groupby("family"):
        worst = rows.groupby("patience")["excess_loss"].max()
        passing = worst.index[worst <= tolerance]
        picks[family] = int(passing.min()) if len(passing) else None
    return picks


def read_histories(results: Path) -> dict[str, pd.DataFrame]:
    """Every run's validation history under ``results/runs``."""
    return {path.parent.name: pd.read_csv(path) for path in sorted((results / "runs").glob("*/history.csv"))}


def check_against(results: Path, training: dict) -> tuple[int, int]:
    """(agreeing, runs): recorded early-stopped runs whose epochs and best epoch the simulation reproduces.

    ``training`` is the ``training`` section of the config the run was trained with.
    """
    agree = total = 0
    for run, history in read_histories(results).items():
        health = json.loads((results / "runs" / run / "metrics.json").read_text())["health"]
        if not health["stopped_early"]:
            continue
        total += 1
        patience = run_patience(parse_run_id(run, training), training["early_stopping_patience"])
        agree += early_stop(history["val_loss"].tolist(), patience) == (health["epochs_run"], health["best_epoch"])
    return agree, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="results/<experiment> of the no-stopping runs")
    parser.add_argument("--tolerance", type=float, default=0.01, help="validation loss above the lowest")
    parser.add_argument("--check", type=Path, help="a finished run's results, to check the rule against its runs")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"), help="the config --check ran")
    args = parser.parse_args()

    if args.check:
        agree, total = check_against(args.check, load_config(args.config)["training"])
        print(f"the rule reproduces {agree} of {total} early-stopped runs of {args.check}")
    table = patience_table(read_histories(args.study))
    summary = table.groupby(["family", "patience"]).agg(
        seeds=("run", "count"),
        stop_before_cap=("stops_before_cap", "sum"),
        epochs_mean=("epochs_run", "mean"),
        epochs_max=("epochs_run", "max"),
        excess_loss_max=("excess_loss", "max"),
        val_accuracy_mean=("val_accuracy", "mean"),
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    for family, patience in pick(table, args.tolerance).items():
        print(
            f"{family}: patience {patience or 'none of ' + str(list(PATIENCES))} (the smallest that keeps every"
            f" seed within {args.tolerance} of its lowest validation loss)"
        )


if __name__ == "__main__":
    main()
