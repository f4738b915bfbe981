"""CPU seconds of a job's start-up (its imports) with Python's default collector threshold and with run_job's.

Each repeat starts fresh interpreters, one per setting, alternating, so both see the
same machine. Each calls ``layerscope.core.scripting.run_job`` on a job that imports what
a rule's script imports (``train``: TensorFlow, Keras and the training library; ``render``:
Mayavi and the weight-change figures), and reports its CPU seconds, wall seconds and the
collector's passes while it ran. "default" runs the same ``run_job`` with
``JOB_GC_THRESHOLD`` set back to Python's threshold.

Usage: python benchmarks/bench_job_startup.py [--repeats 5] [--jobs train render]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

JOB_IMPORTS = {
    "train": [
        "tensorflow",
        "layerscope.core.provenance",
        "layerscope.train.fit",
        "layerscope.train.run",
        "layerscope.train.runs",
    ],
    "render": [
        "mayavi.mlab",
        "layerscope.weights.plots",
        "layerscope.weights.render3d",
        "layerscope.weights.scene3d",
        "layerscope.weights.store",
    ],
}

CHILD = """
import gc, importlib, json, os, sys, tempfile, time
from types import SimpleNamespace
os.environ.setdefault("ETS_TOOLKIT", "null")
from layerscope.core import scripting
setting, modules = sys.argv[1], sys.argv[2:]
if setting == "default":
    scripting.JOB_GC_THRESHOLD = gc.get_threshold()[0]
passes = [0]
gc.callbacks.append(lambda phase, info: passes.__setitem__(0, passes[0] + (phase == "start")))
found = {}

def job(_):
    cpu, wall = time.process_time(), time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    found.update(cpu=time.process_time() - cpu, wall=time.perf_counter() - wall, passes=passes[0])
    found["threshold"] = gc.get_threshold()[0]

with tempfile.TemporaryDirectory() as out:
    scripting.run_job(SimpleNamespace(log=[os.path.join(out, "job.log")], rule="bench"), job)
print(json.dumps(found))
"""


def one(setting: str, modules: list[str]) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, setting, *modules],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ},
    )
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOB_IMPORTS), default=sorted(JOB_IMPORTS))
    args = parser.parse_args()
    print("| job | threshold | CPU s (median) | wall s (median) | collector passes | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.jobs:
        runs: dict[str, list[dict]] = {"default": [], "job": []}
        for _ in range(args.repeats):
            for setting in runs:
                runs[setting].append(one(setting, JOB_IMPORTS[name]))
        base = statistics.median(r["cpu"] for r in runs["default"])
        for found in runs.values():
            cpu = statistics.median(r["cpu"] for r in found)
            print(
                f"| {name} | {found[0]['threshold']:,} | {cpu:.2f} | "
                f"{statistics.median(r['wall'] for r in found):.2f} | "
                f"{statistics.median(r['passes'] for r in found):.0f} | {cpu / base:.2f} |"
            )


if __name__ == "__main__":
    main()
