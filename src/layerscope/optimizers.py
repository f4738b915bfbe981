"""Keras' own optimizers under the study's names."""

from __future__ import annotations

import keras

from layerscope.errors import LayerscopeError


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """sgd, momentum (SGD, momentum), nag (SGD, Nesterov), adam or rmsprop."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "nag":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    raise LayerscopeError(f"unknown optimizer '{name}' (choose sgd, momentum, nag, adam or rmsprop)")
