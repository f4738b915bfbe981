"""Table 8's and Table 9's differences tested: McNemar's exact test on paired test predictions."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.results.comparisons import paired_test, verdict
from layerscope.results.gate import sanity_gate
from layerscope.results.selection import metric, optimizer_label, optimizer_rank, primary_runs, select
from layerscope.results.tables import PROBE, TRANSFER, frame, summary
from layerscope.train.runs import parse_name


def approach_tests(runs: Mapping[str, dict | None], transfer_depth: int = 3, probe: dict | None = None) -> pd.DataFrame:
    """Table 8's differences tested: McNemar's exact test on paired test predictions.

    Fine-tuning vs transfer, transfer vs random weights, transfer vs LeNet-5, transfer vs
    fixed feature extraction, and the best VGG-16 run vs the linear probe; each side is
    the run Table 8 shows for that approach.
    """
    table8 = summary(runs, transfer_depth, probe)
    chosen = {model: (table8.loc[model, "run"], runs.get(table8.loc[model, "run"])) for model in table8.index}
    if probe is not None:
        chosen[PROBE] = ("linear-probe", probe)
    transfer = f"{TRANSFER} ({transfer_depth} frozen blocks)"
    best_vgg = sanity_gate(runs)["run"]
    pairs = [
        ("Fine-tuning", transfer),
        (transfer, "Random weights"),
        (transfer, "LeNet-5"),
        (transfer, "Fixed feature extraction"),
    ]
    if best_vgg is not None and probe is not None:
        chosen["Best VGG-16 run (by validation)"] = (best_vgg, runs.get(best_vgg))
        pairs.append(("Best VGG-16 run (by validation)", PROBE))
    return _paired_rows([(a, b, chosen.get(a, (MISSING, None)), chosen.get(b, (MISSING, None))) for a, b in pairs])


def freeze_tests(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9's neighbours tested: each freeze depth k against k+1, per optimizer (McNemar)."""
    primary = primary_runs(runs)
    cells = {parse_name(run_id)[1:]: (run_id, run) for run_id, run in select(primary, "freeze").items()}
    pairs = [
        (f"{optimizer_label(opt)}: {k} vs {k + 1} frozen blocks", None, cells[(k, opt)], cells[(k + 1, opt)])
        for (k, opt) in sorted(cells, key=lambda c: (optimizer_rank(c[1]), c[0]))
        if (k + 1, opt) in cells
    ]
    return _paired_rows(pairs)


def _paired_rows(pairs: list[tuple]) -> pd.DataFrame:
    rows = []
    for name_a, name_b, (id_a, run_a), (id_b, run_b) in pairs:
        test = paired_test(run_a, run_b)
        difference = metric(run_a, "test") - metric(run_b, "test")
        p_value = math.nan if test is None else test.p_value
        rows.append(
            {
                "comparison": name_a if name_b is None else f"{name_a} vs {name_b}",
                "run_a": id_a,
                "run_b": id_b,
                "test_accuracy_a": metric(run_a, "test"),
                "test_accuracy_b": metric(run_b, "test"),
                "difference": difference,
                "only_a_correct": math.nan if test is None else test.only_a_correct,
                "only_b_correct": math.nan if test is None else test.only_b_correct,
                "p_value": p_value,
                "verdict": verdict(difference, p_value),
            }
        )
    return frame(
        rows,
        "comparison",
        [
            "run_a",
            "run_b",
            "test_accuracy_a",
            "test_accuracy_b",
            "difference",
            "only_a_correct",
            "only_b_correct",
            "p_value",
            "verdict",
        ],
        {"only_a_correct": "Int64", "only_b_correct": "Int64"},
    )
