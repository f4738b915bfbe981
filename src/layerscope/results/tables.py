"""Study A's result tables (4-9), the comparison with the paper and the sanity gate.

Every table is built from the runs' ``metrics.json`` and ``history.csv`` files, so the
numbers can be traced to a run. A run that has not finished stays in the tables as
``missing``: a grid with a silently absent cell would read as a complete experiment.
Whenever a "best" run is picked it is picked by validation accuracy, never by test
accuracy (choosing on the test split would leak it into model selection).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from layerscope.core.atomic import write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import MISSING, best_mask, to_markdown, write_table
from layerscope.data.splits import SPLITS
from layerscope.results.comparisons import (
    ALPHA,
    Claim,
    beats,
    claims_table,
    mean_by,
    paired_test,
    rank_agreement,
    sign_test,
    verdict,
)
from layerscope.results.statistics import mean_and_sd
from layerscope.train.optimizers import OPTIMIZERS
from layerscope.train.runs import parse_name, split_replicate

NOT_IN_GRID = "not in this config's grid"
# A spread across seeds of one seed: undefined, not missing (pandas reads "n/a" as NaN).
NOT_APPLICABLE = "n/a"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")

# The PAPER's published figures (study A, cited in the README), not our results:
# kept only to print beside ours. Table 8 gives fixed feature extraction .850/.814/.653
# although the paper's text says val .813 / test .625; Table 8's own numbers are used.
PAPER_SUMMARY = {  # Table 8: train, val, test accuracy
    "LeNet-5": (0.995, 0.816, 0.625),
    "Random weights": (0.996, 0.908, 0.569),
    "Fixed feature extraction": (0.850, 0.814, 0.653),
    "Transfer": (0.999, 0.919, 0.778),
    "Fine-tuning": (0.998, 0.917, 0.792),
}
PAPER_FINETUNE_F1_WEIGHTED = 0.778  # Table 7, test split
PAPER_FREEZE_GRID = {  # Table 9: test accuracy by frozen blocks k, optimizer
    5: {"sgd": 0.639, "momentum": 0.653, "nag": 0.625},
    4: {"sgd": 0.639, "momentum": 0.722, "nag": 0.653},
    3: {"sgd": 0.736, "momentum": 0.778, "nag": 0.778},
    2: {"sgd": 0.764, "momentum": 0.708, "nag": 0.764},
    1: {"sgd": 0.694, "momentum": 0.736, "nag": 0.764},
}
# Published reference on the default dataset (elpv, 4 defect-probability classes):
# Deitsch et al. 2019, Solar Energy 185, CNN average accuracy 88.42% (their protocol, not ours).
DEITSCH_2019_ELPV_ACCURACY = 0.8842


def _read_history(path: Path) -> pd.DataFrame:
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the training history ({error})") from error
    absent = [column for column in HISTORY_COLUMNS if column not in history]
    if absent:
        raise LayerscopeError(f"{path}: history lacks column(s) {', '.join(absent)}")
    return history


def _best_epoch(history: pd.DataFrame) -> dict | None:
    """The row of the kept model: training keeps the first epoch with the lowest val_loss."""
    if history["val_loss"].isna().all():
        return None
    row = history.loc[history["val_loss"].idxmin()]
    return {"epoch": int(row["epoch"]), "loss": float(row["loss"]), "val_loss": float(row["val_loss"])}


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the run's metrics ({error})") from error
    absent = [key for key in (*SPLITS, "majority_baseline") if key not in metrics]
    if absent:
        raise LayerscopeError(f"{path}: metrics lack key(s) {', '.join(absent)}")
    return metrics


def load_runs(runs_dir: str | os.PathLike, run_ids: Sequence[str]) -> dict[str, dict | None]:
    """Each run's metrics.json plus ``best_epoch`` (from history.csv); None for an unfinished run.

    ``best_epoch`` holds the epoch, train loss and val loss of the kept model (lowest
    val_loss), because metrics.json has accuracies and F1 but no losses.

    Args:
        runs_dir: the experiment's ``runs/`` folder.
        run_ids: the runs to load, seed replicates included.

    Returns:
        Per run id, its metrics with ``best_epoch`` and ``test_predictions`` added, or None.

    Raises:
        LayerscopeError: a misspelt run id, a finished run without history.csv, or unreadable
            metrics or predictions.
    """
    runs: dict[str, dict | None] = {}
    for run_id in run_ids:
        parse_name(run_id)  # a misspelt id would otherwise read as an unfinished run
        metrics_file = Path(runs_dir) / run_id / "metrics.json"
        if not metrics_file.is_file():
            runs[run_id] = None
            continue
        history_file = metrics_file.with_name("history.csv")
        if not history_file.is_file():
            raise LayerscopeError(f"{history_file} is missing although {metrics_file} exists: rerun '{run_id}'")
        runs[run_id] = {
            **_read_metrics(metrics_file),
            "best_epoch": _best_epoch(_read_history(history_file)),
            "test_predictions": read_predictions(metrics_file.with_name("predictions.csv")),
        }
    return runs


def read_predictions(path: Path) -> pd.DataFrame | None:
    """A run's per-test-image predictions (path, true, predicted); None when the file is absent."""
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, usecols=["path", "true", "predicted"], dtype=str)
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the run's test predictions ({error})") from error
    return table


