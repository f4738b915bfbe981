"""The figure of docs/own-images.md: one image under each ``data.resize`` mode.

An elpv solar cell (square, 300 x 300) brought to the study's 224 x 403 (height x width)
inputs by the data stage's own decoder (:func:`layerscope.data.images.load_image`):
``stretch`` widens the cell, ``pad`` keeps it square between margins of
``data.background``, ``crop`` keeps the centre strip that fills the frame.

Usage: python docs/resize_modes.py [--out docs/images/resize_modes.png] [--cell images/cell0100.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

from layerscope.core.figures import save_figure
from layerscope.data.images import RESIZE_MODES, load_image
from layerscope.data.sources import elpv_source

STUDY_SIZE = (224, 403)


def main() -> None:
    """Draw the figure and print where it went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "images" / "resize_modes.png"))
    parser.add_argument("--cell", default="images/cell0100.png", help="elpv image, relative to its data folder")
    args = parser.parse_args()
    path = elpv_source().root / args.cell
    original = Image.open(path)
    fig, axes = plt.subplots(
        1, 4, figsize=(11, 2.1), layout="constrained", gridspec_kw={"width_ratios": [1.0, 1.8, 1.8, 1.8]}
    )
    axes[0].imshow(original, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"stored, {original.height} x {original.width}", fontsize=9)
    for ax, mode in zip(axes[1:], RESIZE_MODES):
        ax.imshow(load_image(path, STUDY_SIZE, resize=mode))
        ax.set_title(f"data.resize: {mode}, {STUDY_SIZE[0]} x {STUDY_SIZE[1]}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
