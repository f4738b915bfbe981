"""Do the Grad-CAM maps follow the image, or a position the model prefers? A mirror check on many test images.

The map-shape study (``explain/<run>/map_shape.md``) measures mirroring on the eight
explained images. This script does it on more of the test split and shows where the maps
put their mass: for each run and Grad-CAM layer, the share of the map's mass in each
quarter of the image width (left to right, averaged over images), the same for the
mirrored images at the same classes, and the mirroring figure
(:func:`layerscope.explain.map_shape.mirroring`: 1 when each map mirrors with its image).
A map that keeps its mass on one side for an image and for its mirror image marks a
position the model prefers, not the image's content. CAM is measured the same way on the
GAP model (``--cam-run``). The test images' own brightness by
quarter is printed first, for comparison.

Usage: python benchmarks/map_position_bias.py results/default [--runs vgg16-finetune ...] [--cam-run vgg16-gap-freeze4]
       [--images 160]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from layerscope.data.prepare import load_split
from layerscope.explain.cam import CAM
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.map_shape import mirroring
from layerscope.train.models import load_model

RUNS = ["vgg16-freeze5-momentum", "vgg16-freeze3-momentum", "vgg16-finetune"]
LAYERS = ["block3_conv3", "block5_conv3"]


def quarters(maps: np.ndarray) -> np.ndarray:
    """Mean over images of each map's share of mass in the four quarters of its width."""
    columns = maps.sum(axis=1)
    shares = np.stack([part.sum(axis=1) for part in np.array_split(columns, 4, axis=1)], axis=1)
    totals = shares.sum(axis=1, keepdims=True)
    return np.nanmean(np.where(totals > 0, shares / np.where(totals > 0, totals, 1), np.nan), axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a finished experiment folder, e.g. results/default")
    parser.add_argument("--runs", nargs="+", default=RUNS, help="trained runs to explain")
    parser.add_argument("--cam-run", default="vgg16-gap-freeze4", help="the GAP model for CAM ('' for none)")
    parser.add_argument("--images", type=int, default=160, help="first N test images")
    args = parser.parse_args()
    images, _ = load_split(args.results / "data", "test")
    x = np.asarray(images[: args.images], np.float32)
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    brightness = [float(part.mean()) for part in np.array_split(x, 4, axis=2)]
    print(f"{len(x)} test images; mean brightness by quarter, left to right: {np.round(brightness, 1)}")
    print(f"{'run':24s} {'layer':13s} {'mass by quarter':26s} {'of the mirrored image':26s} mirroring")
    for run in args.runs:
        model = load_model(args.results / "runs" / run / "model.keras")
        predicted = model.predict(x, verbose=0).argmax(axis=1)
        explainer = GradCAM(model, LAYERS, upsample=True)
        maps, of_mirrored = explainer.explain_layers(x, predicted), explainer.explain_layers(mirrored, predicted)
        for layer in LAYERS:
            show(run, layer, maps[layer], of_mirrored[layer])
    if args.cam_run:
        model = load_model(args.results / "runs" / args.cam_run / "model.keras")
        predicted = model.predict(x, verbose=0).argmax(axis=1)
        explainer = CAM(model, upsample=True)
        show(args.cam_run, "CAM", explainer.explain(x, predicted), explainer.explain(mirrored, predicted))


def show(run: str, layer: str, maps: np.ndarray, of_mirrored: np.ndarray) -> None:
    """One row: mass by quarter for the images and their mirrors, and the mirroring figure."""
    plain, flipped = np.round(quarters(maps), 2), np.round(quarters(of_mirrored), 2)
    print(f"{run:24s} {layer:13s} {plain!s:26s} {flipped!s:26s} {mirroring(maps, of_mirrored):.2f}")


if __name__ == "__main__":
    main()
