"""Classification metrics of a run, the majority-class baseline, and predictions.

Besides four-class accuracy every split carries balanced accuracy (the mean recall over
classes, which a model that ignores the rare classes cannot inflate) and, where the
class names are defect probabilities (elpv: 0.00, 0.33, 0.67, 1.00), the binary
functional-vs-defective accuracy at the 0.5 cut, the task most published elpv figures
report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

BINARY_CUT = 0.5
PREDICT_BATCH = 64


def predict_splits(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Class probabilities (float64) of every split, from one ``predict`` over all of them.

    One call has one short last batch, so Keras traces its predict step twice, not twice per split.
    """
    from layerscope.train.fit import array_batches  # TensorFlow; the metrics below need none

    names = list(inputs)
    joined = np.concatenate([np.asarray(inputs[name], np.float32) for name in names])
    probabilities = np.asarray(model.predict(array_batches((joined,), PREDICT_BATCH), verbose=0), np.float64)
    return dict(zip(names, np.split(probabilities, np.cumsum([len(inputs[name]) for name in names])[:-1])))


def defect_probabilities(classes: list[str]) -> np.ndarray | None:
    """Each class name read as a defect probability in [0, 1], or None when they are not all such numbers."""
    try:
        values = np.array([float(name) for name in classes])
    except ValueError:
        return None
    return values if np.all((values >= 0) & (values <= 1)) else None


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict | None:
    """Functional vs defective at the 0.5 cut: a class is defective when its defect probability is >= 0.5.

    The predicted class decides the prediction (the same decision the four-class
    accuracy scores). None when the class names are not defect probabilities.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``cut`` and the ``defective`` class names.
    """
    probability = defect_probabilities(classes)
    if probability is None:
        return None
    defective = probability >= BINARY_CUT
    truth, predicted = defective[np.asarray(y_true)], defective[np.asarray(y_pred)]
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)) if len(set(truth)) > 1 else float("nan"),
        "cut": BINARY_CUT,
        "defective": [name for name, bad in zip(classes, defective, strict=True) if bad],
    }


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, weighted and macro F1, per-class figures, the confusion matrix, binary figures."""
    labels = list(range(len(classes)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
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
        "binary": binary_metrics(y_true, y_pred, classes),
    }


def majority_baseline(
    y_train: np.ndarray, y_test: np.ndarray, num_classes: int, classes: list[str] | None = None
) -> dict:
    """Accuracy and weighted F1 of always predicting the most frequent training class.

    With defect-probability ``classes`` also ``binary_accuracy``: always predicting the
    more frequent of functional and defective in training.
    """
    majority = int(np.bincount(y_train, minlength=num_classes).argmax())
    y_pred = np.full_like(y_test, majority)
    labels = list(range(num_classes))
    baseline = {
        "class_index": majority,
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "f1_weighted": float(f1_score(y_test, y_pred, labels=labels, average="weighted", zero_division=0)),
    }
    probability = None if classes is None else defect_probabilities(classes)
    if probability is not None:
        defective = probability >= BINARY_CUT
        train_defective = defective[np.asarray(y_train)]
        guess = bool(train_defective.mean() > 0.5)
        baseline["binary_accuracy"] = float(np.mean(defective[np.asarray(y_test)] == guess))
    return baseline


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
