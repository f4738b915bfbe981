"""Seconds of the render_weight_changes rule's library calls on one run's weight-change store.

Runs what ``workflow/scripts/render_weight_changes.py`` runs (the accumulated and net 3D
figures, the 3D scene, the two 2D figures) on a finished run's store, writing into a
temporary folder, in a fresh interpreter per repeat as the rule does: the first 3D figure
includes Mayavi's start-up. The figures' pixels are hashed, so two code versions run on
the same store can be checked to draw the same pictures (put the other version's ``src``
first on ``PYTHONPATH``).

Usage: python benchmarks/bench_render3d.py STORE [--repeats 3]
(STORE: e.g. results/default/runs/vgg16-finetune/weight_changes.h5.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
started = time.perf_counter()
from layerscope.weights.plots import plot_block_lines, plot_period_heatmap
from layerscope.weights.render3d import render_run
from layerscope.weights.scene3d import write_scene
from layerscope.weights.store import WeightChangeStore
store, out = WeightChangeStore(sys.argv[1]), Path(sys.argv[2])
seconds = {"imports": time.perf_counter() - started}
calls = {
    "3d accumulated (with Mayavi start-up)": lambda: render_run(store, out / "a.png", log_scale=True),
    "3d net": lambda: render_run(store, out / "n.png", log_scale=True, mode="net"),
    "scene": lambda: write_scene(store, out / "s.html", log_scale=True),
    "heat map": lambda: plot_period_heatmap(store, out / "h.png"),
    "block lines": lambda: plot_block_lines(store, out / "b.png"),
}
for name, call in calls.items():
    start = time.perf_counter()
    call()
    seconds[name] = time.perf_counter() - start
pixels = {n: hashlib.sha256(np.asarray(Image.open(out / n)).tobytes()).hexdigest()[:12] for n in ("a.png", "n.png")}
print(json.dumps({"seconds": seconds, "pixels": pixels}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(args.store), out], capture_output=True, text=True, check=True
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["seconds"]["process"] = time.perf_counter() - start
            runs.append(result)
    print(f"{args.store} ({args.repeats} fresh processes; median seconds)")
    for name in runs[0]["seconds"]:
        values = sorted(run["seconds"][name] for run in runs)
        print(f"  {name:40s} {values[len(values) // 2]:7.2f}  (min {values[0]:.2f}, max {values[-1]:.2f})")
    hashes = {json.dumps(run["pixels"], sort_keys=True) for run in runs}
    print("  pixels (sha256 of the 3D figures):", *hashes, "" if len(hashes) == 1 else "(differ between repeats)")
    with args.store.open("rb") as handle:  # a default run's store is up to 270 MB: read in chunks
        digest = hashlib.file_digest(handle, "sha256").hexdigest()[:12]
    print(f"  store sha256 {digest}")


if __name__ == "__main__":
    main()
