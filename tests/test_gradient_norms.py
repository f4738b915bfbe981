"""Relative gradient norms against a gradient worked out by hand."""

import math

import keras
import numpy as np
import pytest

from layerscope.results.freeze_signals import block_rgn
from layerscope.train.gradient_norms import relative_gradient_norms


def test_rgn_of_a_one_layer_softmax_by_hand():
    # logits = x W with W = I (2 x 2), x = [1, 0], label 0: p = softmax([1, 0]) = [e, 1] / (e + 1);
    # dL/dlogits = p - [1, 0] = [-1, 1] / (e + 1); dL/dW = x^T dL/dlogits, norm sqrt(2) / (e + 1);
    # ||W|| = sqrt(2), so the relative gradient norm is 1 / (e + 1)
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(2, use_bias=False, activation="softmax", name="block1_conv1")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("block1_conv1").set_weights([np.eye(2, dtype=np.float32)])
    batch = (np.array([[1.0, 0.0]]), np.array([0]))
    table = relative_gradient_norms(model, [batch, batch])  # the mean over batches of one gradient
    row = table.iloc[0]
    assert (row["layer"], row["block"]) == ("block1_conv1", "block1")
    assert row["gradient_norm"] == pytest.approx(math.sqrt(2) / (math.e + 1), rel=1e-5)
    assert row["weight_norm"] == pytest.approx(math.sqrt(2))
    assert row["rgn"] == pytest.approx(1 / (math.e + 1), rel=1e-5)


def test_block_rgn_averages_layers_and_leaves_the_head_out():
    import pandas as pd

    layers = pd.DataFrame(
        {
            "layer": ["block1_conv1", "block1_conv2", "block2_conv1", "fc1"],
            "block": ["block1", "block1", "block2", "head"],
            "rgn": [0.1, 0.3, 0.5, 9.0],
        }
    )
    assert block_rgn(layers) == {1: pytest.approx(0.2), 2: 0.5}
