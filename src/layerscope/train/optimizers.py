"""Keras' own optimizers under the study's names.

Keras is imported where an optimizer is built, so the workflow and the tables can read
the names without starting TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerscope.core.errors import LayerscopeError

if TYPE_CHECKING:
    import keras

# The study's optimizer names and how tables and figures label them.
OPTIMIZERS = {"sgd": "SGD", "momentum": "Momentum", "nag": "NAG", "adam": "Adam", "rmsprop": "RMSProp"}


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9) -> keras.optimizers.Optimizer:
    """sgd, momentum (SGD, momentum), nag (SGD, Nesterov), adam or rmsprop."""
    import keras

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
    raise LayerscopeError(f"unknown optimizer '{name}' (choose {', '.join(OPTIMIZERS)})")
