"""Study A's result tables (4-9), each built from the runs' files.

A run that has not finished stays in the tables as ``missing``: a grid with a silently
absent cell would read as a complete experiment. Every "best" run is picked by
validation accuracy (:mod:`layerscope.results.selection`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from layerscope.core.render import MISSING
from layerscope.data.splits import SPLITS
from layerscope.results.comparisons import seed_interval, training_variance
from layerscope.results.selection import (
    NOT_APPLICABLE,
    best_by_val,
    cell_flags,
    cell_runs,
    majority,
    metric,
    optimizer_label,
    optimizer_rank,
    passed_over,
    primary_runs,
    seed_spread,
    seed_values,
    select,
)
from layerscope.train.runs import parse_name

NOT_IN_GRID = "not in this config's grid"


def lenet5_layout(input_shape: Sequence[int], num_classes: int) -> pd.DataFrame:
    """Table 4: every layer of the real LeNet-5 model, its output shape and parameter count."""
    from layerscope.train.models import lenet5  # imports TensorFlow; only this table needs it

    model = lenet5(tuple(input_shape), num_classes, "tanh")  # the activation changes no shape or count
    rows = [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": " x ".join(str(d) for d in layer.output.shape[1:]),
            "parameters": int(layer.count_params()),
        }
        for layer in model.layers
    ]
    rows.append({"layer": "total", "type": "", "output_shape": "", "parameters": int(model.count_params())})
    return pd.DataFrame(rows).set_index("layer")


def _loss_and_accuracy(run: dict | None) -> dict:
    best = (run or {}).get("best_epoch") or {}
    return {
        "best_epoch": best.get("epoch", math.nan),
        "train_loss": best.get("loss", math.nan),
        "val_loss": best.get("val_loss", math.nan),
        "val_accuracy": metric(run, "val"),
        "test_accuracy": metric(run, "test"),
    }


def vgg_by_initialisation(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 5: random weights (vgg16-scratch-*) against fixed feature extraction (vgg16-freeze5-*).

    Losses are the kept model's (best epoch's) train and val loss, so they describe the
    same weights as the accuracies.
    """
    groups = (
        ("random weights", select(runs, "scratch")),
        ("fixed feature extraction", select(runs, "freeze", k=5)),
    )
    rows = [
        {
            "run": run_id,
            "initialisation": name,
            "optimizer": optimizer_label(parse_name(run_id)[2]),
            **_loss_and_accuracy(run),
        }
        for name, group in groups
        for run_id, run in group.items()
    ]
    return frame(
        rows,
        "run",
        [
            "initialisation",
            "optimizer",
            "best_epoch",
            "train_loss",
            "val_loss",
            "val_accuracy",
            "test_accuracy",
        ],
        {"best_epoch": "Int64"},
    )


