"""Seconds of the three explanation stages' library calls for one run, in one process.

Calls what the scripts of the rules explain, explanation_quality and feature_maps call
(write_explanations, write_quality, write_feature_maps) on a finished run's trained
model, data and config, writing into a temporary folder (never into the run). Prints
wall and CPU seconds per stage; the stages share the process, so imports and model
loading are left out. explanation_quality reads the maps this explain call wrote.

Usage: python benchmarks/bench_explain_stages.py [RESULTS] [--run RUN] [--config config/config.yaml]
       [--stages explain quality feature_maps] [--keep DIR]
(RESULTS defaults to results/default, RUN to vgg16-freeze3-momentum.) With ``--keep`` the
outputs stay in DIR, so two code versions' tables and maps can be compared (put the other
version's ``src`` first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the scripts run (layerscope.core.scripting)

STAGES = ("explain", "quality", "feature_maps")


def explain(ctx, out: Path) -> None:
    """The explain rule's call: Grad-CAM per block, CAM and LIME of the chosen test images."""
    import pandas as pd

    from layerscope.explain.explanations import write_explanations
    from layerscope.train.fit import enable_determinism

    ex = ctx["explain"]
    enable_determinism(ctx["seed"])
    predictions = pd.read_csv(ctx["run_dir"] / "predictions.csv", dtype={"path": str, "true": str, "predicted": str})
    settings = {key: ex[key] for key in ("batch_size", "images_per_class", "lime")}
    write_explanations(
        ctx["model"], ctx["images"], ctx["labels"], predictions, ctx["classes"], settings, ctx["seed"],
        ctx["run"], out / "maps.npz", out / "explanations.png", cam_model=ctx["cam_model"],
        measured_fill=ctx["measured_fill"],
    )  # fmt: skip


def quality(ctx, out: Path) -> None:
    """The explanation_quality rule's call, on the maps of this process's explain stage (else the run's)."""
    from layerscope.explain.explanations import read_maps
    from layerscope.explain.quality_study import QualityFiles, write_quality
    from layerscope.train.fit import enable_determinism

    ex = ctx["explain"]
    enable_determinism(ctx["seed"])
    maps = out / "maps.npz"
    maps = maps if maps.exists() else ctx["results"] / "explain" / ctx["run"] / "maps.npz"
    names = ("quality.csv", "quality_curves.csv", "randomisation.csv", "quality.md", "quality.tex", "quality.png")
    write_quality(
        ctx["model"], ctx["images"], read_maps(maps), ex["quality"], ex["lime"], ctx["seed"], ctx["run"],
        QualityFiles(*(out / name for name in names)), cam_model=ctx["cam_model"], cam_run=ex["cam_run"],
        batch_size=ex["batch_size"], measured_fill=ctx["measured_fill"],
    )  # fmt: skip


def feature_maps(ctx, out: Path) -> None:
    """The feature_maps rule's call: gradient-ascent stages and invariance."""
    from layerscope.explain.feature_map_study import FeatureMapFiles, write_feature_maps

    cfg = {"layers": None, "channels": None, **ctx["explain"]["feature_maps"]}  # the schema's defaults
    names = ("feature_maps.npz", "feature_maps.csv", "feature_maps.png", "invariance.csv", "invariance.md")
    files = FeatureMapFiles(*(out / name for name in names), out / "invariance.png")
    write_feature_maps(ctx["model"], ctx["images"], ctx["labels"], ctx["classes"], cfg, ctx["run"], files)


def context(results: Path, run: str, config: Path) -> dict:
    """The run's model, the CAM model, the test split and the explain config, loaded once."""
    import yaml

    from layerscope.data.prepare import load_classes, load_split
    from layerscope.explain.fills import read_fill_choice
    from layerscope.train.models import load_model

    cfg = yaml.safe_load(config.read_text())
    fills = results / "explain" / run / "fills.json"  # the run's measured fill, for settings of auto
    images, labels = load_split(results / "data", "test")
    cam_run = cfg["explain"].get("cam_run")
    return {
        "results": results,
        "run": run,
        "run_dir": results / "runs" / run,
        "explain": cfg["explain"],
        "seed": cfg["seed"],
        "images": images,
        "labels": labels,
        "classes": load_classes(results / "data"),
        "model": load_model(results / "runs" / run / "model.keras"),
        "cam_model": load_model(results / "runs" / cam_run / "model.keras") if cam_run else None,
        "measured_fill": read_fill_choice(fills) if fills.exists() else None,
    }


def main() -> None:
    """Time each requested stage and print its wall and CPU seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=Path("results/default"))
    parser.add_argument("--run", default="vgg16-freeze3-momentum")
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--keep", type=Path, help="write the outputs here instead of a temporary folder")
    args = parser.parse_args()
    ctx = context(args.results, args.run, args.config)
    calls = {"explain": explain, "quality": quality, "feature_maps": feature_maps}
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        out = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_explain_stages_")))
        for stage in args.stages:
            wall, cpu = time.perf_counter(), time.process_time()
            calls[stage](ctx, out)
            print(
                f"{args.run} {stage}: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU",
                flush=True,
            )


if __name__ == "__main__":
    main()