def load_histories(runs_dir: str | os.PathLike, run_ids: Sequence[str]) -> dict[str, pd.DataFrame | None]:
    """Each run's per-epoch history.csv; None for an unfinished run.

    Args:
        runs_dir: the experiment's ``runs/`` folder.
        run_ids: the runs to load.

    Returns:
        Per run id, its history or None.

    Raises:
        LayerscopeError: a misspelt run id or an unreadable history.
    """
    histories: dict[str, pd.DataFrame | None] = {}
    for run_id in run_ids:
        parse_name(run_id)  # a misspelt id would otherwise read as an unfinished run
        path = Path(runs_dir) / run_id / "history.csv"
        histories[run_id] = _read_history(path) if path.is_file() else None
    return histories


def _metric(run: dict | None, split: str, key: str = "accuracy") -> float:
    return math.nan if run is None else float(run[split][key])


def _select(runs: Mapping[str, dict | None], family: str, k: int | None = None) -> dict[str, dict | None]:
    """The runs of one family (and freeze depth), in optimizer order then input order."""
    chosen = {
        run_id: run
        for run_id, run in runs.items()
        if parse_name(run_id)[0] == family and (k is None or parse_name(run_id)[1] == k)
    }
    return dict(sorted(chosen.items(), key=lambda item: _optimizer_rank(parse_name(item[0])[2])))


def _optimizer_rank(optimizer: str | None) -> int:
    return list(OPTIMIZERS).index(optimizer) if optimizer in OPTIMIZERS else len(OPTIMIZERS)


def _label(optimizer: str | None) -> str:
    return OPTIMIZERS.get(optimizer, str(optimizer))


def best_by_val(candidates: Mapping[str, dict | None]) -> str | None:
    """The finished candidate with the highest validation accuracy (first on ties)."""
    finished = [run_id for run_id, run in candidates.items() if run is not None]
    return max(finished, key=lambda run_id: _metric(candidates[run_id], "val"), default=None)


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
        "val_accuracy": _metric(run, "val"),
        "test_accuracy": _metric(run, "test"),
    }


