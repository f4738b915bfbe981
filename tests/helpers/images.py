"""Hand-made image sets: random PNGs unique per seed and a prepared three-class folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, seed: int, size: int = 20, mode: str = "RGB") -> Path:
    """A random image whose content (and so sha256) is unique per seed."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(), mode=mode).save(path)
    return path


def prepared_tiny_folder(root: Path, seed: int) -> Path:
    """Three classes (a, b, c) of ten 32 x 32 images under ``root/img``, prepared into ``root/data``."""
    from layerscope.data.prepare import DataSettings, prepare

    for c, label in enumerate(["a", "b", "c"]):
        for i in range(10):
            write_png(root / "img" / label / f"{i}.png", seed=seed * c + i, size=32)
    prepare(DataSettings(source="folder", path=str(root / "img"), image_size=(32, 32), seed=1), root / "data")
    return root / "data"
