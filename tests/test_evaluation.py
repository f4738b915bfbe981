"""Four-class, balanced and binary accuracy against a hand-made confusion matrix."""

import numpy as np
import pytest

from layerscope.train.evaluation import binary_metrics, classification_metrics, majority_baseline

ELPV = ["0.00", "0.33", "0.67", "1.00"]
# rows: true class, columns: predicted class (elpv's defect probabilities)
CONFUSION = np.array(
    [
        [50, 5, 0, 5],  # 60 functional cells
        [8, 2, 0, 0],  # 10 at 0.33: only 2 right
        [2, 0, 0, 3],  # 5 at 0.67: never right
        [4, 0, 1, 20],  # 25 defective
    ]
)


def labels_of(confusion):
    y_true, y_pred = [], []
    for t in range(confusion.shape[0]):
        for p in range(confusion.shape[1]):
            y_true += [t] * confusion[t, p]
            y_pred += [p] * confusion[t, p]
    return np.array(y_true), np.array(y_pred)


def test_four_class_balanced_and_binary_accuracy_by_hand():
    y_true, y_pred = labels_of(CONFUSION)
    metrics = classification_metrics(y_true, np.eye(4)[y_pred], ELPV)
    assert metrics["confusion_matrix"] == CONFUSION.tolist()
    assert metrics["accuracy"] == pytest.approx(72 / 100)
    assert metrics["balanced_accuracy"] == pytest.approx((50 / 60 + 2 / 10 + 0 / 5 + 20 / 25) / 4)
    binary = metrics["binary"]
    # functional = classes 0.00 and 0.33 (70 cells), defective = 0.67 and 1.00 (30 cells)
    # functional predicted functional: 50 + 5 + 8 + 2 = 65; defective predicted defective: 3 + 20 + 1 = 24
    assert binary["accuracy"] == pytest.approx((65 + 24) / 100)
    assert binary["balanced_accuracy"] == pytest.approx((65 / 70 + 24 / 30) / 2)
    assert (binary["cut"], binary["defective"]) == (0.5, ["0.67", "1.00"])


def test_binary_is_left_out_for_names_that_are_not_defect_probabilities():
    assert binary_metrics(np.array([0, 1]), np.array([1, 1]), ["crack", "ok"]) is None
    assert binary_metrics(np.array([0, 1]), np.array([1, 1]), ["0", "2"]) is None  # 2 is no probability


def test_majority_baseline_binary():
    y_train = np.array([0] * 6 + [1] * 2 + [3] * 4)  # functional 8 of 12: always guess functional
    y_test = np.array([0, 0, 1, 2, 3])
    baseline = majority_baseline(y_train, y_test, 4, ELPV)
    assert (baseline["class_index"], baseline["accuracy"], baseline["binary_accuracy"]) == (0, 0.4, 0.6)
    assert "binary_accuracy" not in majority_baseline(y_train, y_test, 4, ["a", "b", "c", "d"])
