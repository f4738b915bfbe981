"""Job seconds of the three explanation rules under this checkout's code and another commit's, side by side.

Runs the rules explain, explanation_quality and feature_maps of one finished run through
Snakemake, as a default run does (a fresh process per job, imports and model loading
included), with this checkout's code and with ``--against``'s (a temporary git worktree,
its ``src`` first on ``PYTHONPATH``), alternating the two (old, new, new, old, ...) so a
drift in the machine's speed falls on both. Each attempt works on a hard-linked copy of
the experiment folder with the run's explanations removed, at ``--cores 1`` so the jobs
run one at a time. Prints each rule's job seconds per attempt, the ratio of the medians
(new / old) and whether the two versions' maps and quality tables are identical. Then the
floor under the explain rule: its LIME forward passes (explained images x
``explain.lime.num_samples``) at the rate the run's model reaches in LIME's batches, in
GFLOP/s (multiply-adds counted from the layers) beside a matrix product in the same process.

Usage: python benchmarks/explain_rules_against.py RESULTS --against COMMIT
       [--run vgg16-freeze3-momentum] [--config CONFIG] [--old-config CONFIG] [--rounds 2]
       python benchmarks/explain_rules_against.py RESULTS --rounds 0 [--run RUN] [--config CONFIG]
RESULTS is a finished experiment folder (results/<experiment>) holding the run, its data
and the config's CAM run; CONFIG names that experiment. The other commit reads
``--old-config``, by default its own copy of CONFIG when CONFIG is a file of this
repository (config/config.yaml as that commit wrote it, which its schema accepts), else CONFIG.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RULES = ("explain", "explanation_quality", "feature_maps")


def attempt(tree: Path, results: Path, run: str, config: Path, workdir: Path) -> dict[str, float]:
    """The rules' job seconds with the code of ``tree``, on a copy of ``results`` under ``workdir``."""
    copy = workdir / "results" / results.name
    shutil.copytree(results, copy, copy_function=os.link)
    shutil.rmtree(copy / "explain" / run, ignore_errors=True)
    for rule in RULES:
        (copy / "benchmarks" / rule / f"{run}.tsv").unlink(missing_ok=True)
    explained = f"results/{results.name}/explain/{run}"
    targets = [f"{explained}/{name}" for name in ("maps.npz", "quality.csv", "feature_maps.npz")]
    command = [sys.executable, "-m", "snakemake", *targets, "--cores", "1", "--directory", str(workdir)]
    command += ["--configfile", str(config), "--allowed-rules", *RULES, "--rerun-triggers", "mtime"]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed in {tree}:\n{done.stderr[-3000:]}")
    records = {rule: copy / "benchmarks" / rule / f"{run}.tsv" for rule in RULES}
    return {rule: float(pd.read_csv(path, sep="\t")["s"].iloc[-1]) for rule, path in records.items()}


def same_outputs(a: Path, b: Path) -> dict[str, bool]:
    """Whether two explanation folders hold identical maps (every array) and quality tables."""
    with np.load(a / "maps.npz") as x, np.load(b / "maps.npz") as y:
        maps = sorted(x.files) == sorted(y.files) and all(_equal(x[k], y[k]) for k in x.files)
    quality = pd.read_csv(a / "quality.csv").equals(pd.read_csv(b / "quality.csv"))
    return {"maps.npz": maps, "quality.csv": quality}


def lime_floor(results: Path, run: str, config: Path) -> str:
    """The explain rule's LIME passes at the model's measured forward rate, and that rate against a matmul."""
    import json
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import yaml
    from bench_throughput import matmul_gflops

    from layerscope.explain.base import probability_pass
    from layerscope.train.macs import forward_macs

    explain = yaml.safe_load(config.read_text())["explain"]
    classes = len(json.loads((results / "data" / "classes.json").read_text()))
    passes = explain["images_per_class"] * classes * explain["lime"]["num_samples"]
    model = keras.models.load_model(results / "runs" / run / "model.keras")
    batch = explain["lime"]["batch_size"]
    x = tf.constant(np.random.default_rng(0).random((batch, *model.input.shape[1:]), np.float32) * 255)
    forward = probability_pass(model)  # the pass LIME's classifier calls
    forward(x).numpy()
    repeats, started = 8, time.perf_counter()
    for _ in range(repeats):
        forward(x).numpy()
    rate = batch * repeats / (time.perf_counter() - started)
    gflops = 2 * sum(forward_macs(model)) * rate / 1e9
    return (
        f"LIME's {passes} forward passes at {rate:.1f} images/s (batches of {batch}): {passes / rate:.1f} s; "
        f"{gflops:.0f} GFLOP/s, {gflops / matmul_gflops():.2f} of a 2048 x 2048 matmul in this process"
    )


def _equal(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal arrays, NaN equal to NaN where the dtype has one (names and labels compare as they are)."""
    return np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--against", help="the other commit (needed unless --rounds 0)")
    parser.add_argument("--run", default="vgg16-freeze3-momentum")
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--old-config", type=Path, help="the config for the other commit (default: see above)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="pairs of attempts (old, new / new, old); 0: the floor only"
    )
    args = parser.parse_args()
    results, config = args.results.resolve(), args.config.resolve()
    if args.rounds == 0:
        print(lime_floor(results, args.run, config))
        return
    if args.against is None:
        parser.error("--against COMMIT is needed to compare")
    with tempfile.TemporaryDirectory(prefix="explain-rules-") as tmp:
        old_tree = Path(tmp) / "old"
        if args.old_config is not None:
            old_config = args.old_config.resolve()
        else:  # that commit's own copy of a config of this repository, which its schema accepts
            old_config = old_tree / config.relative_to(REPO) if config.is_relative_to(REPO) else config
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), args.against], cwd=REPO, check=True)
        try:
            rows, last = [], {}
            for round_ in range(args.rounds):
                order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
                for version in order:
                    tree, cfg = (old_tree, old_config) if version == "old" else (REPO, config)
                    workdir = Path(tmp) / f"{version}{round_}"
                    seconds = attempt(tree, results, args.run, cfg, workdir)
                    print(f"{version} ({round_ + 1}): " + ", ".join(f"{r} {s:.1f} s" for r, s in seconds.items()))
                    rows += [{"version": version, "rule": r, "s": s} for r, s in seconds.items()]
                    last[version] = workdir / "results" / results.name / "explain" / args.run
            table = pd.DataFrame(rows).pivot_table(index="rule", columns="version", values="s", aggfunc="median")
            table["new/old"] = table["new"] / table["old"]
            print(f"\nMedian job seconds, {args.run} ({args.against} = old, this checkout = new):")
            print(table.round(2).to_string())
            print("identical outputs:", same_outputs(last["old"], last["new"]))
            print(lime_floor(results, args.run, config))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=REPO, check=False)


if __name__ == "__main__":
    main()