def freeze3_by_optimizer(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 6: blocks 1-3 frozen, one row per optimizer (adaptive ones may stop early or diverge)."""
    rows = [
        {
            "optimizer": optimizer_label(parse_name(run_id)[2]),
            **_loss_and_accuracy(run),
            "test_f1_weighted": metric(run, "test", "f1_weighted"),
            "epochs_run": math.nan if run is None else run["epochs_run"],
            "stopped_early": math.nan if run is None else run["stopped_early"],
            "diverged": math.nan if run is None else run.get("diverged", False),
        }
        for run_id, run in select(runs, "freeze", k=3).items()
    ]
    return frame(
        rows,
        "optimizer",
        [
            "best_epoch",
            "train_loss",
            "val_loss",
            "val_accuracy",
            "test_accuracy",
            "test_f1_weighted",
            "epochs_run",
            "stopped_early",
            "diverged",
        ],
        {"best_epoch": "Int64", "epochs_run": "Int64", "stopped_early": "boolean", "diverged": "boolean"},
    )


def finetune_result(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 7: the fine-tuned model's accuracy and F1 on each split."""
    run = runs.get("vgg16-finetune")
    rows = [
        {
            "split": split,
            "n": math.nan if run is None else run[split]["n"],
            **{key: metric(run, split, key) for key in ("accuracy", "f1_weighted", "f1_macro")},
        }
        for split in SPLITS
    ]
    return frame(rows, "split", ["n", "accuracy", "f1_weighted", "f1_macro"], {"n": "Int64"})


TRANSFER = "Transfer"
BEST_DEPTH = "Best freeze depth (by validation)"
PROBE = "Linear probe (logistic regression on frozen VGG-16 features)"
MAJORITY = "Majority class"


def transfer_depth_of(transfer: int | str) -> int:
    """The frozen depth of Table 8's "Transfer" row, given as a depth or as the run itself."""
    return transfer if isinstance(transfer, int) else parse_name(transfer)[1]


def transfer_label(transfer: int | str) -> str:
    """Table 8's name of the "Transfer" row, e.g. "Transfer (3 frozen blocks)"."""
    return f"{TRANSFER} ({transfer_depth_of(transfer)} frozen blocks)"


def _transfer_candidates(runs: Mapping[str, dict | None], transfer: int | str) -> dict[str, dict | None]:
    """The "Transfer" row's run: the named run (the one fine-tuning starts from), else the depth's best."""
    if isinstance(transfer, int):
        return select(runs, "freeze", k=transfer)
    return {transfer: runs.get(transfer)} if transfer in runs else {}


def _summary_candidates(runs: Mapping[str, dict | None], transfer: int | str) -> dict[str, dict[str, dict | None]]:
    depths = {run_id: run for run_id, run in select(runs, "freeze").items() if 1 <= parse_name(run_id)[1] <= 4}
    return {
        "LeNet-5": select(runs, "lenet5"),
        "Random weights": select(runs, "scratch"),
        "Fixed feature extraction": select(runs, "freeze", k=5),
        TRANSFER: _transfer_candidates(runs, transfer),
        BEST_DEPTH: depths,
        "Fine-tuning": select(runs, "finetune"),
    }


def _interval(run: dict | None, key: str) -> tuple[float, float]:
    bounds = ((run or {}).get("test") or {}).get(f"{key}_ci")
    return (math.nan, math.nan) if bounds is None else (float(bounds[0]), float(bounds[1]))


def _test_figures(run: dict | None) -> dict:
    """Test accuracy and weighted F1, each with its 95% bootstrap interval; balanced and binary accuracy."""
    row = {}
    for key in ("accuracy", "f1_weighted"):
        low, high = _interval(run, key)
        row.update({f"test_{key}": metric(run, "test", key), f"test_{key}_ci_low": low, f"test_{key}_ci_high": high})
    test = (run or {}).get("test") or {}
    row["test_balanced_accuracy"] = float(test.get("balanced_accuracy", math.nan))
    row["test_binary_accuracy"] = float((test.get("binary") or {}).get("accuracy", math.nan))
    return row


TEST_FIGURES = [
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "test_f1_weighted",
    "test_f1_weighted_ci_low",
    "test_f1_weighted_ci_high",
    "test_balanced_accuracy",
    "test_binary_accuracy",
]
"""The columns :func:`_test_figures` fills."""

SUMMARY_COLUMNS = [
    "run",
    "train_accuracy",
    "val_accuracy",
    *TEST_FIGURES,
    "seeds",
    "test_accuracy_seed_mean",
    "test_accuracy_seed_sd",
    "flags",
    "passed_over",
    "missing_candidates",
]


def summary(runs: Mapping[str, dict | None], transfer: int | str = 3, probe: dict | None = None) -> pd.DataFrame:
    """Table 8: each approach's run picked by VALIDATION accuracy, with 95% bootstrap intervals.

    "Transfer" is the study's chosen depth, as in the study, where the depth was chosen
    from Grad-CAM maps: ``transfer`` names either the run (the one fine-tuning starts
    from, so fine-tuning is compared with its own start) or the depth (best optimizer by
    validation);
    "Best freeze depth" is the best of depths 1-4 by validation. Two baselines close the
    table: the linear probe and the majority class. A candidate scores its mean validation
    accuracy over seeds; a collapsed or unconverged one is picked only when no healthy
    one has finished, and ``flags`` then says so; ``passed_over`` names the flagged
    candidates that scored higher on validation than the row's run. ``seeds`` counts
    the finished training seeds of the chosen run, with the mean and sd of their test
    accuracy; ``missing_candidates`` counts unfinished runs of the group.

    Args:
        runs: runs by id, as :func:`load_runs` returns them (seed replicates included).
        transfer: the "Transfer" row's run id, or its frozen depth.
        probe: the linear probe's metrics (:func:`load_probe`), or None to leave its row out.

    Returns:
        One row per approach, indexed by model, with :data:`SUMMARY_COLUMNS`.
    """
    primary = primary_runs(runs)
    rows = []
    for model, candidates in _summary_candidates(primary, transfer).items():
        chosen = best_by_val(candidates, runs)
        run = None if chosen is None else candidates[chosen]
        seeds, seed_mean, seed_sd = (0, math.nan, math.nan) if chosen is None else seed_spread(runs, chosen)
        label = transfer_label(transfer) if model == TRANSFER else model
        rows.append(
            {
                "model": label,
                "run": chosen or (MISSING if candidates else NOT_IN_GRID),
                **{f"{split}_accuracy": metric(run, split) for split in SPLITS},
                **_test_figures(run),
                "seeds": seeds,
                "test_accuracy_seed_mean": seed_mean,
                "test_accuracy_seed_sd": seed_sd,
                "flags": "" if chosen is None else cell_flags(runs, chosen),
                "passed_over": passed_over(candidates, runs, chosen),
                "missing_candidates": sum(r is None for r in candidates.values()),
            }
        )
    if probe is not None:
        rows.append(
            {
                "model": PROBE,
                "run": "linear-probe",
                **{f"{s}_accuracy": metric(probe, s) for s in SPLITS},
                **_test_figures(probe),
                "seeds": math.nan,
                "test_accuracy_seed_mean": math.nan,
                "test_accuracy_seed_sd": NOT_APPLICABLE,
                "missing_candidates": 0,
            }
        )
    baseline = majority(primary)
    if baseline is not None:
        rows.append(
            {
                "model": MAJORITY,
                "run": "always class " + str(baseline["class_index"]),
                "test_accuracy": baseline["accuracy"],
                "test_binary_accuracy": baseline.get("binary_accuracy", math.nan),
                "test_f1_weighted": baseline["f1_weighted"],
                "test_accuracy_seed_sd": NOT_APPLICABLE,
            }
        )
    return frame(rows, "model", SUMMARY_COLUMNS, {"seeds": "Int64", "missing_candidates": "Int64"})


def freeze_grid(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9: mean test accuracy over seeds by frozen blocks (rows, deepest first) and optimizer (columns).

    Args:
        runs: runs by id, as :func:`load_runs` returns them (seed replicates included).

    Returns:
        The grid; NaN where no seed of a cell has finished.
    """
    cells = {parse_name(run_id)[1:]: seed_spread(runs, run_id)[1] for run_id in select(primary_runs(runs), "freeze")}
    depths = sorted({k for k, _ in cells}, reverse=True)
    optimizers = sorted({opt for _, opt in cells}, key=optimizer_rank)
    grid = pd.DataFrame(
        [[cells.get((k, opt), math.nan) for opt in optimizers] for k in depths],
        index=pd.Index(depths, name="frozen_blocks"),
        columns=[optimizer_label(opt) for opt in optimizers],
        dtype=float,
    )
    grid.columns.name = "optimizer"
    return grid


TABLE9_COLUMNS = [
    "frozen_blocks",
    "optimizer",
    "seeds",
    "test_accuracy_seed_mean",
    "test_accuracy_seed_sd",
    "test_accuracy_seed_ci_low",
    "test_accuracy_seed_ci_high",
    "val_accuracy_seed_mean",
    *TEST_FIGURES,
    "epochs_run",
    "best_epoch",
    "flags",
]


def table9_statistics(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9 in long form: each cell's seeds, their spread, epochs and health.

    Per cell: the mean and sd of test accuracy across training seeds, the mean's 95%
    interval over test images and retraining variance (:func:`seed_interval`), and the mean
    validation accuracy; the first seed's test accuracy and weighted F1 with their 95%
    bootstrap intervals over test images; per seed (in seed order) the epochs run and the
    best (kept) epoch; and the health flags ("not converged": early stopping did not end it;
    "collapsed": one predicted class or within 0.02 of the majority class).
    """
    rows, training = [], training_variance(runs)
    for run_id, run in select(primary_runs(runs), "freeze").items():
        k, optimizer = parse_name(run_id)[1:]
        seeds, seed_mean, seed_sd = seed_spread(runs, run_id)
        interval = seed_interval(cell_runs(runs, run_id), training)
        rows.append(
            {
                "run": run_id,
                "frozen_blocks": k,
                "optimizer": optimizer_label(optimizer),
                "seeds": seeds,
                "test_accuracy_seed_mean": seed_mean,
                "test_accuracy_seed_sd": seed_sd,
                "test_accuracy_seed_ci_low": math.nan if interval is None else interval.low,
                "test_accuracy_seed_ci_high": math.nan if interval is None else interval.high,
                "val_accuracy_seed_mean": seed_spread(runs, run_id, "val")[1],
                **_test_figures(run),
                "epochs_run": seed_values(runs, run_id, "health.epochs_run") or MISSING,
                "best_epoch": seed_values(runs, run_id, "health.best_epoch") or MISSING,
                "flags": cell_flags(runs, run_id),
            }
        )
    return frame(rows, "run", TABLE9_COLUMNS, {"frozen_blocks": "Int64", "seeds": "Int64"})


def frame(rows: list[dict], index: str, columns: list[str], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rows to a frame with a named index; nullable dtypes keep counts whole next to a missing run."""
    return pd.DataFrame(rows, columns=[index, *columns]).astype(dict(dtypes or {})).set_index(index)
