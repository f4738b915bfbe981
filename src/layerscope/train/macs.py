"""Multiply-adds of a Keras model's Conv2D and Dense layers: what a forward pass or a training step costs per image.

The count is the layers' own arithmetic (output positions x kernel size x input channels
for a convolution, inputs x units for a dense layer); pooling, activations, batch norm
and the optimizer's update are left out, being a few percent of a VGG-16 step. A training
step costs each layer's forward pass, its weight gradient if it trains, and its input
gradient if any layer before it trains (the gradient must flow back to that layer).
"""

from __future__ import annotations

import keras


def forward_macs(model: keras.Model) -> list[int]:
    """Multiply-adds per image of each Conv2D/Dense layer's forward pass, in layer order."""
    return [macs for macs, _ in _layer_macs(model)]


def training_macs(model: keras.Model) -> int:
    """Multiply-adds of one training step per image: forward, weight and input gradients.

    Frozen layers cost their forward pass only; the first trained layer needs no input gradient.
    """
    total, trained_before = 0, False
    for macs, trainable in _layer_macs(model):
        total += macs + (macs if trainable else 0) + (macs if trained_before else 0)
        trained_before = trained_before or trainable
    return total


def _layer_macs(model: keras.Model) -> list[tuple[int, bool]]:
    """(forward multiply-adds per image, trainable) of each Conv2D/Dense layer, in layer order."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            out = layer.output.shape[1] * layer.output.shape[2] * layer.filters
            layers.append((out * kh * kw * layer.input.shape[-1], layer.trainable))
        elif isinstance(layer, keras.layers.Dense):
            layers.append((layer.input.shape[-1] * layer.units, layer.trainable))
    return layers
