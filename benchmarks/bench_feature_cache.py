"""Frozen-feature cache: size and read time of each storage, the paper-scale sizes, and what float16 costs.

Three ways to store one depth's features, measured side by side in one process on a
prepared data folder:

- ``npz``: the former layout, ``np.savez`` of float32 splits, read whole by every run;
- ``npy32``: the current layout, one float32 ``.npy`` read memory-mapped (one epoch of
  shuffled training batches, plus the validation and test splits whole);
- ``npy16``: the same as float16.

It then trains the configured freeze run on the float32 and on the float16 cache and
reports the largest change of a test probability (the tolerance float16 would have to
meet), and prints the cache sizes per depth at ``config/paper.yaml``'s image size for
elpv's 2,624 images.

Usage (after ``snakemake --configfile config/smoke.yaml results/smoke/data/manifest.csv``):
    python benchmarks/bench_feature_cache.py --config config/smoke.yaml --depth 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from snakemake.utils import update_config, validate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ELPV_IMAGES = 2624
VGG16_CHANNELS = (64, 128, 256, 512, 512)


def paper_sizes(image_size: tuple[int, int], images: int = ELPV_IMAGES) -> pd.DataFrame:
    """Cache size per depth: block k halves each side k times and has VGG16_CHANNELS[k-1] channels."""
    rows = []
    for k, channels in enumerate(VGG16_CHANNELS, start=1):
        h, w = image_size[0] // 2**k, image_size[1] // 2**k
        values = h * w * channels
        rows.append(
            {
                "depth": k,
                "shape": f"{h}x{w}x{channels}",
                "MB/image float32": values * 4 / 1e6,
                "GB float32": values * 4 * images / 1e9,
                "GB float16": values * 2 * images / 1e9,
            }
        )
    return pd.DataFrame(rows)


def read_seconds(read, repeats: int) -> float:
    """Best of ``repeats`` timings of ``read()`` (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        read()
        best = min(best, time.perf_counter() - started)
    return best


def write_stores(folder: Path, features: np.ndarray, meta: dict) -> tuple[Path, Path, Path]:
    """The three storages of ``features`` (manifest order) in ``folder``: npz, npy float32, npy float16."""
    from layerscope.data.splits import SPLITS
    from layerscope.train.features import meta_path

    folder.mkdir(parents=True, exist_ok=True)
    ends = np.cumsum([meta["splits"][s] for s in SPLITS])
    parts = {s: features[end - meta["splits"][s] : end] for s, end in zip(SPLITS, ends)}
    paths = folder / "block.npz", folder / "fp32" / "block.npy", folder / "fp16" / "block.npy"
    np.savez(paths[0], meta=np.array(json.dumps(meta)), **parts)
    for path, dtype in zip(paths[1:], ("float32", "float16")):
        path.parent.mkdir(exist_ok=True)
        np.save(path, features.astype(dtype))
        meta_path(path).write_text(json.dumps({**meta, "dtype": dtype}))
    return paths


def time_reads(folder: Path, meta: dict, batch: int, repeats: int, label: str) -> None:
    """Print size and read time of each storage in ``folder``: the npz read whole, the npy files
    memory-mapped (one epoch of shuffled training batches, then validation and test whole)."""
    from layerscope.data.splits import SPLITS
    from layerscope.train.features import load_frozen_features

    npz, npy32, npy16 = folder / "block.npz", folder / "fp32" / "block.npy", folder / "fp16" / "block.npy"
    order = np.random.default_rng(0).permutation(meta["splits"]["train"])
    k, weights, policy = meta["frozen_blocks"], meta["weights"], meta["precision"]

    def read_npz():
        with np.load(npz) as cached:
            return {s: cached[s] for s in SPLITS}

    def read_mmap(path):
        def read():
            x = load_frozen_features(path, k, weights, policy)
            for start in range(0, len(order), batch):  # one epoch of shuffled batches, as fit does
                x["train"][order[start : start + batch]].astype(np.float32)
            return {s: x[s].astype(np.float32) for s in ("val", "test")}

        return read

    print(f"depth {k}, {sum(meta['splits'].values())} images ({label}), batch {batch}:")
    rows = [
        ("npz float32, read whole", npz, read_seconds(read_npz, repeats)),
        ("npy float32, memory-mapped", npy32, read_seconds(read_mmap(npy32), repeats)),
        ("npy float16, memory-mapped", npy16, read_seconds(read_mmap(npy16), repeats)),
    ]
    for name, path, seconds in rows:
        size = path.stat().st_size / 1e6
        print(f"  {name:28s} {size:9.2f} MB  read {seconds * 1e3:9.2f} ms ({seconds / rows[0][2]:.2f}x npz)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", nargs="+", default=["config/smoke.yaml"])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paper-images", type=int, default=300, help="synthetic images at paper.yaml's shape")
    parser.add_argument("--results", default="results", help="the folder holding <experiment>/data")
    args = parser.parse_args()

    from layerscope.train.features import extract_frozen_features
    from layerscope.train.fit import set_threads
    from layerscope.train.run import RunFiles, train_run
    from layerscope.train.runs import parse_run_id

    config = {}
    for path in args.config:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    set_threads(args.threads)
    data_dir = Path(args.results) / config["experiment"] / "data"
    training = config["training"]
    k, weights, policy = args.depth, training["weights"], training["mixed_precision"]
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        extracted = work / f"block{k}.npy"
        meta = extract_frozen_features(data_dir, k, weights, extracted, policy)
        _, npy32, npy16 = write_stores(work / "real", np.load(extracted), meta)
        time_reads(work / "real", meta, training["batch_size"], args.repeats, "elpv " + str(meta["input_shape"]))
        # The same at config/paper.yaml's shape of this depth, on synthetic features (ReLU-like).
        paper_size = yaml.safe_load((REPO / "config/paper.yaml").read_text())["data"]["image_size"]
        shape = (paper_size[0] // 2**k, paper_size[1] // 2**k, VGG16_CHANNELS[k - 1])
        rng = np.random.default_rng(0)
        n = args.paper_images
        synthetic = np.maximum(rng.normal(0, 50, size=(n, *shape)), 0).astype(np.float32)
        splits = {"train": n - 2 * (n // 4), "val": n // 4, "test": n // 4}
        write_stores(work / "paper", synthetic, {**meta, "splits": splits})
        del synthetic
        time_reads(work / "paper", {**meta, "splits": splits}, 32, args.repeats, f"synthetic {shape}")

        spec = parse_run_id(f"vgg16-freeze{k}-{training['optimizer']}", training)
        probabilities = {}
        for name, path in (("float32", npy32), ("float16", npy16)):
            files = RunFiles(work / f"run-{name}")
            metrics = train_run(spec, config, data_dir, files, features=path)
            table = pd.read_csv(files.predictions)
            probabilities[name] = table[[c for c in table.columns if c.startswith("p_")]].to_numpy()
            print(f"  {spec.run_id} on the {name} cache: test accuracy {metrics['test']['accuracy']:.4f}")
        change = np.abs(probabilities["float16"] - probabilities["float32"])
        flips = int((probabilities["float16"].argmax(1) != probabilities["float32"].argmax(1)).sum())
        print(
            f"  float16 storage: largest change of a test probability {change.max():.4f} "
            f"(mean {change.mean():.4f}), {flips} of {len(change)} test predictions change class"
        )
    finally:
        shutil.rmtree(work)

    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    print(f"\ncache sizes at config/paper.yaml ({paper['data']['image_size']} px, {ELPV_IMAGES} elpv images):")
    print(paper_sizes(tuple(paper["data"]["image_size"])).to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
