"""Do the study's conclusions survive other kernels? The freeze sweep trained with oneDNN on and off.

TensorFlow's oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS=1``, the x86 default) and its
Eigen kernels (``=0``) round differently, much as an AVX-512 machine rounds differently
from an AVX2 one. This script trains the config's freeze sweep both ways with the
pipeline itself (``snakemake`` on the tables target, in experiments ``<name>-onednn1``
and ``<name>-onednn0``; LeNet-5, fine-tuning and GAP runs left out, so only the sweep
and its seeds train) and prints, side by side: each cell's seed mean and 95% interval
(seeds and test images resampled), whether each side's mean lies inside the other's
interval, and every verdict of the claim and test tables, with those that flip.

``--against results/default`` trains only the oneDNN-off side and compares it with a
finished default run (whose sweep is the oneDNN-on side). ``--compare A B`` compares
two finished experiments' folders, e.g. the default run of two machines (copy one's
``results/default`` beside the other's). Claims one side did not measure are left out.

Usage: python benchmarks/onednn_agreement.py [--config config/config.yaml] [--cores 2]
       python benchmarks/onednn_agreement.py --against results/default
       python benchmarks/onednn_agreement.py --compare results/default results/default-avx512
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from agreement import cell_agreement, verdict_agreement  # beside this script

from layerscope.core.machine import machine_line, machine_record
from layerscope.results.run_files import load_runs

REPO = Path(__file__).resolve().parents[1]
SWEEP_ONLY = {"lenet5": [], "scratch_optimizers": [], "finetune_from": None, "gap_freeze_blocks": []}


def train_sweep(config_path: Path, setting: str, cores: str) -> Path:
    """Run the pipeline's tables target for the sweep under one oneDNN setting; returns the experiment folder."""
    config = yaml.safe_load(config_path.read_text())
    config["experiment"] = f"{config['experiment']}-onednn{setting}"
    config["runs"] = {**config["runs"], **SWEEP_ONLY}
    explain = config.get("explain", {})
    config["explain"] = {**explain, "runs": [], "cam_run": None, "onset": {**explain.get("onset", {}), "runs": []}}
    results = REPO / "results" / config["experiment"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(config, handle)
    command = [
        sys.executable, "-m", "snakemake", f"{results.relative_to(REPO)}/tables/summary.md",
        "--configfile", handle.name, "--cores", cores, "--workflow-profile", "workflow/profiles/default",
    ]  # fmt: skip
    print(f"TF_ENABLE_ONEDNN_OPTS={setting}: {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=REPO, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}, check=True)
    return results


def experiment_runs(results: Path) -> dict:
    """Every run (seed replicates included) that finished in an experiment folder."""
    return load_runs(results / "runs", sorted(path.parent.name for path in (results / "runs").glob("*/metrics.json")))


def compare(a: Path, b: Path) -> bool:
    """Print the cell and verdict agreement of two experiment folders; True when they agree."""
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    cells = cell_agreement(experiment_runs(a), experiment_runs(b))
    verdicts = verdict_agreement(a / "tables", b / "tables")
    print(f"\nA = {a}\nB = {b}\n\nCells (test accuracy, seed mean and 95% interval over seeds and images):")
    print(cells.round(3).to_string())
    print("\nVerdicts:")
    print(verdicts[["verdict_a", "verdict_b", "p_a", "p_b", "same", "flip"]].round(4).to_string())
    agree = bool(cells["agree"].all()) and not verdicts["flip"].any()
    print(
        f"\n{int(cells['agree'].sum())} of {len(cells)} cells agree (each mean inside the other's interval); "
        f"{int(verdicts['same'].sum())} of {len(verdicts)} verdicts identical, {int(verdicts['flip'].sum())} flip."
    )
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument(
        "--against",
        type=Path,
        help="a finished experiment with oneDNN on (e.g. results/default): train only the oneDNN-off side",
    )
    args = parser.parse_args()
    print(f"Machine: {machine_line(machine_record())}")
    if args.compare:
        sides = args.compare
    elif args.against:
        sides = [args.against, train_sweep(args.config, "0", args.cores)]
    else:
        sides = [train_sweep(args.config, setting, args.cores) for setting in ("1", "0")]
    sys.exit(0 if compare(*sides) else 1)


if __name__ == "__main__":
    main()
