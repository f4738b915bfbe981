"""Classification metrics of a run, the majority-class baseline, and predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from layerscope.core.bootstrap import bootstrap_intervals


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, weighted and macro F1, per-class precision/recall/F1 and the confusion matrix."""
    labels = list(range(len(classes)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def add_intervals(metrics: dict, y_true: np.ndarray, probabilities: np.ndarray, seed: int) -> dict:
    """``metrics`` plus 95% bootstrap intervals of accuracy and weighted F1 (``accuracy_ci``, ``f1_weighted_ci``)."""
    intervals = bootstrap_intervals(y_true, probabilities.argmax(axis=1), probabilities.shape[1], seed)
    return {**metrics, **{f"{key}_ci": [interval.low, interval.high] for key, interval in intervals.items()}}


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray, num_classes: int) -> dict:
    """Accuracy and weighted F1 of always predicting the most frequent training class."""
    majority = int(np.bincount(y_train, minlength=num_classes).argmax())
    y_pred = np.full_like(y_test, majority)
    labels = list(range(num_classes))
    return {
        "class_index": majority,
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "f1_weighted": float(f1_score(y_test, y_pred, labels=labels, average="weighted", zero_division=0)),
    }


def predictions_table(
    paths: list[str], y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """One row per test image: path, true and predicted class, class probabilities."""
    table = pd.DataFrame(
        {
            "path": paths,
            "true": [classes[i] for i in y_true],
            "predicted": [classes[i] for i in probabilities.argmax(axis=1)],
        }
    )
    for i, name in enumerate(classes):
        table[f"p_{name}"] = probabilities[:, i].round(6)
    return table
