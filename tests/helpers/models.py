"""Small Keras models with VGG's layer names or known weights, built the same way by every test that needs them."""

from __future__ import annotations

import keras
import numpy as np


def small_vgg(
    blocks: int = 3, convs: int = 2, width: int = 3, head: str = "fc", size: int = 32, classes: int = 4, seed: int = 0
) -> keras.Model:
    """VGG's naming at toy width: ``block{b}_conv{i}`` and ``block{b}_pool``, then an fc head
    (``fc1``, ``fc2``) or GAP (``gap``; the last block then keeps its resolution), ``logits``
    and a softmax. Seeded: the same weights on every call with the same arguments."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    for b in range(1, blocks + 1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{b}_conv{i}")(x)
        if head == "fc" or b < blocks:
            x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    if head == "fc":
        x = keras.layers.Dense(6, activation="relu", name="fc1")(keras.layers.Flatten(name="flatten")(x))
        x = keras.layers.Dense(6, activation="relu", name="fc2")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def gap_model(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    filters: int = 4,
    pool: bool = False,
    dropout: bool = False,
    seed: int | None = None,
) -> keras.Model:
    """conv ``conv`` (-> ``pool``) -> ``gap`` (-> ``dropout``) -> 3 ``logits`` -> softmax: the head CAM needs."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x))


def weight_change_stack() -> keras.Model:
    """A LeNet-style conv (frozen), a VGG-style conv, a bias-free dense and a dense head.

    Initialised from fixed seeds: SGD at 0.1 on this linear stack diverges to inf within an
    epoch from about one random start in 30 (a NaN store then fails the tests at random).
    """

    def init(seed):
        return keras.initializers.GlorotUniform(seed=seed)

    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 2, name="c1", kernel_initializer=init(1))(inputs)
    x = keras.layers.Conv2D(4, 2, name="block1_conv1", kernel_initializer=init(2))(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(3, use_bias=False, name="fc1", kernel_initializer=init(3))(x)
    outputs = keras.layers.Dense(2, name="logits", kernel_initializer=init(4))(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("c1").trainable = False
    return model


def resumable_setup() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A seeded :func:`weight_change_stack` and data whose training is the same however often it is
    resumed (plain SGD keeps no optimizer state)."""
    keras.utils.set_random_seed(0)
    model = weight_change_stack()
    model.compile(keras.optimizers.SGD(0.05), "mse")
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(40, 5, 5, 2)).astype("float32"), rng.normal(size=(40, 2)).astype("float32")
