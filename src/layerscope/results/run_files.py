"""Reading a run's files (metrics.json, history.csv, predictions.csv) for the result tables.

A run that has not finished reads None, so the tables can show it as missing rather than
leave a silently absent cell. The 95% bootstrap intervals of a run's test accuracy and
weighted F1 are read from its ``predictions.csv`` here, not written by the training job:
a change to how intervals are computed then reruns the tables, not the training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from layerscope.core.bootstrap import bootstrap_intervals
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import read_checked_csv
from layerscope.data.splits import SPLITS
from layerscope.train.health import best_epoch
from layerscope.train.runs import parse_name

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def _read_history(path: Path) -> pd.DataFrame:
    return read_checked_csv(path, HISTORY_COLUMNS, "the training history", "; not a training history")


def _best_epoch(history: pd.DataFrame) -> dict | None:
    """The row of the kept model: training keeps the first epoch with the lowest val_loss."""
    best = best_epoch(history.to_dict("records"))
    if best is None:
        return None
    row = history.iloc[best - 1]
    return {"epoch": int(row["epoch"]), "loss": float(row["loss"]), "val_loss": float(row["val_loss"])}


def _read_metrics(path: Path, interval_seed: int | None = None) -> dict:
    """A metrics.json; with ``interval_seed`` its test figures' intervals from predictions.csv beside it."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the run's metrics ({error})") from error
    absent = [key for key in (*SPLITS, "majority_baseline") if key not in metrics]
    if absent:
        raise LayerscopeError(f"{path}: metrics lack key(s) {', '.join(absent)}")
    if interval_seed is not None:
        intervals = intervals_from_predictions(path.with_name("predictions.csv"), interval_seed)
        metrics["test"] = {**metrics["test"], **intervals}
    return metrics


def intervals_from_predictions(path: Path, seed: int) -> dict[str, list[float]]:
    """95% bootstrap intervals of test accuracy and weighted F1 from a run's predictions.csv.

    The classes, in index order, are its ``p_<class>`` columns (the order training wrote
    them); the resampling is :func:`layerscope.core.bootstrap.bootstrap_intervals`,
    seeded with the config's ``seed``.

    Returns:
        ``{"accuracy_ci": [low, high], "f1_weighted_ci": [low, high]}``.

    Raises:
        LayerscopeError: a missing or unreadable file, or a class not among its ``p_`` columns.
    """
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as error:
        raise LayerscopeError(f"{path}: cannot read the run's test predictions ({error})") from error
    classes = [column.removeprefix("p_") for column in table.columns if column.startswith("p_")]
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted((set(table.get("true", ())) | set(table.get("predicted", ()))) - set(index))
    if unknown or not {"true", "predicted"} <= set(table.columns):
        raise LayerscopeError(
            f"{path}: needs columns true and predicted with classes among its p_ columns {classes}, got {unknown}"
        )
    intervals = bootstrap_intervals(table["true"].map(index), table["predicted"].map(index), len(classes), seed)
    return {f"{key}_ci": [interval.low, interval.high] for key, interval in intervals.items()}


def load_runs(
    runs_dir: str | os.PathLike, run_ids: Sequence[str], interval_seed: int | None = None
) -> dict[str, dict | None]:
    """Each run's metrics.json plus ``best_epoch`` (from history.csv); None for an unfinished run.

    ``best_epoch`` holds the epoch, train loss and val loss of the kept model (lowest
    val_loss), because metrics.json has accuracies and F1 but no losses.

    Args:
        runs_dir: the experiment's ``runs/`` folder.
        run_ids: the runs to load, seed replicates included.
        interval_seed: the config's ``seed``: with it each run's ``test`` gains the intervals
            of :func:`intervals_from_predictions`; without, it has only what metrics.json holds.

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
            **_read_metrics(metrics_file, interval_seed),
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


def load_probe(directory: str | os.PathLike, interval_seed: int | None = None) -> dict:
    """The linear probe's metrics.json with its test predictions (as a run's are loaded).

    Args:
        directory: the probe's output folder.
        interval_seed: the config's ``seed``: with it the test intervals (:func:`intervals_from_predictions`).

    Returns:
        The probe's metrics with ``test_predictions`` (None when predictions.csv is absent).

    Raises:
        LayerscopeError: unreadable metrics or predictions.
    """
    metrics_file = Path(directory) / "metrics.json"
    return {
        **_read_metrics(metrics_file, interval_seed),
        "test_predictions": read_predictions(metrics_file.with_name("predictions.csv")),
    }
