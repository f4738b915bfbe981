"""Each run's test intervals are read from its predictions.csv by the results stage, not written by training."""

import json

import numpy as np
import pandas as pd
import pytest

from layerscope.core.bootstrap import bootstrap_intervals
from layerscope.core.errors import LayerscopeError
from layerscope.results.run_files import intervals_from_predictions, load_probe, load_runs

CLASSES = ["0.00", "0.33", "1.00"]  # elpv-like names, which must stay strings


def write_predictions(path, true: list[int], predicted: list[int]) -> None:
    """A predictions.csv as training writes it: path, true, predicted, one p_<class> column per class."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "path": [f"cell{i}.png" for i in range(len(true))],
            "true": [CLASSES[i] for i in true],
            "predicted": [CLASSES[i] for i in predicted],
        }
    )
    for i, name in enumerate(CLASSES):
        table[f"p_{name}"] = [float(p == i) for p in predicted]
    table.to_csv(path, index=False)


def write_run(root, run_id: str, true: list[int], predicted: list[int]) -> None:
    """A finished run's metrics.json (with intervals a stale training wrote), history.csv and predictions.csv."""
    run = root / run_id
    write_predictions(run / "predictions.csv", true, predicted)
    split = {"accuracy": 0.5}
    stale = {**split, "accuracy_ci": [0.1, 0.2], "f1_weighted_ci": [0.1, 0.2]}
    metrics = {"train": split, "val": split, "test": stale, "majority_baseline": split}
    (run / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"epoch": [1], "loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]}).to_csv(
        run / "history.csv", index=False
    )


def test_intervals_equal_what_training_computed_from_its_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 3, 120), rng.integers(0, 3, 120)
    write_predictions(tmp_path / "predictions.csv", true.tolist(), predicted.tolist())
    expected = bootstrap_intervals(true, predicted, 3, seed=7)  # what train_run used to stamp into metrics.json
    assert intervals_from_predictions(tmp_path / "predictions.csv", 7) == {
        "accuracy_ci": [expected["accuracy"].low, expected["accuracy"].high],
        "f1_weighted_ci": [expected["f1_weighted"].low, expected["f1_weighted"].high],
    }


def test_a_perfect_run_has_the_point_interval_one(tmp_path):
    write_predictions(tmp_path / "predictions.csv", [0, 1, 2, 2], [0, 1, 2, 2])
    assert intervals_from_predictions(tmp_path / "predictions.csv", 1) == {
        "accuracy_ci": [1.0, 1.0],
        "f1_weighted_ci": [1.0, 1.0],
    }


def test_load_runs_replaces_stored_intervals_only_when_seeded(tmp_path):
    write_run(tmp_path, "lenet5-tanh-sgd", [0, 1, 2, 2], [0, 1, 2, 2])
    seeded = load_runs(tmp_path, ["lenet5-tanh-sgd"], interval_seed=3)["lenet5-tanh-sgd"]["test"]
    assert (seeded["accuracy_ci"], seeded["f1_weighted_ci"], seeded["accuracy"]) == ([1.0, 1.0], [1.0, 1.0], 0.5)
    assert load_runs(tmp_path, ["lenet5-tanh-sgd"])["lenet5-tanh-sgd"]["test"]["accuracy_ci"] == [0.1, 0.2]
    write_run(tmp_path, "probe", [0, 1], [1, 0])
    assert load_probe(tmp_path / "probe", interval_seed=3)["test"]["accuracy_ci"] == [0.0, 0.0]


def test_a_class_outside_the_probability_columns_is_named(tmp_path):
    path = tmp_path / "predictions.csv"
    write_predictions(path, [0, 1], [0, 1])
    path.write_text(path.read_text().replace(",0.33,", ",scratch,"))
    with pytest.raises(
        LayerscopeError, match=r"predictions.csv: .*p_ columns \['0.00', '0.33', '1.00'\], got \['scratch'\]"
    ):
        intervals_from_predictions(path, 0)
    with pytest.raises(LayerscopeError, match="missing.csv: cannot read"):
        intervals_from_predictions(tmp_path / "missing.csv", 0)
