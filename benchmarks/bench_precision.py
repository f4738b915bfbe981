"""bfloat16 against float32: the same runs trained both ways, speed and accuracy (prints only).

Trains each given run id of a finished experiment's config under ``mixed_bfloat16`` and
under ``float32`` on that experiment's prepared data, then prints per run: training
seconds, test accuracy, and the paired bootstrap interval of the accuracy difference
with McNemar's p-value. Keep bf16 as a default only if the difference is within noise
(the interval covers 0) and it is faster on the machine at hand.

Usage: python benchmarks/bench_precision.py --config config/config.yaml \
           --runs vgg16-freeze5-momentum vgg16-freeze4-momentum
(run ``snakemake <results>/data/manifest.csv`` first, so the data stage exists)
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

POLICIES = ("mixed_bfloat16", False)


def train_once(config: dict, run_id: str, policy, out: Path) -> dict:
    """One run under one precision policy, in a fresh process (Keras' policy is global)."""
    from layerscope.train.run import RunFiles, train_run
    from layerscope.train.runs import parse_run_id

    config = copy.deepcopy(config)
    config["training"]["mixed_precision"] = policy
    data_dir = Path("results") / config["experiment"] / "data"
    files = RunFiles(out)
    return train_run(parse_run_id(run_id, config["training"]), config, data_dir, files)


def _worker(args):
    config, run_id, policy, out = args
    metrics = train_once(config, run_id, policy, Path(out))
    return {"seconds": metrics["train_seconds"], "accuracy": metrics["test"]["accuracy"]}


def main() -> None:
    from layerscope.results.statistics import mcnemar, paired_difference_interval

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--runs", nargs="+", default=["vgg16-freeze5-momentum", "vgg16-freeze4-momentum"])
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in args.runs:
            results, predictions = {}, {}
            for policy in POLICIES:
                out = Path(tmp) / f"{run_id}-{policy}"
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    results[policy] = pool.apply(_worker, ((config, run_id, policy, str(out)),))
                predictions[policy] = pd.read_csv(out / "predictions.csv")
            bf16, fp32 = (predictions[p] for p in POLICIES)
            classes = {
                name: i
                for i, name in enumerate(sorted(set(bf16["true"]) | set(bf16["predicted"]) | set(fp32["predicted"])))
            }
            y = bf16["true"].map(classes).to_numpy()
            a, b = bf16["predicted"].map(classes).to_numpy(), fp32["predicted"].map(classes).to_numpy()
            difference = paired_difference_interval(y, a, b, seed=0)
            print(
                json.dumps(
                    {
                        "run": run_id,
                        "bf16": results["mixed_bfloat16"],
                        "float32": results[False],
                        "accuracy_difference_bf16_minus_fp32": round(difference.estimate, 4),
                        "ci95": [round(difference.low, 4), round(difference.high, 4)],
                        "mcnemar_p": round(mcnemar(y, a, b).p_value, 4),
                        "agreement": float(np.mean(a == b)),
                    }
                )
            )


if __name__ == "__main__":
    main()
