"""Every result table written to files (CSV, Markdown, LaTeX), the gate and the summary."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from layerscope.core.atomic import write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import best_mask, to_markdown, write_table
from layerscope.explain.feature_map_claims import StudyBFiles
from layerscope.results.claims import paper_comparison
from layerscope.results.comparisons import training_variance, variance_line
from layerscope.results.differences import approach_tests, freeze_tests
from layerscope.results.gate import gate_line, sanity_gate
from layerscope.results.readme import readme_results
from layerscope.results.run_files import load_runs
from layerscope.results.selection import primary_runs
from layerscope.results.tables import (
    finetune_result,
    freeze3_by_optimizer,
    freeze_grid,
    lenet5_layout,
    summary,
    table9_statistics,
    vgg_by_initialisation,
)

TABLES = {  # file stem: (builder, best columns, best scope, caption); builders take (runs, transfer, probe)
    "table5_vgg_initialisation": (
        lambda runs, *_: vgg_by_initialisation(primary_runs(runs)),
        ["val_accuracy", "test_accuracy"],
        "column",
        "Table 5. VGG-16: random weights vs fixed feature extraction (losses of the kept, lowest-val_loss epoch).",
    ),
    "table6_freeze3_optimizers": (
        lambda runs, *_: freeze3_by_optimizer(primary_runs(runs)),
        ["val_accuracy", "test_accuracy", "test_f1_weighted"],
        "column",
        "Table 6. VGG-16 with blocks 1-3 frozen, by optimizer.",
    ),
    "table7_finetune": (
        lambda runs, *_: finetune_result(primary_runs(runs)),
        [],
        "column",
        "Table 7. Fine-tuning: all layers unfrozen.",
    ),
    "table8_summary": (
        summary,
        ["train_accuracy", "val_accuracy", "test_accuracy", "test_f1_weighted"],
        "column",
        "Table 8. Accuracy of each approach, the run of each picked by validation accuracy; "
        "test figures with 95% bootstrap intervals (resampled test images).",
    ),
    "table8_tests": (
        approach_tests,
        [],
        "column",
        "Table 8, differences tested: bootstrap over test images plus the retraining variance pooled over the "
        "repeated cells (95% interval of A - B).",
    ),
    "table9_freeze_grid": (
        lambda runs, *_: freeze_grid(runs),
        None,
        "grid",
        "Table 9. Test accuracy (mean over training seeds) by frozen blocks 1..k and optimizer.",
    ),
    "table9_statistics": (
        lambda runs, *_: table9_statistics(runs),
        ["test_accuracy_seed_mean"],
        "column",
        "Table 9 per cell: seeds, mean ± sd of test accuracy across them with its 95% interval (test images "
        "plus pooled retraining variance), the first seed's figures with their image-bootstrap intervals, "
        "epochs run and best epoch per seed, and health flags.",
    ),
    "table9_tests": (
        lambda runs, *_: freeze_tests(runs),
        [],
        "column",
        "Table 9, neighbouring freeze depths tested per optimizer: bootstrap over test images plus the retraining "
        "variance pooled over the repeated cells.",
    ),
    "comparison_paper": (
        paper_comparison,
        [],
        "column",
        "The study's claims checked on our runs (p < 0.05 for 'holds'/'opposite'), "
        "and absolute accuracy beside published results on the same data only.",
    ),
}


TABLE_STEMS = ["table4_lenet5_layout", *TABLES]


def _summary_markdown(
    runs: Mapping[str, dict | None],
    tables: dict[str, pd.DataFrame],
    gate: dict,
    classes: Sequence[str],
    variance: str,
) -> str:
    missing = [run_id for run_id, run in runs.items() if run is None]
    status = (
        f"Missing runs ({len(missing)} of {len(runs)}): {', '.join(missing)}."
        if missing
        else f"All {len(runs)} runs finished."
    )
    sections = [
        "# Results summary",
        status,
        "Every best run is picked by validation accuracy; picking by test accuracy would leak the "
        "test split into model selection. Intervals are 95% percentile bootstrap intervals over test "
        "images, and those of differences and seed means add the retraining variance below; 'holds' and "
        "'opposite' need p < 0.05.",
        variance,
    ]
    for stem in ("comparison_paper", "table8_summary", "table8_tests", "table9_freeze_grid", "table9_tests"):
        _, best, scope, caption = TABLES[stem]
        df = tables[stem]
        sections += [
            f"## {caption}",
            to_markdown(df, best_mask(df, df.columns if best is None else best, scope)),
        ]
    sections += ["## Baselines", gate_line(gate, classes)]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def write_all_tables(
    runs_dir: str | os.PathLike,
    run_ids: Sequence[str],
    out_dir: str | os.PathLike,
    input_shape: Sequence[int],
    num_classes: int,
    classes: Sequence[str],
    transfer: int | str = 3,
    probe: dict | None = None,
    machines: Sequence[str] = (),
    study_b: StudyBFiles | None = None,
    lime_checks: pd.DataFrame | None = None,
    interval_seed: int | None = None,
) -> list[Path]:
    """Tables 4-9, their tests, the paper comparison, sanity_gate.json, summary.md and readme_results.md.

    Args:
        runs_dir: the experiment's ``runs/`` folder.
        run_ids: the runs of the grid; may include seed replicates (``<run-id>-seed<s>``).
        out_dir: where to write the tables.
        input_shape: the image shape (height, width, channels), for Table 4's LeNet-5 layout.
        num_classes: the number of classes.
        classes: the class names, index order (the majority class is named in the gate).
        transfer: Table 8's "Transfer" run, or its frozen depth (:func:`summary`).
        probe: the linear probe's metrics (with ``test_predictions``), or None.
        machines: the machines the runs trained on (:func:`layerscope.core.machine.machines_of`),
            named in the README's block.
        study_b: the feature-map tables study B's claims are read from (None: not measured).
        lime_checks: the explained runs' LIME checks, for the paper comparison's LIME rows.
        interval_seed: the config's ``seed``, which seeds each run's test intervals (read from
            its predictions.csv, :func:`layerscope.results.run_files.intervals_from_predictions`);
            None leaves them as metrics.json holds them.

    Returns:
        Every file written.

    Raises:
        LayerscopeError: ``classes`` of another length than ``num_classes``, or runs that
            cannot be read (see :func:`load_runs`).
    """
    if len(classes) != num_classes:
        raise LayerscopeError(f"{num_classes} classes expected but {len(classes)} class names given: {list(classes)}")
    out = Path(out_dir)
    runs = load_runs(runs_dir, run_ids, interval_seed)
    files = write_table(
        lenet5_layout(input_shape, num_classes),
        out / "table4_lenet5_layout",
        caption=f"Table 4. LeNet-5 layout for input {' x '.join(map(str, input_shape))}.",
    )
    tables = {}
    for stem, (builder, best, scope, caption) in TABLES.items():
        extra = {"study_b": study_b, "lime_checks": lime_checks} if builder is paper_comparison else {}
        df = tables[stem] = builder(runs, transfer, probe, **extra)
        files += write_table(df, out / stem, df.columns if best is None else best, scope, caption)
    gate, variance = sanity_gate(runs, probe), variance_line(training_variance(runs))
    write_text(out / "sanity_gate.json", json.dumps({**gate, "sentence": gate_line(gate, classes)}, indent=1) + "\n")
    write_text(out / "summary.md", _summary_markdown(primary_runs(runs), tables, gate, classes, variance))
    write_text(out / "readme_results.md", readme_results(tables, gate, classes, variance, machines))
    return [*files, out / "sanity_gate.json", out / "summary.md", out / "readme_results.md"]
