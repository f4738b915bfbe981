"""Are the tables' tests calibrated? Two seeds of one config compared as if they were two approaches.

Two runs of the same config differ only by their training seed, so "A beats B" is false
for them by construction, and a test at the 5% level should call such a pair
significant about one time in twenty. This script takes a finished experiment, forms
every pair of seeds within each cell trained under several seeds, tests each pair as the
tables test a one-seed side against another (:func:`layerscope.results.comparisons.seed_test`),
and prints per pair and in total how often p < 0.05 under three variances:

- ``images only``: the test images resampled, no retraining variance (the tables' test
  before the seed variance was pooled, and what a one-seed side got then);
- ``pooled``: the seed variance pooled over every repeated cell (what the tables use);
- ``pooled, cell left out``: pooled over the other cells only, so the pair's own spread
  does not set its own yardstick (stricter; needs two repeated cells).

The pairs share runs, so they are not independent: read the counts as a check, not as a
rate with a binomial interval. Pooling assumes the cells' seeds spread alike; their sds
and Bartlett's and Levene's tests of equal variances are printed first.

Usage: python benchmarks/seed_calibration.py results/default
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from layerscope.core.machine import machines_of
from layerscope.core.spread import mean_sd_n
from layerscope.core.statistics import SeedVariance, pooled_seed_variance
from layerscope.results.comparisons import ALPHA, seed_test, training_variance
from layerscope.results.run_files import load_runs
from layerscope.results.selection import cell_runs, primary_runs

IMAGES_ONLY = SeedVariance(0.0, 1, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a finished experiment folder, e.g. results/default")
    results = parser.parse_args().results
    runs_dir = results / "runs"
    ids = sorted(path.name for path in runs_dir.iterdir() if (path / "metrics.json").is_file())
    runs = load_runs(runs_dir, ids)
    cells = {run_id: cell_runs(runs, run_id) for run_id in primary_runs(runs)}
    repeated = {run_id: seeds for run_id, seeds in cells.items() if len(seeds) > 1}
    pooled = training_variance(runs)
    records = (json.loads(path.read_text()) for path in sorted(runs_dir.glob("*/provenance.json")))
    print("machine:", "; ".join(machines_of(records)) or "not recorded")
    print(f"pooled seed sd {pooled.sd:.4f} over {pooled.cells} cells ({pooled.df} degrees of freedom)")
    accuracies = {run_id: [run["test"]["accuracy"] for run in seeds] for run_id, seeds in repeated.items()}
    for run_id, values in accuracies.items():
        print(f"  {run_id:30s} sd {mean_sd_n(values)[1]:.4f} over {len(values)} seeds")
    if len(accuracies) > 1:
        from scipy.stats import bartlett, levene

        groups = list(accuracies.values())
        tests = f"Bartlett p = {bartlett(*groups).pvalue:.3f}, Levene p = {levene(*groups).pvalue:.3f}"
        print(f"equal variances across cells: {tests}\n")
    header = f"{'pair':64s} {'A - B':>7s}  {'images only':>11s}  {'pooled':>7s}  {'cell left out':>13s}"
    print(header)
    print("-" * len(header))
    counts = {"images only": 0, "pooled": 0, "pooled, cell left out": 0}
    pairs = 0
    for run_id, seeds in repeated.items():
        others = pooled_seed_variance(
            [run["test"]["accuracy"] for run in other] for other_id, other in repeated.items() if other_id != run_id
        )
        for a, b in itertools.combinations(seeds, 2):
            tests = {
                "images only": seed_test([a], [b], IMAGES_ONLY),
                "pooled": seed_test([a], [b], pooled),
                "pooled, cell left out": seed_test([a], [b], others),
            }
            pairs += 1
            for name, test in tests.items():
                counts[name] += bool(test.p_value < ALPHA)
            images, both, left_out = (f"{test.p_value:.3f}" for test in tests.values())
            pair = f"{a['run_id']} vs {b['run_id']}"
            difference = tests["pooled"].difference
            print(f"{pair:64s} {difference:+7.3f}  {images:>11s}  {both:>7s}  {left_out:>13s}")
    print(f"\np < {ALPHA} among {pairs} same-config pairs (about {ALPHA * pairs:.1f} expected of a calibrated test):")
    for name, count in counts.items():
        print(f"  {name:22s} {count}")


if __name__ == "__main__":
    main()
