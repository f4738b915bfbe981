"""Whether a run's figures can stand for its cell: did it converge, did it collapse?

Under one protocol (the same maximum epochs and early stopping for every run of a grid)
a run should stop because validation loss stopped improving. A run that early stopping
did not end ran out of epochs instead ("not converged"): its best epoch is its last, or
came so late that the patience had not run out at the cap. A run that predicts
one class for every test image, or scores within :data:`COLLAPSE_MARGIN` of always
guessing the majority class, learned nothing ("collapsed"). The tables mark both, and
never pick such a run as a "best" row while a healthy one exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

COLLAPSE_MARGIN = 0.02
NOT_CONVERGED = "not converged"
COLLAPSED = "collapsed"


def best_epoch(history: Sequence[Mapping]) -> int | None:
    """The 1-based epoch whose weights the run keeps: the first with the lowest val_loss.

    None when no epoch has a finite val_loss.
    """
    losses = [row.get("val_loss", math.nan) for row in history]
    finite = [(loss, i) for i, loss in enumerate(losses) if math.isfinite(loss)]  # NaN and inf are not finite
    return None if not finite else min(finite)[1] + 1


def run_health(
    history: Sequence[Mapping],
    test_predicted: Sequence[int],
    test_accuracy: float,
    majority_accuracy: float,
    *,
    stopped_early: bool,
) -> dict:
    """The run's convergence and collapse flags, with the figures that decided them.

    Args:
        history: one row per epoch run, with ``val_loss``.
        test_predicted: predicted class index of every test image.
        test_accuracy: the run's test accuracy.
        majority_accuracy: test accuracy of always predicting the training majority class.
        stopped_early: whether early stopping ended the run (not the epoch cap, not divergence).

    Returns:
        ``best_epoch``, ``epochs_run``, ``stopped_early``, ``predicted_classes`` (distinct
        test predictions), ``not_converged``, ``collapsed`` and ``flags`` (their names,
        empty when healthy).
    """
    best, epochs = best_epoch(history), len(history)
    not_converged = best is None or best == epochs or not stopped_early
    predicted_classes = int(len(np.unique(np.asarray(test_predicted))))
    collapsed = predicted_classes <= 1 or test_accuracy <= majority_accuracy + COLLAPSE_MARGIN
    return {
        "best_epoch": best,
        "epochs_run": epochs,
        "stopped_early": bool(stopped_early),
        "predicted_classes": predicted_classes,
        "not_converged": bool(not_converged),
        "collapsed": bool(collapsed),
        "flags": [name for name, on in ((NOT_CONVERGED, not_converged), (COLLAPSED, collapsed)) if on],
    }


def flags_of(run: Mapping | None) -> list[str]:
    """The health flags of a finished run's metrics (empty for a healthy or unfinished run)."""
    return list(((run or {}).get("health") or {}).get("flags") or [])
