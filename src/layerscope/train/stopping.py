"""Early stopping's rule, in one place.

The training loop applies it epoch by epoch; the patience study replays it over finished
histories to see where another patience would have stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def stopping_step(best: float, wait: int, loss: float, patience: int | None) -> tuple[float, int, bool]:
    """(best, wait, stop) after one epoch's monitored loss.

    An epoch improves when its loss is strictly lower than every earlier one (``best``), which
    resets ``wait``; otherwise ``wait`` grows, and the run stops once it reaches ``patience``
    (None: never).
    """
    if loss < best:
        return loss, 0, False
    wait += 1
    return best, wait, patience is not None and wait >= patience


def early_stop(val_losses: Iterable[float], patience: int | None) -> tuple[int, int]:
    """(epochs run, best epoch), 1-based: what early stopping with ``patience`` makes of a history."""
    best, wait, best_epoch, epoch = math.inf, 0, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        best, wait, stop = stopping_step(best, wait, loss, patience)
        if wait == 0:
            best_epoch = epoch
        if stop:
            break
    return epoch, best_epoch
