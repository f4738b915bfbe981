"""Relative gradient norm per block at the start of fine-tuning (Auto-RGN, Lee et al. 2023).

Surgical fine-tuning tunes the layers whose gradients are large relative to their
weights, ||g|| / ||w||, and leaves the others; read as a freeze-depth signal, blocks
with a small relative gradient are the ones that can stay frozen. It is not an
explanation: it is the cheap non-explanation signal the explanation-based ones are set
beside. One pass of gradients over a few training batches of the model fine-tuning
starts from, every layer trainable.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from layerscope.core.blocks import block_label
from layerscope.data.prepare import load_split
from layerscope.train.models import load_model, set_frozen_blocks
from layerscope.weights.recorder import recorded_layers


def relative_gradient_norms(model: keras.Model, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """||g|| / ||w|| of every kernel, its gradient averaged over ``batches`` (the mean loss's gradient).

    Args:
        model: the model to fine-tune, with a softmax output; every kernel is read,
            frozen or not (its gradient is what fine-tuning would apply).
        batches: (images, integer labels) pairs.

    Returns:
        One row per layer with a kernel: ``layer``, ``block`` (``block<i>`` or ``head``),
        ``gradient_norm``, ``weight_norm`` and ``rgn`` (their ratio).
    """
    kernels = [(layer.name, layer.kernel.value) for layer in recorded_layers(model)]  # tf.Variables
    totals = [tf.zeros_like(kernel) for _, kernel in kernels]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    count = 0
    for x, y in batches:
        with tf.GradientTape() as tape:
            tape.watch([kernel for _, kernel in kernels])
            loss = loss_fn(y, model(np.asarray(x, np.float32), training=False))
        grads = tape.gradient(loss, [kernel for _, kernel in kernels])
        totals = [total + grad for total, grad in zip(totals, grads, strict=True)]
        count += 1
    rows = []
    for (name, kernel), total in zip(kernels, totals, strict=True):
        gradient = float(tf.norm(total / max(count, 1)))
        weight = float(tf.norm(kernel))
        rows.append(
            {
                "layer": name,
                "block": block_label(name),
                "gradient_norm": gradient,
                "weight_norm": weight,
                "rgn": gradient / weight if weight > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


RGN_BATCHES = 8
"""Training batches the gradient is averaged over: enough for a stable norm, cheap beside an epoch."""


def start_of_finetuning(model_file: Path, data_dir: Path, batch_size: int, seed: int) -> pd.DataFrame:
    """The relative gradient norms of the model fine-tuning starts from, every layer unfrozen.

    Args:
        model_file: the trained model of ``runs.finetune_from``.
        data_dir: the data stage's output folder.
        batch_size: images per batch (the training batch size).
        seed: draws the :data:`RGN_BATCHES` batches from the training split.

    Returns:
        :func:`relative_gradient_norms`' table.
    """
    model = load_model(model_file)
    set_frozen_blocks(model, 0)
    x, y = load_split(data_dir, "train")
    order = np.random.default_rng(seed).permutation(len(x))[: RGN_BATCHES * batch_size]
    batches = [(x[order[i : i + batch_size]], y[order[i : i + batch_size]]) for i in range(0, len(order), batch_size)]
    return relative_gradient_norms(model, batches)