def vgg_by_initialisation(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 5: random weights (vgg16-scratch-*) against fixed feature extraction (vgg16-freeze5-*).

    Losses are the kept model's (best epoch's) train and val loss, so they describe the
    same weights as the accuracies.
    """
    groups = (
        ("random weights", _select(runs, "scratch")),
        ("fixed feature extraction", _select(runs, "freeze", k=5)),
    )
    rows = [
        {
            "run": run_id,
            "initialisation": name,
            "optimizer": _label(parse_name(run_id)[2]),
            **_loss_and_accuracy(run),
        }
        for name, group in groups
        for run_id, run in group.items()
    ]
    return _frame(
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
            "optimizer": _label(parse_name(run_id)[2]),
            **_loss_and_accuracy(run),
            "test_f1_weighted": _metric(run, "test", "f1_weighted"),
            "epochs_run": math.nan if run is None else run["epochs_run"],
            "stopped_early": math.nan if run is None else run["stopped_early"],
            "diverged": math.nan if run is None else run.get("diverged", False),
        }
        for run_id, run in _select(runs, "freeze", k=3).items()
    ]
    return _frame(
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
            **{key: _metric(run, split, key) for key in ("accuracy", "f1_weighted", "f1_macro")},
        }
        for split in SPLITS
    ]
    return _frame(rows, "split", ["n", "accuracy", "f1_weighted", "f1_macro"], {"n": "Int64"})


TRANSFER = "Transfer"
BEST_DEPTH = "Best freeze depth (by validation)"
PROBE = "Linear probe (logistic regression on frozen VGG-16 features)"
MAJORITY = "Majority class"


def _summary_candidates(runs: Mapping[str, dict | None], transfer_depth: int) -> dict[str, dict[str, dict | None]]:
    depths = {run_id: run for run_id, run in _select(runs, "freeze").items() if 1 <= parse_name(run_id)[1] <= 4}
    return {
        "LeNet-5": _select(runs, "lenet5"),
        "Random weights": _select(runs, "scratch"),
        "Fixed feature extraction": _select(runs, "freeze", k=5),
        TRANSFER: _select(runs, "freeze", k=transfer_depth),
        BEST_DEPTH: depths,
        "Fine-tuning": _select(runs, "finetune"),
    }


def primary_runs(runs: Mapping[str, dict | None]) -> dict[str, dict | None]:
    """The runs under their plain ids (seed replicates left out).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.

    Returns:
        The same mapping without ``<run-id>-seed<s>`` replicates.
    """
    return {run_id: run for run_id, run in runs.items() if split_replicate(run_id)[1] is None}


def seed_spread(runs: Mapping[str, dict | None], run_id: str) -> tuple[int, float, float | str]:
    """(finished seeds, mean, sd) of the test accuracy of ``run_id`` and its seed replicates.

    The sd of one seed is :data:`NOT_APPLICABLE`, of none NaN (reads ``missing``).
    """
    values = [
        _metric(run, "test") for other, run in runs.items() if split_replicate(other)[0] == run_id and run is not None
    ]
    count, (mean, sd) = len(values), mean_and_sd(values)
    return count, mean, NOT_APPLICABLE if count == 1 else sd


def _interval(run: dict | None, key: str) -> tuple[float, float]:
    bounds = ((run or {}).get("test") or {}).get(f"{key}_ci")
    return (math.nan, math.nan) if bounds is None else (float(bounds[0]), float(bounds[1]))


def _test_figures(run: dict | None) -> dict:
    """Test accuracy and weighted F1, each with its 95% bootstrap interval."""
    row = {}
    for key in ("accuracy", "f1_weighted"):
        low, high = _interval(run, key)
        row.update({f"test_{key}": _metric(run, "test", key), f"test_{key}_ci_low": low, f"test_{key}_ci_high": high})
    return row


SUMMARY_COLUMNS = [
    "run",
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "test_f1_weighted",
    "test_f1_weighted_ci_low",
    "test_f1_weighted_ci_high",
    "seeds",
    "test_accuracy_seed_mean",
    "test_accuracy_seed_sd",
    "missing_candidates",
]


def summary(runs: Mapping[str, dict | None], transfer_depth: int = 3, probe: dict | None = None) -> pd.DataFrame:
    """Table 8: each approach's run picked by VALIDATION accuracy, with 95% bootstrap intervals.

    "Transfer" is the study's chosen depth (``transfer_depth`` frozen blocks, best optimizer
    by validation), as in the study, where the depth was chosen from Grad-CAM maps;
    "Best freeze depth" is the best of depths 1-4 by validation. Two baselines close the
    table: the linear probe and the majority class. ``seeds`` counts the finished training
    seeds of the chosen run, with the mean and sd of their test accuracy;
    ``missing_candidates`` counts unfinished runs of the group.

    Args:
        runs: runs by id, as :func:`load_runs` returns them (seed replicates included).
        transfer_depth: the frozen depth of the "Transfer" row.
        probe: the linear probe's metrics (:func:`load_probe`), or None to leave its row out.

    Returns:
        One row per approach, indexed by model, with :data:`SUMMARY_COLUMNS`.
    """
    primary = primary_runs(runs)
    rows = []
    for model, candidates in _summary_candidates(primary, transfer_depth).items():
        chosen = best_by_val(candidates)
        run = None if chosen is None else candidates[chosen]
        seeds, seed_mean, seed_sd = (0, math.nan, math.nan) if chosen is None else seed_spread(runs, chosen)
        label = f"{TRANSFER} ({transfer_depth} frozen blocks)" if model == TRANSFER else model
        rows.append(
            {
                "model": label,
                "run": chosen or (MISSING if candidates else NOT_IN_GRID),
                **{f"{split}_accuracy": _metric(run, split) for split in SPLITS},
                **_test_figures(run),
                "seeds": seeds,
                "test_accuracy_seed_mean": seed_mean,
                "test_accuracy_seed_sd": seed_sd,
                "missing_candidates": sum(r is None for r in candidates.values()),
            }
        )
    if probe is not None:
        rows.append(
            {
                "model": PROBE,
                "run": "linear-probe",
                **{f"{s}_accuracy": _metric(probe, s) for s in SPLITS},
                **_test_figures(probe),
                "seeds": math.nan,
                "test_accuracy_seed_mean": math.nan,
                "test_accuracy_seed_sd": NOT_APPLICABLE,
                "missing_candidates": 0,
            }
        )
    baseline = _majority(primary)
    if baseline is not None:
        rows.append(
            {
                "model": MAJORITY,
                "run": "always class " + str(baseline["class_index"]),
                "test_accuracy": baseline["accuracy"],
                "test_f1_weighted": baseline["f1_weighted"],
                "test_accuracy_seed_sd": NOT_APPLICABLE,
            }
        )
    return _frame(rows, "model", SUMMARY_COLUMNS, {"seeds": "Int64", "missing_candidates": "Int64"})


def freeze_grid(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9: test accuracy by frozen blocks (rows, deepest first) and optimizer (columns).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.

    Returns:
        The grid; NaN where a run is unfinished.
    """
    cells = {parse_name(run_id)[1:]: _metric(run, "test") for run_id, run in _select(runs, "freeze").items()}
    depths = sorted({k for k, _ in cells}, reverse=True)
    optimizers = sorted({opt for _, opt in cells}, key=_optimizer_rank)
    grid = pd.DataFrame(
        [[cells.get((k, opt), math.nan) for opt in optimizers] for k in depths],
        index=pd.Index(depths, name="frozen_blocks"),
        columns=[_label(opt) for opt in optimizers],
        dtype=float,
    )
    grid.columns.name = "optimizer"
    return grid


