"""The README's figure from a finished run: a few explanation panels above the 3D weight-change view.

The panels are the explain rule's own maps (``explain/<run>/maps.npz``) for a few test
images, one per class from the first class to the last, drawn by the pipeline's
``plot_explanations``; the 3D view is ``runs/<run>/figures/weight_changes_3d.png``, as the
render_weight_changes rule drew it. Both come from the same run folder. The result is a
palette PNG under 400 KB, so that the repository stays small.

Usage: python docs/readme_figure.py results/default [--run vgg16-freeze3-momentum] [--images 2]
       [--out docs/images/readme_figure.png]
With no explanations in the run yet (``maps.npz`` missing), ``--no-explanations`` draws
the 3D view alone.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from layerscope.data.prepare import load_classes, load_split
from layerscope.explain.figures import plot_explanations

WIDTH = 1400
MAX_BYTES = 400_000


def spread(labels: np.ndarray, count: int) -> list[int]:
    """Rows of ``labels`` to show: the first image of each class in turn, lowest class first, ``count`` in all."""
    classes = sorted(set(labels.tolist()))
    picks = [int(np.flatnonzero(labels == label)[0]) for label in classes]
    chosen = [picks[0], picks[-1], *picks[1:-1]][:count] if len(picks) > 1 else picks[:count]
    return sorted(chosen)


def explanation_panels(run_dir: Path, run: str, count: int, out: Path) -> Path:
    """Draw ``count`` rows of the explain rule's maps of ``run`` into ``out``."""
    from layerscope.explain.explanations import read_maps  # imports TensorFlow: only when drawn

    maps = read_maps(run_dir / "explain" / run / "maps.npz")
    test, _ = load_split(run_dir / "data", "test")
    indices, true = np.asarray(maps["indices"]), np.asarray(maps["true"])
    rows = spread(true, count)
    shown = {key: value[rows] if value.ndim and len(value) == len(indices) else value for key, value in maps.items()}
    hide = str(maps["lime_hide"]) if "lime_hide" in maps else None
    plot_explanations(
        np.asarray(test)[indices[rows]], shown, true[rows], load_classes(run_dir / "data"), run, out, hide
    )
    return out


def compose(parts: list[Path], out: Path) -> Path:
    """Stack the images top to bottom at one width on white, and save as a palette PNG under 400 KB."""
    pictures = [Image.open(path).convert("RGB") for path in parts]
    scaled = [p.resize((WIDTH, round(p.height * WIDTH / p.width)), Image.Resampling.LANCZOS) for p in pictures]
    canvas = Image.new("RGB", (WIDTH, sum(p.height for p in scaled)), "white")
    top = 0
    for picture in scaled:
        canvas.paste(picture, (0, top))
        top += picture.height
    for colours in (256, 128, 64):
        buffer = io.BytesIO()
        canvas.quantize(colours, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(buffer.getvalue())
            return out
    raise SystemExit(f"readme_figure: {out} would exceed {MAX_BYTES} bytes even at 64 colours")


def main(argv: list[str] | None = None) -> Path:
    """Make the figure from the command line's arguments; returns its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run's folder, e.g. results/default")
    parser.add_argument("--run", default="vgg16-freeze3-momentum", help="an explained run of it")
    parser.add_argument("--images", type=int, default=2, help="rows of explanation panels")
    parser.add_argument("--no-explanations", action="store_true", help="the 3D view alone")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images" / "readme_figure.png")
    args = parser.parse_args(argv)
    view = args.run_dir / "runs" / args.run / "figures" / "weight_changes_3d.png"
    if not view.is_file():
        raise SystemExit(f"readme_figure: {view} not found: is the run finished?")
    with tempfile.TemporaryDirectory() as tmp:
        parts = (
            []
            if args.no_explanations
            else [explanation_panels(args.run_dir, args.run, args.images, Path(tmp) / "e.png")]
        )
        return compose([*parts, view], args.out)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
