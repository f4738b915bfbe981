"""Frozen-block features computed once per experiment and shared by every run that freezes them.

Blocks 1..k of a pretrained VGG-16 never change in a freeze-k run, so their output is
a fixed function of the image. Each freeze depth's output is computed once (one job
per depth) and read by the three optimizers' runs, the GAP run of the same depth and,
for depth 5, the linear probe.

Layout: ``block<k>.npy`` holds the ``train``, ``val`` and ``test`` features one after
another (N x H x W x C, float32, manifest order) and ``block<k>.json`` the meta (depth,
weights source, precision computed under and asked for, input shape, dtype, images per
split). The array is written batch by batch and read memory-mapped, so neither the job
that writes it nor a run that reads it holds the whole cache in memory (at
``config/paper.yaml``'s 224 px the depth-1 cache of elpv's 2,624 images is 8.4 GB on
disk); a run reads the training batches it needs and the validation and test splits
whole. float16 storage would halve the disk, but a freeze-3 run of the smoke config
trained on it moved test probabilities by up to 0.59 and changed 10 of 12 test
predictions (``benchmarks/bench_feature_cache.py``), so the cache stays float32. Both
files are written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.data.prepare import load_split
from layerscope.data.splits import SPLITS
from layerscope.train.precision import policy_name, use_policy

log = logging.getLogger(__name__)

STORAGE_DTYPE = np.float32


def meta_path(features: str | os.PathLike) -> Path:
    """The meta file beside a cache's array: ``block<k>.json`` for ``block<k>.npy``."""
    return Path(features).with_suffix(".json")


def frozen_extractor(input_shape: tuple[int, ...], k: int, weights: str):
    """The pretrained VGG-16 up to ``block{k}_pool`` (the part a freeze-k run never changes)."""
    from layerscope.train.models import split_at_block, vgg16

    model = vgg16(input_shape, 2, weights=weights, freeze_blocks=k)
    extractor, _ = split_at_block(model, k)
    return extractor


def _reserve(path: Path) -> None:
    """Allocate the memory-mapped file's blocks before it is written.

    On a full disk a page written through the map would kill the process (SIGBUS);
    reserving raises ENOSPC instead, which names the file.
    """
    with open(path, "r+b") as handle:
        os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)


def extract_frozen_features(
    data_dir: str | os.PathLike,
    k: int,
    weights: str,
    out_file: str | os.PathLike,
    policy: str | bool = False,
    batch_size: int = 64,
) -> dict:
    """Compute and write ``block<k>.npy`` and its ``block<k>.json`` for the prepared data in ``data_dir``.

    Args:
        data_dir: the data stage's output folder.
        k: the frozen depth: features are the output of ``block{k}_pool``.
        weights: the VGG-16 weights source (see :func:`layerscope.train.models.vgg16`).
        out_file: where to write the array (the meta goes beside it, see :func:`meta_path`).
        policy: the config's precision policy, e.g. "mixed_bfloat16" (False: float32; see
            :mod:`layerscope.train.precision` for what a job without a GPU computes under).
        batch_size: images per forward pass.

    Returns:
        The cache's meta: depth, weights, precision, input shape, dtype, split sizes and seconds taken.

    Raises:
        LayerscopeError: a depth outside 1..5, or weights that cannot be loaded.
    """
    computed = use_policy(policy)
    images = {split: load_split(data_dir, split)[0] for split in SPLITS}
    shape = tuple(int(d) for d in images["train"].shape[1:])
    extractor = frozen_extractor(shape, k, weights)
    feature_shape = tuple(int(d) for d in extractor.output.shape[1:])
    total = sum(len(x) for x in images.values())
    started = time.perf_counter()
    out_file = Path(out_file)
    with atomic_path(out_file) as tmp:
        stored = np.lib.format.open_memmap(tmp, mode="w+", dtype=STORAGE_DTYPE, shape=(total, *feature_shape))
        _reserve(tmp)
        _write_batches(extractor, images, stored, batch_size)
        del stored  # flushed and closed before the rename
    meta = {
        "frozen_blocks": k,
        "weights": str(weights),
        "precision": computed,
        "precision_requested": policy_name(policy),
        "input_shape": shape,
        "dtype": np.dtype(STORAGE_DTYPE).name,
        "splits": {split: len(x) for split, x in images.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_text(meta_path(out_file), json.dumps(meta, indent=2) + "\n")
    log.info(
        "block-%d features of %d images in %.1f s: %.1f MB",
        k,
        total,
        meta["seconds"],
        out_file.stat().st_size / 1e6,
    )
    return meta


def _write_batches(extractor, images: dict[str, np.ndarray], stored: np.ndarray, batch_size: int) -> None:
    """Fill ``stored`` with the extractor's output split after split, a bounded chunk of images at a time."""
    row, chunk = 0, 16 * batch_size
    for x in images.values():
        for start in range(0, len(x), chunk):
            part = extractor.predict(x[start : start + chunk].astype(np.float32), batch_size=batch_size, verbose=0)
            stored[row : row + len(part)] = part
            row += len(part)
    stored.flush()


def load_frozen_features(
    path: str | os.PathLike, k: int, weights: str, policy: str | bool = False
) -> dict[str, np.ndarray]:
    """The cached features of each split, checked to match the depth, weights and precision asked for.

    Args:
        path: the ``block<k>.npy`` cache (its meta is read from beside it).
        k: the frozen depth the caller needs.
        weights: the weights source the caller needs.
        policy: the config's precision policy the cache must have been asked for (False: float32).

    Returns:
        Read-only memory-mapped (N, H, W, C) features per split name, in the dtype the cache
        was stored in (float32 as written here).

    Raises:
        LayerscopeError: an unreadable cache, or one computed with other settings.
    """
    path = Path(path)
    try:
        meta = json.loads(meta_path(path).read_text())
        stored = np.load(path, mmap_mode="r")
        counts = [int(meta["splits"][split]) for split in SPLITS]
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise LayerscopeError(
            f"{path}: unreadable frozen-feature cache ({error}); rerun it with `snakemake --forcerun {path}`"
        ) from error
    expected = {"frozen_blocks": k, "weights": str(weights), "precision_requested": policy_name(policy)}
    found = {key: meta.get(key) for key in expected}
    if found != expected:
        raise LayerscopeError(f"{path} holds features of {found}, but this run needs {expected}")
    if stored.ndim != 4 or len(stored) != sum(counts):
        raise LayerscopeError(
            f"{path}: {stored.shape} features where its meta lists {sum(counts)} images; "
            f"rerun it with `snakemake --forcerun {path}`"
        )
    ends = np.cumsum(counts)
    return {split: stored[end - n : end] for split, n, end in zip(SPLITS, counts, ends)}
