"""Decoding images once: any mode -> 3-channel uint8 at the configured size."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from layerscope.core.errors import LayerscopeError


class BadImageError(LayerscopeError):
    """An image file that cannot be decoded."""


def load_image(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Decode ``path`` to an (height, width, 3) uint8 array, resized bilinearly."""
    height, width = size
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                peak = array.max() or 1.0
                image = Image.fromarray((array / peak * 255.0).round().astype(np.uint8))
            rgb = image.convert("RGB")
            resized = rgb.resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"cannot read image {path}: {err}") from None
    return np.asarray(resized, dtype=np.uint8)
