"""The names ``training.weights`` takes, checked when the config is read.

Kept apart from :mod:`layerscope.train.pretrained` (which loads the weights, and so
imports Keras) because the workflow checks the config on every invocation.
"""

from __future__ import annotations

from pathlib import Path

from layerscope.core.errors import LayerscopeError

SOURCES = ("hed-bsds500", "imagenet", "none")
WEIGHT_FILE_SUFFIXES = (".h5", ".keras")  # ".weights.h5" ends in ".h5"


def check_weights_source(source: str) -> None:
    """Refuse a ``training.weights`` that no job could load, before any job runs.

    A named source passes (its files are checked when loaded); a path must end in a
    weights suffix and exist, so a typo stops the workflow at once rather than in the
    first job that loads it.

    Raises:
        LayerscopeError: the path is missing or has no weights-file suffix.
    """
    if source in SOURCES:
        return
    if not str(source).endswith(WEIGHT_FILE_SUFFIXES):
        raise LayerscopeError(
            f"training.weights: unknown VGG-16 weights source {source!r}: use one of {', '.join(SOURCES)} "
            f"or a path to a weights file ending in {' or '.join(WEIGHT_FILE_SUFFIXES)}"
        )
    if not Path(source).is_file():
        raise LayerscopeError(f"training.weights: VGG-16 weights file not found: {source}")
