"""Patience chosen from no-stopping histories (benchmarks/select_patience.py), on hand-worked histories."""

import pandas as pd
import pytest
from select_patience import patience_table, pick

from layerscope.train.stopping import early_stop

# Best at epoch 2 (0.8), a dip at 5 (0.79), lowest at 9 (0.5).
LOSSES = [1.0, 0.8, 0.9, 0.85, 0.79, 0.81, 0.82, 0.83, 0.5, 0.6]


@pytest.mark.parametrize(
    ("patience", "expected"),
    [
        (1, (3, 2)),  # epoch 3 is worse than epoch 2: stop at once
        (2, (4, 2)),  # epochs 3 and 4 do not improve on 0.8
        (3, (8, 5)),  # epoch 5 improves (0.79 < 0.8); 6, 7, 8 do not
        (4, (10, 9)),  # epoch 9 improves before the fourth; the history ends at 10
        (None, (10, 9)),  # no early stopping: the cap, keeping the lowest epoch
    ],
)
def test_early_stop_by_hand(patience, expected):
    assert early_stop(LOSSES, patience) == expected


def test_a_tie_is_not_an_improvement():
    # The callback's rule is a strictly lower loss: 0.8 again at epoch 2 counts as waiting
    assert early_stop([0.8, 0.8, 0.7], 1) == (2, 1)


def history(losses):
    """A validation history whose accuracy is 0.50, 0.51, ... by epoch."""
    return pd.DataFrame({"val_loss": losses, "val_accuracy": [0.5 + i / 100 for i in range(len(losses))]})


def test_table_and_pick_by_hand():
    histories = {
        "vgg16-scratch-momentum": history(LOSSES),
        "vgg16-scratch-momentum-seed43": history([1.0, 0.7, 0.72, 0.71, 0.75, 0.8, 0.9, 0.95, 0.99, 1.0]),
    }
    table = patience_table(histories, patiences=(2, 3, 4))
    seed42 = table[table["run"] == "vgg16-scratch-momentum"].set_index("patience")
    # Patience 3 keeps epoch 5 (0.79) against the cap's lowest 0.5: 0.29 too high
    assert seed42.loc[3, "kept_epoch"] == 5
    assert seed42.loc[3, "excess_loss"] == pytest.approx(0.29)
    assert seed42.loc[3, "val_accuracy"] == pytest.approx(0.54)
    # Patience 4 reaches epoch 9 but then runs to the cap: it does not stop before it
    assert seed42.loc[4, "kept_epoch"] == 9 and not seed42.loc[4, "stops_before_cap"]
    assert set(table["family"]) == {"scratch"}
    # Patience 4 is the first to keep seed 42's epoch 9 (the cap's lowest); seed 43 keeps its lowest from patience 2
    assert pick(table, tolerance=0.01) == {"scratch": 4}
    # Seed 42's dip at epoch 5 (0.79) is 0.29 above its lowest: a tolerance above that settles for patience 3
    assert pick(table, tolerance=0.295) == {"scratch": 3}
    assert pick(table, tolerance=0.0001) == {"scratch": 4}
