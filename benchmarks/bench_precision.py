"""bfloat16 against float32: the same runs trained both ways, speed and accuracy (prints only).

Trains each given run id of a finished experiment's config under ``mixed_bfloat16`` and
under ``float32`` on that experiment's prepared data, then prints per run: training
seconds, test accuracy, and the paired bootstrap interval of the accuracy difference
with McNemar's p-value. Keep bf16 as a default only if the difference is within noise
(the interval covers 0) and it is faster on the machine at hand.

The paired interval and McNemar's test say whether two trained *models* differ; a run
trained twice in float32 under two seeds may differ as much. With ``--seeds`` each run
is trained under every seed in both precisions, and the mean difference is set beside
the seed-to-seed spread of each precision, the noise it has to stand out from.

``--throughput SIZE`` instead prints how many images per second a whole VGG-16 predicts
and trains (all layers, batch 32) at SIZE px in each precision, on random images;
``--policies`` chooses them (``mixed_float16`` forced onto a CPU shows why a job without a
GPU computes it in float32: ``--throughput 32 --images 64 --policies float32 mixed_float16``).

Usage: python benchmarks/bench_precision.py --config config/config.yaml \
           --runs vgg16-freeze5-momentum vgg16-freeze4-momentum [--seeds 42 43 44]
       python benchmarks/bench_precision.py --throughput 128 [--images 256] [--policies float32 mixed_float16]
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
    from layerscope.train.runs import job_settings, parse_run_id

    config = copy.deepcopy(config)
    config["training"]["mixed_precision"] = policy
    data_dir = Path("results") / config["experiment"] / "data"
    files = RunFiles(out)
    return train_run(parse_run_id(run_id, config["training"]), data_dir, files, **job_settings(run_id, config))


def _worker(args):
    config, run_id, policy, out = args
    metrics = train_once(config, run_id, policy, Path(out))
    return {"seconds": metrics["train_seconds"], "accuracy": metrics["test"]["accuracy"]}


def throughput(size: int, policy: str, images: int = 256) -> dict:
    """Images per second of VGG-16 inference and training at ``size`` px under the Keras policy named ``policy``."""
    import time

    import keras

    from layerscope.train.models import vgg16

    keras.mixed_precision.set_global_policy(policy)
    model = vgg16((size, size, 3), 4, weights="hed-bsds500")
    x = np.random.default_rng(0).uniform(0, 255, (images, size, size, 3)).astype(np.float32)
    y = np.arange(images) % 4
    model.compile(optimizer=keras.optimizers.SGD(1e-4, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.predict(x[:32], verbose=0)  # first calls trace the graphs
    model.fit(x[:32], y[:32], batch_size=32, verbose=0)
    started = time.perf_counter()
    model.predict(x, batch_size=64, verbose=0)
    predict = images / (time.perf_counter() - started)
    started = time.perf_counter()
    model.fit(x, y, batch_size=32, verbose=0)
    return {
        "policy": policy,
        "size": size,
        "predict_img_s": round(predict, 1),
        "train_img_s": round(images / (time.perf_counter() - started), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--runs", nargs="+", default=["vgg16-freeze5-momentum", "vgg16-freeze4-momentum"])
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds (default: the config's seed)")
    parser.add_argument("--throughput", type=int, metavar="SIZE", help="only time VGG-16 at SIZE px")
    parser.add_argument("--images", type=int, default=256, help="random images per throughput timing")
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
        default=["mixed_bfloat16", "float32"],
        help="the policies --throughput times, each set as is (no CPU fallback)",
    )
    args = parser.parse_args()
    if args.throughput:
        for policy in args.policies:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print(json.dumps(pool.apply(throughput, (args.throughput, policy, args.images))), flush=True)
        return
    config = yaml.safe_load(Path(args.config).read_text())
    seeds = args.seeds or [config.get("seed", 42)]
    config.setdefault("runs", {})["seeds"] = seeds
    with tempfile.TemporaryDirectory() as tmp:
        for base_id in args.runs:
            accuracies = {policy: [] for policy in POLICIES}
            for seed in seeds:
                run_id = base_id if seed == seeds[0] else f"{base_id}-seed{seed}"
                for policy, accuracy in compare_precisions(config, run_id, Path(tmp)).items():
                    accuracies[policy].append(accuracy)
            if len(seeds) > 1:
                bf16, fp32 = (np.array(accuracies[p]) for p in POLICIES)
                print(
                    json.dumps(
                        {
                            "run": base_id,
                            "seeds": seeds,
                            "bf16_mean_sd": [round(bf16.mean(), 4), round(bf16.std(ddof=1), 4)],
                            "float32_mean_sd": [round(fp32.mean(), 4), round(fp32.std(ddof=1), 4)],
                            "mean_difference_bf16_minus_fp32": round(bf16.mean() - fp32.mean(), 4),
                        }
                    )
                )


def compare_precisions(config: dict, run_id: str, tmp: Path) -> dict:
    """Train ``run_id`` in both precisions, print the paired comparison, return test accuracy per policy."""
    from paired_comparison import mcnemar, paired_difference_interval  # beside this script

    results, predictions = {}, {}
    for policy in POLICIES:
        out = tmp / f"{run_id}-{policy}"
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            results[policy] = pool.apply(_worker, ((config, run_id, policy, str(out)),))
        predictions[policy] = pd.read_csv(out / "predictions.csv")
    bf16, fp32 = (predictions[p] for p in POLICIES)
    labels = sorted(set(bf16["true"]) | set(bf16["predicted"]) | set(fp32["predicted"]))
    classes = {name: i for i, name in enumerate(labels)}
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
        ),
        flush=True,
    )
    return {policy: result["accuracy"] for policy, result in results.items()}


if __name__ == "__main__":
    main()
