"""Decoding images once: any mode -> 3-channel uint8 at the configured size.

Bit depth follows one fixed rule, never the image's own brightness: 8-bit images are
kept as they are, and images with more bits per pixel (16-bit grey PNG or TIFF, 32-bit
integer) are mapped linearly from ``0..full_scale`` to ``0..255`` (``data.bit_depth_range``,
default 65535: the whole 16-bit range, value / 257). A file with a value above the full
scale stops the data stage rather than being clipped, so two exposures of different
brightness keep their ratio and a folder mixing bit depths shares one scale.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from layerscope.core.errors import LayerscopeError


class BadImageError(LayerscopeError):
    """An image file that cannot be decoded."""


HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
"""Pillow modes of more than 8 bits per pixel (Pillow opens 16-bit grey PNG as "I" or "I;16")."""

FULL_16_BIT = 65535


def load_image(path: str | os.PathLike, size: tuple[int, int], full_scale: int = FULL_16_BIT) -> np.ndarray:
    """Decode ``path`` to an (height, width, 3) uint8 array, resized bilinearly.

    Args:
        path: the image file.
        size: (height, width) to resize to.
        full_scale: the raw value that becomes 255 in images of more than 8 bits per pixel.

    Returns:
        The image as uint8 RGB.

    Raises:
        BadImageError: the file cannot be decoded.
        LayerscopeError: a high-bit-depth image holds values outside ``0..full_scale``.
    """
    height, width = size
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in HIGH_BIT_MODES:
                image = Image.fromarray(_to_8_bit(np.asarray(image), full_scale, path))
            rgb = image.convert("RGB")
            resized = rgb.resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"cannot read image {path}: {err}") from None
    return np.asarray(resized, dtype=np.uint8)


def _to_8_bit(array: np.ndarray, full_scale: int, path: str | os.PathLike) -> np.ndarray:
    """``round(255 * value / full_scale)`` as uint8; values outside ``0..full_scale`` are refused."""
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > full_scale:
        raise LayerscopeError(
            f"image {path} has values {low}..{high}, outside 0..{full_scale} (data.bit_depth_range); "
            "set data.bit_depth_range to the camera's full-scale value"
        )
    return np.floor(array.astype(np.float64) * 255.0 / full_scale + 0.5).astype(np.uint8)
