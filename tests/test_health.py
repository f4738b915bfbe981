"""The convergence and collapse flags on hand-made histories and predictions."""

import pytest

from layerscope.train.health import COLLAPSE_MARGIN, best_epoch, flags_of, run_health


def history(*val_losses):
    return [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate(val_losses)]


def test_best_epoch_is_the_first_lowest_val_loss():
    assert best_epoch(history(0.9, 0.5, 0.7, 0.5)) == 2
    assert best_epoch(history(float("nan"), 0.8)) == 2
    assert best_epoch(history(float("nan"))) is None
    assert best_epoch([]) is None


def test_a_run_stopped_by_early_stopping_is_converged():
    health = run_health(history(0.9, 0.5, 0.6, 0.7), [0, 1, 2, 1], 0.70, 0.50, stopped_early=True)
    assert health == {
        "best_epoch": 2,
        "epochs_run": 4,
        "stopped_early": True,
        "predicted_classes": 3,
        "not_converged": False,
        "collapsed": False,
        "flags": [],
    }


def test_best_epoch_last_is_not_converged():
    health = run_health(history(0.9, 0.7, 0.5), [0, 1], 0.70, 0.50, stopped_early=True)
    assert health["not_converged"] and health["flags"] == ["not converged"]
    # one epoch is always its own best: a 1-epoch budget never converges
    assert run_health(history(0.9), [0, 1], 0.70, 0.50, stopped_early=True)["not_converged"]


def test_a_run_that_ran_out_of_epochs_before_early_stopping_is_not_converged():
    """Best epoch 11 of a 12-epoch cap with patience 3: the budget ended it, not early stopping."""
    losses = [1.0 - 0.05 * i for i in range(11)] + [0.6]
    health = run_health(history(*losses), [0, 1, 2], 0.70, 0.50, stopped_early=False)
    assert health["best_epoch"] == 11 and health["epochs_run"] == 12
    assert health["not_converged"] and health["flags"] == ["not converged"]
    stopped = run_health(history(*losses), [0, 1, 2], 0.70, 0.50, stopped_early=True)
    assert not stopped["not_converged"] and stopped["flags"] == []


def test_one_predicted_class_is_collapsed_whatever_the_accuracy():
    health = run_health(history(0.9, 0.5, 0.6), [2, 2, 2, 2], 0.80, 0.50, stopped_early=True)
    assert health["collapsed"] and health["predicted_classes"] == 1 and health["flags"] == ["collapsed"]


@pytest.mark.parametrize(
    ("accuracy", "collapsed"),
    [(0.575 + COLLAPSE_MARGIN, True), (0.575 + COLLAPSE_MARGIN + 0.001, False), (0.40, True)],
)
def test_near_or_below_the_majority_class_is_collapsed(accuracy, collapsed):
    health = run_health(history(0.9, 0.5, 0.6), [0, 1, 3], accuracy, 0.575, stopped_early=True)
    assert health["collapsed"] is collapsed


def test_both_flags_together_and_read_back():
    health = run_health(history(0.9, 0.8), [1, 1, 1], 0.5, 0.575, stopped_early=False)
    assert health["flags"] == ["not converged", "collapsed"]
    assert flags_of({"health": health}) == ["not converged", "collapsed"]
    assert flags_of(None) == [] and flags_of({"test": {}}) == []
