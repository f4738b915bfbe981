"""Table 8's and Table 9's differences tested across training seeds and test images.

Each side is a cell with all its finished seeds; :func:`layerscope.results.comparisons.seed_test`
resamples the test images and adds the retraining variance pooled over the repeated cells,
so a difference one seed's luck made does not pass as a finding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.core.spread import mean_and_sd
from layerscope.core.statistics import SeedVariance
from layerscope.results.comparisons import seed_test, training_variance, verdict
from layerscope.results.gate import sanity_gate
from layerscope.results.selection import cell_runs, optimizer_label, optimizer_rank, primary_runs, select
from layerscope.results.tables import PROBE, frame, summary, transfer_label
from layerscope.train.runs import parse_name


def approach_tests(runs: Mapping[str, dict | None], transfer: int | str = 3, probe: dict | None = None) -> pd.DataFrame:
    """Table 8's differences tested over test images and retraining variance (:func:`seed_test`).

    Fine-tuning vs transfer, transfer vs random weights, transfer vs LeNet-5, transfer vs
    fixed feature extraction, and the best VGG-16 run vs the linear probe; each side is
    the run Table 8 shows for that approach, with all its seeds.
    """
    table8 = summary(runs, transfer, probe)
    chosen = {model: (table8.loc[model, "run"], cell_runs(runs, table8.loc[model, "run"])) for model in table8.index}
    if probe is not None:
        chosen[PROBE] = ("linear-probe", [probe])
    transfer = transfer_label(transfer)
    best_vgg = sanity_gate(runs)["run"]
    pairs = [
        ("Fine-tuning", transfer),
        (transfer, "Random weights"),
        (transfer, "LeNet-5"),
        (transfer, "Fixed feature extraction"),
    ]
    if best_vgg is not None and probe is not None:
        chosen["Best VGG-16 run (by validation)"] = (best_vgg, cell_runs(runs, best_vgg))
        pairs.append(("Best VGG-16 run (by validation)", PROBE))
    rows = [(a, b, chosen.get(a, (MISSING, [])), chosen.get(b, (MISSING, []))) for a, b in pairs]
    return _paired_rows(rows, training_variance(runs))


def freeze_tests(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9's neighbours tested: each freeze depth k against k+1, per optimizer (:func:`seed_test`)."""
    cells = {
        parse_name(run_id)[1:]: (run_id, cell_runs(runs, run_id)) for run_id in select(primary_runs(runs), "freeze")
    }
    pairs = [
        (f"{optimizer_label(opt)}: {k} vs {k + 1} frozen blocks", None, cells[(k, opt)], cells[(k + 1, opt)])
        for (k, opt) in sorted(cells, key=lambda c: (optimizer_rank(c[1]), c[0]))
        if (k + 1, opt) in cells
    ]
    return _paired_rows(pairs, training_variance(runs))


def _paired_rows(pairs: list[tuple], training: SeedVariance) -> pd.DataFrame:
    rows = []
    for name_a, name_b, (id_a, seeds_a), (id_b, seeds_b) in pairs:
        test = seed_test(seeds_a, seeds_b, training)
        difference = _seed_mean(seeds_a) - _seed_mean(seeds_b)
        rows.append(
            {
                "comparison": name_a if name_b is None else f"{name_a} vs {name_b}",
                "run_a": id_a,
                "run_b": id_b,
                "seeds_a": len(seeds_a),
                "seeds_b": len(seeds_b),
                "test_accuracy_a": _seed_mean(seeds_a),
                "test_accuracy_b": _seed_mean(seeds_b),
                "difference": difference,
                "difference_ci_low": math.nan if test is None else test.low,
                "difference_ci_high": math.nan if test is None else test.high,
                "p_value": math.nan if test is None else test.p_value,
                "verdict": "not measured" if test is None else verdict(difference, test.p_value),
            }
        )
    return frame(
        rows,
        "comparison",
        [
            "run_a",
            "run_b",
            "seeds_a",
            "seeds_b",
            "test_accuracy_a",
            "test_accuracy_b",
            "difference",
            "difference_ci_low",
            "difference_ci_high",
            "p_value",
            "verdict",
        ],
        {"seeds_a": "Int64", "seeds_b": "Int64"},
    )


def _seed_mean(seeds: list[dict]) -> float:
    return mean_and_sd([run["test"]["accuracy"] for run in seeds])[0]
