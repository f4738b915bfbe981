"""Frozen-block features computed once per experiment and shared by every run that freezes them.

Blocks 1..k of a pretrained VGG-16 never change in a freeze-k run, so their output is
a fixed function of the image. Each freeze depth's output is computed once (one job
per depth) and read by the three optimizers' runs, the GAP run of the same depth and,
for depth 5, the linear probe. Layout of ``block<k>.npz``: arrays ``train``, ``val``,
``test`` (float32, N x H x W x C, manifest order) and ``meta`` (a JSON string naming
the depth, weights source, precision policy and input shape), written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from layerscope.core.atomic import atomic_path
from layerscope.core.errors import LayerscopeError
from layerscope.data.prepare import load_split
from layerscope.data.splits import SPLITS

log = logging.getLogger(__name__)


def frozen_extractor(input_shape: tuple[int, ...], k: int, weights: str):
    """The pretrained VGG-16 up to ``block{k}_pool`` (the part a freeze-k run never changes)."""
    from layerscope.train.models import split_at_block, vgg16

    model = vgg16(input_shape, 2, weights=weights, freeze_blocks=k)
    extractor, _ = split_at_block(model, k)
    return extractor


def extract_frozen_features(
    data_dir: str | os.PathLike,
    k: int,
    weights: str,
    out_file: str | os.PathLike,
    policy: str | bool = False,
    batch_size: int = 64,
) -> dict:
    """Compute and write ``block<k>.npz`` for the prepared data in ``data_dir``.

    Args:
        data_dir: the data stage's output folder.
        k: the frozen depth: features are the output of ``block{k}_pool``.
        weights: the VGG-16 weights source (see :func:`layerscope.train.models.vgg16`).
        out_file: where to write the cache.
        policy: a Keras precision policy to compute under, e.g. "mixed_bfloat16" (False: float32).
        batch_size: images per forward pass.

    Returns:
        The cache's meta: depth, weights, precision, input shape and seconds taken.

    Raises:
        LayerscopeError: a depth outside 1..5, or weights that cannot be loaded.
    """
    import keras

    if policy:
        keras.mixed_precision.set_global_policy(policy)
    images = {split: load_split(data_dir, split)[0] for split in SPLITS}
    shape = tuple(int(d) for d in images["train"].shape[1:])
    extractor = frozen_extractor(shape, k, weights)
    started = time.perf_counter()
    arrays = {
        split: np.asarray(extractor.predict(x.astype(np.float32), batch_size=batch_size, verbose=2), dtype=np.float32)
        for split, x in images.items()
    }
    meta = {
        "frozen_blocks": k,
        "weights": str(weights),
        "precision": policy or "float32",
        "input_shape": shape,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("block-%d features of %d images in %.1f s", k, sum(len(x) for x in arrays.values()), meta["seconds"])
    with atomic_path(out_file) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, meta=np.array(json.dumps(meta)), **arrays)
    return meta


def load_frozen_features(
    path: str | os.PathLike, k: int, weights: str, policy: str | bool = False
) -> dict[str, np.ndarray]:
    """The cached features of each split, checked to match the depth, weights and precision asked for.

    Args:
        path: the ``block<k>.npz`` cache.
        k: the frozen depth the caller needs.
        weights: the weights source the caller needs.
        policy: the precision policy the caller needs (False: float32).

    Returns:
        float32 (N, H, W, C) features per split name.

    Raises:
        LayerscopeError: an unreadable cache, or one computed with other settings.
    """
    path = Path(path)
    try:
        with np.load(path) as cached:
            meta = json.loads(str(cached["meta"]))
            arrays = {split: cached[split] for split in SPLITS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise LayerscopeError(
            f"{path}: unreadable frozen-feature cache ({error}); rerun it with `snakemake --forcerun {path}`"
        ) from error
    expected = {"frozen_blocks": k, "weights": str(weights), "precision": policy or "float32"}
    found = {key: meta.get(key) for key in expected}
    if found != expected:
        raise LayerscopeError(f"{path} holds features of {found}, but this run needs {expected}")
    return arrays
