"""Perturbation-fill fixtures: bright cells with planted dark stripes and a model that reads darkness."""

from __future__ import annotations

import keras
import numpy as np

SIZE = 32


REGION = (slice(8, 24), slice(8, 24))


STRIPES = np.indices((16, 16))[1] % 2 == 0  # every other column of the region is dark: thin "cracks"


def darkness_model() -> keras.Model:
    """P(defective) = sigmoid(40 * share of dark pixels - 4): a pixel is dark below 30% brightness.

    A defect-free cell (no dark pixel) reads 0.018, the planted stripes (12.5% dark) 0.731.
    """
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(1, 1, activation="sigmoid", name="dark")(x)  # sigmoid(40 * (0.3 - brightness))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    model.get_layer("dark").set_weights([np.full((1, 1, 3, 1), -40 / 3, np.float32), np.array([12.0], np.float32)])
    model.get_layer("logits").set_weights([np.array([[-20.0, 20.0]], np.float32), np.array([2.0, -2.0], np.float32)])
    return model


def cell(seed: int, defect: bool) -> np.ndarray:
    """A bright grey cell of 8 px blocks (150-230) with noise; a defect is dark stripes in REGION."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(150, 230, size=(SIZE // 8, SIZE // 8, 1))
    image = np.repeat(np.repeat(coarse, 8, 0), 8, 1) + rng.normal(0, 4, (SIZE, SIZE, 1))
    image = np.repeat(image, 3, axis=-1)
    if defect:
        image[REGION] = np.where(STRIPES[..., None], 20.0, 200.0)
    return np.clip(image, 0, 255).astype(np.uint8)
