"""Shared fixtures: small hand-made image sets and the repository paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerscope.core.scripting import use_job_gc_threshold

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As in a job: the collector does not walk the test modules' TensorFlow imports ~1,000 times.
use_job_gc_threshold()

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items):
    """Collect the ``pipeline`` modules first, longest first (their ``minutes``), the rest after.

    ``make test`` hands whole files to pytest-xdist workers in collection order (``--dist
    loadfile``); the Snakemake runs are most of the suite's time, so they start first and
    the short modules fill in around them. The sort is stable: order within a file stays.
    """

    def expected_minutes(item) -> float:
        marker = item.get_closest_marker("pipeline")
        return marker.kwargs.get("minutes", 1) if marker else 0

    items.sort(key=expected_minutes, reverse=True)


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


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes of 10 distinct images each, one sub-folder per class."""
    root = tmp_path / "images"
    for c, label in enumerate(["crack", "inclusion", "scratch"]):
        for i in range(10):
            write_png(root / label / f"{label}_{i:02d}.png", seed=100 * c + i)
    return root


@pytest.fixture
def repo() -> Path:
    return REPO
