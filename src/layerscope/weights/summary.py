"""Reading a weight-change store for figures and tables: one opener, the per-block summary.

Every reader of a store (2D plots, 3D renders, the freeze-depth recommendation) opens it
through :func:`open_readable`, so an empty store fails with the same message everywhere and
an interrupted run's store is drawn with the same warning.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from layerscope.core.errors import LayerscopeError
from layerscope.weights.store import WeightChangeStore

log = logging.getLogger(__name__)


def open_readable(store: WeightChangeStore | str | os.PathLike) -> WeightChangeStore:
    """The store (opened if a path) with at least one reading; an interrupted run's is logged.

    Raises:
        LayerscopeError: an unreadable store or one with no readings.
    """
    store = store if isinstance(store, WeightChangeStore) else WeightChangeStore(store)
    if store.n_readings == 0:
        raise LayerscopeError(f"{store.path} has no readings to draw")
    if not store.complete:
        log.warning("%s is from an interrupted run; drawing its %d readings", store.path, store.n_readings)
    return store


def block_summary(store: WeightChangeStore) -> pd.DataFrame:
    """Per reading and block: period and accumulated change relative to the block's weight L1.

    A block with a non-finite reading in any of its layers (training diverged) reads NaN,
    not the sum of its finite layers; a block with no weights (norm 0) reads 0.
    """
    columns, keys = ["accumulated", "period_change", "weight_l1", "net"], ["reading", "step", "block"]
    summary = store.layer_summary()
    sums = summary.groupby(keys, sort=False)[columns].sum(min_count=1)
    diverged = (~np.isfinite(summary[columns[:3]])).groupby([summary[k] for k in keys], sort=False).any()
    sums[columns[:3]] = sums[columns[:3]].mask(diverged)
    sums = sums.reset_index()
    norm = sums["weight_l1"].where(sums["weight_l1"] > 0)
    empty = sums["weight_l1"] == 0
    sums["accumulated_rel"] = (sums["accumulated"] / norm).mask(empty, 0.0)
    sums["period_change_rel"] = (sums["period_change"] / norm).mask(empty, 0.0)
    sums["net_rel"] = (sums["net"] / norm).where(norm.notna(), 0.0)  # NaN: a store without the net
    return sums