def _frame(rows: list[dict], index: str, columns: list[str], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rows to a frame with a named index; nullable dtypes keep counts whole next to a missing run."""
    return pd.DataFrame(rows, columns=[index, *columns]).astype(dict(dtypes or {})).set_index(index)


def sanity_gate(runs: Mapping[str, dict | None], probe: dict | None = None) -> dict:
    """Does the best VGG-16 run (by val accuracy) beat the majority class AND the linear probe on test?

    Both accuracy and weighted F1 must be strictly higher than each baseline's; with no
    finished VGG-16 run the gate fails. Without a probe result only the majority class
    is checked (and ``probe_accuracy`` is None).

    Args:
        runs: runs by id, as :func:`load_runs` returns them.
        probe: the linear probe's metrics (:func:`load_probe`), or None.

    Returns:
        The gate as written to ``sanity_gate.json``: the chosen run, its and the baselines'
        figures, ``beats_majority``, ``beats_probe`` and ``passed``.
    """
    vgg = {run_id: run for run_id, run in primary_runs(runs).items() if parse_name(run_id)[0] != "lenet5"}
    chosen = best_by_val(vgg)
    gate = {
        "run": chosen,
        "val_accuracy": None,
        "accuracy": None,
        "f1_weighted": None,
        "baseline_class_index": None,
        "baseline_accuracy": None,
        "baseline_f1_weighted": None,
        "probe_accuracy": None,
        "probe_f1_weighted": None,
        "beats_majority": False,
        "beats_probe": False,
        "passed": False,
    }
    if chosen is None:
        return gate
    run, baseline = vgg[chosen], vgg[chosen]["majority_baseline"]
    accuracy, f1 = _metric(run, "test"), _metric(run, "test", "f1_weighted")
    gate.update(
        {
            "val_accuracy": _metric(run, "val"),
            "accuracy": accuracy,
            "f1_weighted": f1,
            "baseline_class_index": baseline["class_index"],
            "baseline_accuracy": baseline["accuracy"],
            "baseline_f1_weighted": baseline["f1_weighted"],
            "beats_majority": bool(accuracy > baseline["accuracy"] and f1 > baseline["f1_weighted"]),
        }
    )
    if probe is not None:
        gate.update(
            {
                "probe_accuracy": _metric(probe, "test"),
                "probe_f1_weighted": _metric(probe, "test", "f1_weighted"),
            }
        )
        gate["beats_probe"] = bool(accuracy > gate["probe_accuracy"] and f1 > gate["probe_f1_weighted"])
    gate["passed"] = gate["beats_majority"] and (probe is None or gate["beats_probe"])
    return gate


def _majority(runs: Mapping[str, dict | None]) -> dict | None:
    """The majority-class baseline; every run of an experiment shares the same data split."""
    return next((run["majority_baseline"] for run in runs.values() if run is not None), None)


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
    cells = {parse_name(run_id)[1:]: (run_id, run) for run_id, run in _select(primary, "freeze").items()}
    pairs = [
        (f"{_label(opt)}: {k} vs {k + 1} frozen blocks", None, cells[(k, opt)], cells[(k + 1, opt)])
        for (k, opt) in sorted(cells, key=lambda c: (_optimizer_rank(c[1]), c[0]))
        if (k + 1, opt) in cells
    ]
    return _paired_rows(pairs)


def _paired_rows(pairs: list[tuple]) -> pd.DataFrame:
    rows = []
    for name_a, name_b, (id_a, run_a), (id_b, run_b) in pairs:
        test = paired_test(run_a, run_b)
        difference = _metric(run_a, "test") - _metric(run_b, "test")
        p_value = math.nan if test is None else test.p_value
        rows.append(
            {
                "comparison": name_a if name_b is None else f"{name_a} vs {name_b}",
                "run_a": id_a,
                "run_b": id_b,
                "test_accuracy_a": _metric(run_a, "test"),
                "test_accuracy_b": _metric(run_b, "test"),
                "difference": difference,
                "only_a_correct": math.nan if test is None else test.only_a_correct,
                "only_b_correct": math.nan if test is None else test.only_b_correct,
                "p_value": p_value,
                "verdict": verdict(difference, p_value),
            }
        )
    return _frame(
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


def paper_comparison(
    runs: Mapping[str, dict | None], transfer_depth: int = 3, probe: dict | None = None
) -> pd.DataFrame:
    """The study's claims checked on our runs, and where our absolute accuracy stands on elpv.

    Orderings are compared (Spearman's rank correlation of Table 8's approaches and of
    Table 9's cells with the paper's); pairwise claims with McNemar's test; "momentum
    methods beat plain SGD" with a sign test over the freeze depths. Absolute accuracy is
    set only beside published results on the same data (elpv), never beside the study's.
    """
    primary = primary_runs(runs)
    table8, grid = summary(runs, transfer_depth, probe), freeze_grid(primary)
    transfer = f"{TRANSFER} ({transfer_depth} frozen blocks)"
    paper_names = {
        "LeNet-5": "LeNet-5",
        "Random weights": "Random weights",
        "Fixed feature extraction": "Fixed feature extraction",
        "Transfer": transfer,
        "Fine-tuning": "Fine-tuning",
    }
    cells = {
        (k, opt): grid.loc[k, _label(opt)] if k in grid.index and _label(opt) in grid else math.nan
        for k, row in PAPER_FREEZE_GRID.items()
        for opt in row
    }
    depth_means = mean_by(cells, 0)

    def pick(model: str) -> dict | None:
        return runs.get(table8.loc[model, "run"]) if model in table8.index else None

    claims = [
        rank_agreement(
            "Table 8: ordering of the five approaches (test accuracy)",
            {name: paper[2] for name, paper in PAPER_SUMMARY.items()},
            {name: table8.loc[ours, "test_accuracy"] for name, ours in paper_names.items()},
        ),
        rank_agreement(
            "Table 9: ordering of the freeze depth x optimizer cells (test accuracy)",
            {key: PAPER_FREEZE_GRID[key[0]][key[1]] for key in cells},
            cells,
        ),
        beats(
            "Fine-tuning beats transfer (3 frozen blocks)",
            "0.792 vs 0.778",
            "fine-tuning",
            pick("Fine-tuning"),
            "transfer",
            pick(transfer),
        ),
        beats(
            "Transfer beats random weights",
            "0.778 vs 0.569",
            "transfer",
            pick(transfer),
            "random weights",
            pick("Random weights"),
        ),
        beats("Transfer beats LeNet-5", "0.778 vs 0.625", "transfer", pick(transfer), "LeNet-5", pick("LeNet-5")),
        beats(
            "Transfer beats fixed feature extraction",
            "0.778 vs 0.653",
            "transfer",
            pick(transfer),
            "fixed features",
            pick("Fixed feature extraction"),
        ),
        sign_test(
            "Momentum methods (Momentum, NAG) beat plain SGD",
            "7 wins, 2 losses, 1 tie of 10 cells",
            [
                (cells[(k, opt)], cells[(k, "sgd")])
                for k in PAPER_FREEZE_GRID
                for opt in ("momentum", "nag")
                if cells[(k, opt)] == cells[(k, opt)] and cells[(k, "sgd")] == cells[(k, "sgd")]
            ],
        ),
        _depth_claim(primary, depth_means),
    ]
    frame = claims_table(claims)
    best = sanity_gate(runs)
    elpv = f"best VGG-16 run by validation: {best['run']} at {best['accuracy']:.3f}" if best["run"] else MISSING
    frame.loc["Absolute accuracy on elpv (published: same data, their protocol)"] = [
        f"Deitsch et al. 2019: {DEITSCH_2019_ELPV_ACCURACY:.4f} (VGG-19, 300 px); later work 0.835-0.90",
        elpv,
        math.nan,
        "reference only",
        "none",
    ]
    return frame


def _depth_claim(runs: Mapping[str, dict | None], depth_means: Mapping[int, float]) -> Claim:
    """The claim "freezing 3 blocks is best", checked on our runs.

    Our best depth by mean test accuracy over optimizers is tested against depth 3's best
    run (by validation) with McNemar.
    """
    claim, paper = "Freezing blocks 1-3 is best", "3 frozen blocks best (0.778, Momentum/NAG)"
    if 3 not in depth_means or not depth_means:
        return Claim(claim, paper, "depth 3 not measured", math.nan, "not measured", "McNemar")
    best_depth = max(depth_means, key=depth_means.get)
    means = ", ".join(f"k={k}: {depth_means[k]:.3f}" for k in sorted(depth_means))
    if best_depth == 3:
        return Claim(claim, paper, f"best depth 3 (mean test accuracy {means})", math.nan, "holds", "ranking")
    run_best = runs.get(best_by_val(_select(runs, "freeze", k=best_depth)) or "")
    run_three = runs.get(best_by_val(_select(runs, "freeze", k=3)) or "")
    test = paired_test(run_best, run_three)
    p_value = math.nan if test is None else test.p_value
    text = f"best depth {best_depth} (mean test accuracy {means})"
    if p_value == p_value and p_value < ALPHA:
        return Claim(claim, paper, text, p_value, "contradicted", "McNemar (best run at each depth)")
    return Claim(
        claim,
        paper,
        text + "; depth 3 not significantly worse",
        p_value,
        "tied with the best depth",
        "McNemar (best run at each depth)",
    )


def table9_statistics(runs: Mapping[str, dict | None]) -> pd.DataFrame:
    """Table 9 in long form, with 95% bootstrap intervals and the spread across training seeds.

    Each cell's test accuracy and weighted F1 with their intervals, and the mean and sd of
    test accuracy across training seeds.
    """
    rows = []
    for run_id, run in _select(primary_runs(runs), "freeze").items():
        k, optimizer = parse_name(run_id)[1:]
        seeds, seed_mean, seed_sd = seed_spread(runs, run_id)
        rows.append(
            {
                "run": run_id,
                "frozen_blocks": k,
                "optimizer": _label(optimizer),
                **_test_figures(run),
                "seeds": seeds,
                "test_accuracy_seed_mean": seed_mean,
                "test_accuracy_seed_sd": seed_sd,
            }
        )
    columns = [
        "frozen_blocks",
        "optimizer",
        "test_accuracy",
        "test_accuracy_ci_low",
        "test_accuracy_ci_high",
        "test_f1_weighted",
        "test_f1_weighted_ci_low",
        "test_f1_weighted_ci_high",
        "seeds",
        "test_accuracy_seed_mean",
        "test_accuracy_seed_sd",
    ]
    return _frame(rows, "run", columns, {"frozen_blocks": "Int64", "seeds": "Int64"})


TABLES = {  # file stem: (builder, best columns, best scope, caption); builders take (runs, transfer_depth, probe)
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
        "Table 8, differences tested: McNemar's exact test on paired test predictions.",
    ),
    "table9_freeze_grid": (
        lambda runs, *_: freeze_grid(primary_runs(runs)),
        None,
        "grid",
        "Table 9. Test accuracy by frozen blocks 1..k and optimizer.",
    ),
    "table9_statistics": (
        lambda runs, *_: table9_statistics(runs),
        ["test_accuracy"],
        "column",
        "Table 9 with 95% bootstrap intervals and the spread across training seeds.",
    ),
    "table9_tests": (
        lambda runs, *_: freeze_tests(runs),
        [],
        "column",
        "Table 9, neighbouring freeze depths tested: McNemar's exact test, per optimizer.",
    ),
    "comparison_paper": (
        paper_comparison,
        [],
        "column",
        "The study's claims checked on our runs (p < 0.05 for 'holds'/'contradicted'), "
        "and absolute accuracy beside published results on the same data only.",
    ),
}
TABLE_STEMS = ["table4_lenet5_layout", *TABLES]


def _gate_line(gate: dict, classes: Sequence[str]) -> str:
    if gate["run"] is None:
        return "FAILED: no VGG-16 run has finished, so nothing can be compared with the baselines."
    verdict_word = "PASSED" if gate["passed"] else "FAILED"
    line = (
        f"{verdict_word}: {gate['run']} (best VGG-16 run by validation accuracy) scores test accuracy "
        f"{gate['accuracy']:.3f} and weighted F1 {gate['f1_weighted']:.3f}; the majority class (always "
        f"'{classes[gate['baseline_class_index']]}') scores {gate['baseline_accuracy']:.3f} and "
        f"{gate['baseline_f1_weighted']:.3f}"
    )
    if gate["probe_accuracy"] is not None:
        line += (
            f", the linear probe on frozen VGG-16 features {gate['probe_accuracy']:.3f} and "
            f"{gate['probe_f1_weighted']:.3f}"
        )
    line += "."
    if not gate["beats_majority"]:
        line += " The trained network does not beat always guessing the most frequent class: training failed."
    elif gate["probe_accuracy"] is not None and not gate["beats_probe"]:
        line += (
            " It does not beat a logistic regression on the pretrained network's features, so training "
            "added nothing to what the pretrained features already give: do not read the grid as evidence."
        )
    return line


def _summary_markdown(
    runs: Mapping[str, dict | None], tables: dict[str, pd.DataFrame], gate: dict, classes: Sequence[str]
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
        "images; 'holds' and 'contradicted' need p < 0.05.",
    ]
    for stem in ("table8_summary", "table8_tests", "table9_freeze_grid", "table9_tests", "comparison_paper"):
        _, best, scope, caption = TABLES[stem]
        df = tables[stem]
        sections += [
            f"## {caption}",
            to_markdown(df, best_mask(df, df.columns if best is None else best, scope)),
        ]
    sections += ["## Sanity gate", _gate_line(gate, classes)]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def write_all_tables(
    runs_dir: str | os.PathLike,
    run_ids: Sequence[str],
    out_dir: str | os.PathLike,
    input_shape: Sequence[int],
    num_classes: int,
    classes: Sequence[str],
    transfer_depth: int = 3,
    probe: dict | None = None,
) -> list[Path]:
    """Tables 4-9, their tests, the paper comparison, sanity_gate.json and summary.md; returns the files.

    Args:
        runs_dir: the experiment's ``runs/`` folder.
        run_ids: the runs of the grid; may include seed replicates (``<run-id>-seed<s>``).
        out_dir: where to write the tables.
        input_shape: the image shape (height, width, channels), for Table 4's LeNet-5 layout.
        num_classes: the number of classes.
        classes: the class names, index order (the majority class is named in the gate).
        transfer_depth: the frozen depth of Table 8's "Transfer" row.
        probe: the linear probe's metrics (with ``test_predictions``), or None.

    Returns:
        Every file written.

    Raises:
        LayerscopeError: ``classes`` of another length than ``num_classes``, or runs that
            cannot be read (see :func:`load_runs`).
    """
    if len(classes) != num_classes:
        raise LayerscopeError(f"{num_classes} classes expected but {len(classes)} class names given: {list(classes)}")
    out = Path(out_dir)
    runs = load_runs(runs_dir, run_ids)
    files = write_table(
        lenet5_layout(input_shape, num_classes),
        out / "table4_lenet5_layout",
        caption=f"Table 4. LeNet-5 layout for input {' x '.join(map(str, input_shape))}.",
    )
    tables = {}
    for stem, (builder, best, scope, caption) in TABLES.items():
        df = tables[stem] = builder(runs, transfer_depth, probe)
        files += write_table(df, out / stem, df.columns if best is None else best, scope, caption)
    gate = sanity_gate(runs, probe)
    write_text(out / "sanity_gate.json", json.dumps({**gate, "sentence": _gate_line(gate, classes)}, indent=1) + "\n")
    write_text(out / "summary.md", _summary_markdown(primary_runs(runs), tables, gate, classes))
    return [*files, out / "sanity_gate.json", out / "summary.md"]


def load_probe(directory: str | os.PathLike) -> dict:
    """The linear probe's metrics.json with its test predictions (as a run's are loaded).

    Args:
        directory: the probe's output folder.

    Returns:
        The probe's metrics with ``test_predictions`` (None when predictions.csv is absent).

    Raises:
        LayerscopeError: unreadable metrics or predictions.
    """
    metrics_file = Path(directory) / "metrics.json"
    return {
        **_read_metrics(metrics_file),
        "test_predictions": read_predictions(metrics_file.with_name("predictions.csv")),
    }
