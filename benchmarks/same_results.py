"""Did two runs of the pipeline give the same results? Timings left out by the library's rule.

Compares two results folders of one experiment (a local and a SLURM run of the smoke
config, say): every run's predictions, metrics (less the timing keys,
:func:`layerscope.core.timings.without_timings`, the rule training writes them by),
histories (less their ``seconds`` column), the data stage's class counts and manifest, and
the tables' CSVs less the cost tables (:func:`layerscope.core.timings.is_cost_table`).
Given two ``metrics.json`` files, compares those.
Prints what it compared; exits 1 naming the first file that differs.

Usage: python benchmarks/same_results.py results/smoke elsewhere/results/smoke
       python benchmarks/same_results.py a/runs/lenet5-tanh-sgd/metrics.json b/runs/lenet5-tanh-sgd/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from layerscope.core.timings import history_without_timings, is_cost_table, without_timings

COMPARED_CSVS = ("predictions.csv", "history.csv", "class_counts.csv", "manifest.csv")


class Differs(Exception):
    """A file whose results differ between the two folders (or that one of them lacks)."""


def comparable(path: Path) -> bytes | dict | None:
    """What of a results file two runs must agree on: its bytes less timings; None if it is not compared."""
    if path.name == "metrics.json":
        return without_timings(json.loads(path.read_text()))
    if path.name == "history.csv":
        return history_without_timings(pd.read_csv(path)).to_csv(index=False).encode()
    table = "tables" in path.parts and path.suffix == ".csv" and not is_cost_table(path)
    return path.read_bytes() if path.name in COMPARED_CSVS or table else None


def compare_files(a: Path, b: Path, name: str) -> None:
    """Raise :class:`Differs` unless ``a`` and ``b`` agree (timings left out)."""
    if not b.is_file():
        raise Differs(f"{name} is missing from the second run")
    if comparable(a) != comparable(b):
        raise Differs(f"{name} differs between the two runs")


def compare_folders(a: Path, b: Path) -> int:
    """Compare every compared file under results folder ``a`` with its namesake under ``b``; how many there were."""
    compared = 0
    for path in sorted(a.rglob("*")):
        if path.is_file() and comparable(path) is not None:
            compare_files(path, b / path.relative_to(a), str(path.relative_to(a)))
            compared += 1
    if compared == 0:
        raise Differs(f"{a} holds no results file to compare")
    return compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="a results folder, or a metrics.json")
    parser.add_argument("second", type=Path, help="the other run's folder or metrics.json")
    args = parser.parse_args(argv)
    try:
        if args.first.is_file():
            compare_files(args.first, args.second, args.first.name)
            metrics = json.loads(args.first.read_text())
            print(f"{args.second} equals {args.first} less timings: test accuracy {metrics['test']['accuracy']:.4f}")
        else:
            count = compare_folders(args.first, args.second)
            print(
                f"outputs equal: {count} files (predictions, metrics less timings, histories less seconds,"
                " data and table CSVs)"
            )
    except Differs as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
