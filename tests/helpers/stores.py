"""Synthetic weight-change stores: known layer layouts and readings without training."""

from __future__ import annotations

import numpy as np

from layerscope.weights.store import LayerInfo
from layerscope.weights.store_writer import WeightStoreWriter

LENET = [
    LayerInfo("c1", (5, 5, 3, 6), True),
    LayerInfo("c3", (5, 5, 6, 16), True),
    LayerInfo("c5", (5, 5, 16, 120), True),
    LayerInfo("f6", (120, 84), True),
    LayerInfo("logits", (84, 11), True),
]


VGG_SMALL = [
    LayerInfo("block1_conv1", (3, 3, 3, 16), True),
    LayerInfo("block1_conv2", (3, 3, 16, 16), True),
    LayerInfo("block2_conv1", (3, 3, 16, 32), True),
    LayerInfo("block2_conv2", (3, 3, 32, 32), True),
    LayerInfo("fc1", (128, 64), True),
    LayerInfo("logits", (64, 4), True),
]


def synthetic_store(path, layers, frozen=(), readings=4, finish=True, run_id="run", seed=0, net=True):
    """Readings of growing random per-unit changes (net: half the accumulated one, or none);
    layers named in ``frozen`` stay zero."""
    rng = np.random.default_rng(seed)
    writer = WeightStoreWriter.create(path, layers, run_id=run_id, period=5)
    acc = [np.zeros(info.n_units) for info in layers]
    for r in range(readings):
        period = [
            np.zeros(i.n_units) if i.name in frozen else rng.gamma(2.0, 0.01 * (k + 1), i.n_units)
            for k, i in enumerate(layers)
        ]
        acc = [a + p for a, p in zip(acc, period)]
        writer.append(
            step=5 * (r + 1),
            epoch=r // 2 + 1,
            epoch_end=r % 2 == 1,
            units=acc,
            net_units=[a / 2 for a in acc] if net else None,
            summaries={
                "accumulated": np.array([a.sum() for a in acc]),
                "period_change": np.array([p.sum() for p in period]),
                "weight_l1": np.array([0.1 * i.n_params for i in layers]),
            },
        )
    if finish:
        writer.finish()
    return path


HAND_LAYERS = [
    LayerInfo("block1_conv1", (1, 1, 1, 2), True),  # 2 units of 2 parameters (weight and bias)
    LayerInfo("block2_conv1", (1, 1, 1, 3), True),  # 3 units of 2
    LayerInfo("logits", (1, 2), True),  # 2 units of 2
]
"""Three small layers in three blocks (block1, block2, head), every unit two parameters."""


def hand_store(path, readings: list[dict], layers=HAND_LAYERS, run_id="hand", period=2, finish=True):
    """A store holding exactly the given readings: each a dict of ``step``, ``epoch``,
    ``epoch_end``, per-layer ``units`` (and ``net_units``) and per-layer L1 sums
    ``accumulated``, ``period_change``, ``weight_l1`` and ``net``."""
    writer = WeightStoreWriter.create(path, layers, run_id=run_id, period=period)
    for reading in readings:
        writer.append(
            step=reading["step"],
            epoch=reading["epoch"],
            epoch_end=reading["epoch_end"],
            units=[np.asarray(u, float) for u in reading["units"]],
            net_units=[np.asarray(u, float) for u in reading.get("net_units", reading["units"])],
            summaries={name: np.asarray(reading[name], float) for name in SUMMARY_KEYS if name in reading},
        )
    if finish:
        writer.finish()
    return path


SUMMARY_KEYS = ("accumulated", "period_change", "weight_l1", "net")
