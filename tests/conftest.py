"""Shared fixtures: small hand-made image sets and the repository paths.

Builders and helpers the fixtures use live in ``tests/helpers``; test modules import those,
never one another.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import REPO
from helpers.images import prepared_tiny_folder, write_png

from layerscope.core.scripting import use_job_gc_threshold

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As in a job: the collector does not walk the test modules' TensorFlow imports ~1,000 times.
use_job_gc_threshold()


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


@pytest.fixture(autouse=True)
def float32_after_each_test():
    """Keras' precision policy is global: a test that trains under ``auto`` (bfloat16 on an AMX
    CPU) must not hand it to the next test in the same worker."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A prepared three-class folder of 32 x 32 images, one per test module."""
    return prepared_tiny_folder(tmp_path_factory.mktemp("tiny"), seed=50)


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
