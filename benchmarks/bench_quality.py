"""Seconds per metric of the explanation_quality rule on one VGG-16 run at the default size.

Prints figures; it is not a test. A fresh VGG-16 (HED weights, 3 frozen blocks, fc head)
and a fresh GAP-head VGG-16 for CAM (4 frozen blocks), as in the default config; the
explain rule's maps are stood in for (random LIME maps of the predicted class: the
deletion / insertion cost does not depend on them). The default config explains two
VGG-16 runs and one LeNet-5 run (``--model lenet5``: its CAM still runs on the GAP VGG-16).
Usage: python benchmarks/bench_quality.py [--size 64] [--images 8] [--model vgg16|lenet5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from layerscope.explain.cam import CAM  # noqa: E402
from layerscope.explain.quality_study import QualityFiles, write_quality  # noqa: E402
from layerscope.train.models import lenet5, vgg16  # noqa: E402

# The default's fills are measured per run (auto); inpainting, the costliest fill, stands in for them.
DEFAULT_QUALITY = {"images": None, "steps": 20, "baseline": "inpaint", "lime_images": 2, "lime_samples": 100}
DEFAULT_LIME = {"num_samples": 500, "top_labels": 2, "batch_size": 128, "n_segments": 50, "compactness": 10}
DEFAULT_LIME["hide"] = "inpaint"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=8, help="the explain rule's images (2 per class x 4)")
    parser.add_argument("--model", choices=("vgg16", "lenet5"), default="vgg16", help="the explained run's model")
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    if args.model == "vgg16":
        model = vgg16(shape, 4, weights="hed-bsds500", freeze_blocks=3)
    else:
        model = lenet5(shape, 4, activation="relu")
    cam_model = vgg16(shape, 4, weights="hed-bsds500", freeze_blocks=4, head="gap")
    rng = np.random.default_rng(0)
    # Blocky random images with noise: SLIC finds realistic superpixels in them.
    coarse = rng.uniform(0, 255, size=(args.images, args.size // 8, args.size // 8, 3))
    images = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    images = np.clip(images + rng.normal(0, 10, images.shape), 0, 255).astype(np.uint8)
    x = images.astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    cam_predicted = cam_model.predict(x, verbose=0).argmax(axis=1)
    lime = rng.normal(size=(args.images, 2, args.size, args.size)).astype(np.float32)
    maps = {
        "indices": np.arange(args.images),
        "true": np.arange(args.images) % 4,
        "predicted": predicted,
        "lime_labels": np.stack([predicted, (predicted + 1) % 4], axis=1),
        "lime_positive": np.maximum(lime, 0),
        "lime_negative": np.minimum(lime, 0),
        "cam": CAM(cam_model, upsample=True).explain(x, cam_predicted),
        "cam_predicted": cam_predicted,
    }
    with tempfile.TemporaryDirectory() as out:
        files = QualityFiles(*(Path(out) / name for name in ("q.csv", "c.csv", "r.csv", "q.md", "q.tex", "q.png")))
        start = time.perf_counter()
        result = write_quality(
            model, images, maps, DEFAULT_QUALITY, DEFAULT_LIME, 0, "bench", files, cam_model, "vgg16-gap-freeze4"
        )
        total = time.perf_counter() - start
    explained = "VGG-16 (freeze 3)" if args.model == "vgg16" else "LeNet-5"
    print(f"explanation_quality, {explained} + GAP VGG-16 for CAM at {args.size}px, {args.images} images:")
    for metric, seconds in result.timings.items():
        print(f"  {metric:<20} {seconds:6.1f} s")
    print(f"  {'total (write_quality)':<20} {total:6.1f} s")


if __name__ == "__main__":
    main()
