"""Two finished runs of one config, one in float32 and one in bfloat16: is bfloat16 within noise?

``bench_precision.py`` retrains single runs both ways; this reads two whole results
folders of the same config made on one machine (``make reproduce`` with
``training.mixed_precision`` set to ``false``, then to ``mixed_bfloat16`` or ``auto`` on an
AMX CPU) and checks every run the two share, from what each ``metrics.json`` records
(its ``precision`` says which folder is which; a folder that mixes precisions is refused).

Per approach (a run and its seed replicates) it prints each precision's test accuracy and
balanced accuracy, mean and sd over seeds; the difference bfloat16 minus float32 paired by
seed (the same seed fixes initialisation and shuffling in both), its mean with a 95% t
interval; the pooled seed-to-seed sd it is measured against; and the training seconds of
each (their ratio is the speed-up, when neither folder was made on a busy machine). An
approach is "within noise" when its mean difference is no larger than that sd. Then the
study's claims side by side, verdict by verdict, from each folder's claims table.

Usage: python benchmarks/precision_runs.py float32/results/default bf16/results/default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from layerscope.core.render import read_table
from layerscope.train.runs import split_replicate

METRICS = ("accuracy", "balanced_accuracy")


def read_runs(results: Path) -> tuple[str, pd.DataFrame]:
    """(the precision every run computed in, one row per run: approach, seed, metrics, seconds)."""
    rows = []
    for path in sorted(results.glob("runs/*/metrics.json")):
        metrics = json.loads(path.read_text())
        approach, seed = split_replicate(metrics["run_id"])
        rows.append(
            {
                "approach": approach,
                "seed": seed,
                "precision": metrics["precision"],
                "train_seconds": metrics["train_seconds"],
                **{name: metrics["test"][name] for name in METRICS},
            }
        )
    if not rows:
        sys.exit(f"{results}: no runs/*/metrics.json")
    runs = pd.DataFrame(rows)
    precisions = sorted(set(runs["precision"]))
    if len(precisions) != 1:
        sys.exit(f"{results}: its runs computed in {', '.join(precisions)}; compare folders of one precision each")
    return precisions[0], runs


def paired(fp32: np.ndarray, bf16: np.ndarray) -> dict:
    """Mean paired difference (bf16 - fp32), its 95% t interval, and the pooled seed-to-seed sd."""
    difference = bf16 - fp32
    mean = float(difference.mean())
    if len(difference) < 2:
        return {"difference": round(mean, 4), "ci95": None, "seed_sd": None, "within_noise": None}
    half = stats.t.ppf(0.975, len(difference) - 1) * difference.std(ddof=1) / np.sqrt(len(difference))
    seed_sd = float(np.sqrt((fp32.var(ddof=1) + bf16.var(ddof=1)) / 2))
    return {
        "difference": round(mean, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
        "seed_sd": round(seed_sd, 4),
        "within_noise": bool(abs(mean) <= seed_sd),
    }


def compare(fp32: pd.DataFrame, bf16: pd.DataFrame) -> list[dict]:
    """One record per approach both folders trained, seeds paired (a seed only one has is left out)."""
    joined = fp32.merge(bf16, on=["approach", "seed"], suffixes=("_fp32", "_bf16"), how="inner")
    records = []
    for approach, runs in joined.groupby("approach", sort=True):
        record = {"approach": approach, "seeds": len(runs)}
        for name in METRICS:
            a, b = runs[f"{name}_fp32"].to_numpy(), runs[f"{name}_bf16"].to_numpy()
            record[name] = {
                "float32": [round(a.mean(), 4), round(a.std(ddof=1), 4) if len(a) > 1 else None],
                "bf16": [round(b.mean(), 4), round(b.std(ddof=1), 4) if len(b) > 1 else None],
                **paired(a, b),
            }
        seconds = runs["train_seconds_fp32"].sum(), runs["train_seconds_bf16"].sum()
        record["train_seconds"] = {"float32": round(seconds[0]), "bf16": round(seconds[1])}
        record["speedup"] = round(seconds[0] / seconds[1], 2) if seconds[1] else None
        records.append(record)
    return records


def claims(results: Path) -> pd.DataFrame | None:
    """The claims' verdicts of a results folder (``tables/comparison_paper.csv``), or None where it has none."""
    path = results / "tables" / "comparison_paper.csv"
    return read_table(path, index_col=0)[["verdict"]] if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs=2, type=Path, help="two results folders of one config, any order")
    args = parser.parse_args(argv)
    folders = {}
    for path in args.results:
        precision, runs = read_runs(path)
        folders[precision] = (runs, path)
    missing = {"float32", "mixed_bfloat16"} - set(folders)
    if missing:
        sys.exit(f"need one float32 and one mixed_bfloat16 folder; none computed in {', '.join(sorted(missing))}")
    (fp32, fp32_dir), (bf16, bf16_dir) = folders["float32"], folders["mixed_bfloat16"]
    records = compare(fp32, bf16)
    for record in records:
        print(json.dumps(record))
    within = [r["accuracy"]["within_noise"] for r in records if r["accuracy"]["within_noise"] is not None]
    differences = [r["accuracy"]["difference"] for r in records]
    print(
        f"accuracy, bf16 - float32: mean {np.mean(differences):+.4f} over {len(records)} approaches; "
        f"{sum(within)} of {len(within)} seeded approaches within their seed-to-seed sd; "
        f"{sum(d < 0 for d in differences)} lower, {sum(d > 0 for d in differences)} higher"
    )
    verdicts = [claims(fp32_dir), claims(bf16_dir)]
    if all(v is not None for v in verdicts):
        side = verdicts[0].join(verdicts[1], lsuffix=" float32", rsuffix=" bf16", how="outer")
        print(side.to_string())
        print(f"claims with the same verdict: {int((side.iloc[:, 0] == side.iloc[:, 1]).sum())} of {len(side)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
