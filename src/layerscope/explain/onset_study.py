"""Feature onset of one run (study B, Kwak 2021): when each stage's feature maps settle.

The maps are the gradient-ascent changes x* - x of several channels on several test
images (:class:`layerscope.explain.GradientAscent`), read from the weights saved at
log-spaced steps by :class:`layerscope.train.fit.StepCheckpoints`. The reference is the
end-of-training weights (``final_<step>.weights.h5``), not the best-validation weights of
``model.keras``. Every (channel, image) gets an onset (:mod:`layerscope.explain.onset`);
a layer's onset is their median with the interquartile range, set beside the study's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from layerscope.core.errors import LayerscopeError
from layerscope.core.figures import save_figure
from layerscope.explain.base import spread_over_classes
from layerscope.explain.feature_maps import GradientAscent, representative_channels, stage_layers
from layerscope.explain.onset import correlation_curves, layer_onset

STUDY_ONSET = {"first": 20, "middle": 100, "last": 200}
"""Training iterations after which study B sees the first / middle / last stage's features."""

_NAME = re.compile(r"(step|final)_(\d+)\.weights\.h5")


def checkpoint_readings(directory: str | os.PathLike) -> tuple[list[int], list[Path]]:
    """Steps and weight files of a run's checkpoints, in step order, ending with the final one."""
    directory = Path(directory)
    found = {}
    final = None
    for path in directory.glob("*.weights.h5"):
        match = _NAME.fullmatch(path.name)
        if match is None:
            continue
        step = int(match.group(2))
        if match.group(1) == "final":
            if final is not None:
                raise LayerscopeError(f"{directory} holds two end-of-training checkpoints ({final.name}, {path.name})")
            final = path
        found[step] = path if match.group(1) == "final" or step not in found else found[step]
    if final is None:
        raise LayerscopeError(
            f"{directory} has no end-of-training checkpoint final_<step>.weights.h5 "
            "(written by layerscope's training since checkpoints became log-spaced; retrain the run)"
        )
    last = int(_NAME.fullmatch(final.name).group(2))
    steps = sorted(s for s in found if s <= last)
    if len(steps) < 2:
        raise LayerscopeError(f"{directory} has only the final checkpoint; the onset needs earlier readings")
    return steps, [found[s] for s in steps]


def ascent_changes(ascent: GradientAscent, images: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """x* - x for every (channel, image) pair, (K * N, H, W, C), channels outer."""
    x = np.concatenate([images] * len(channels))
    targets = np.repeat(np.asarray(channels, dtype=np.int64), len(images))
    return ascent.explain(x, targets) - ascent.unit.prepare(x)


def measure_onset(
    model, checkpoint_dir, images: np.ndarray, labels: np.ndarray, feature_maps: dict, onset: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Onset per stage of a run whose ``model`` architecture matches its checkpoints.

    The model's weights are replaced by each checkpoint in turn, ending with the final one.

    Args:
        model: a Keras model built like the run's; its weights are overwritten.
        checkpoint_dir: the run's checkpoint folder (``step_<n>`` and ``final_<n>`` weight files).
        images: test images (N, H, W[, C]) in 0..255 pixels.
        labels: their integer class labels (N,), to spread the shown images over classes.
        feature_maps: the ascent config: ``layers`` (None: first, middle, last conv), ``steps``, ``alpha``.
        onset: the onset config: ``images``, ``channels`` (the most responsive at the end of
            training), ``threshold``.

    Returns:
        ``(curves, table)``: curves has one row per stage, unit and reading (correlation
        with the final map); table one row per stage with the median onset step, its
        quartiles, the unit counts, the last step and the study's onset.

    Raises:
        LayerscopeError: no final checkpoint, two of them, or no earlier reading.
    """
    steps, paths = checkpoint_readings(checkpoint_dir)
    shown = images[spread_over_classes(labels, onset["images"])]
    model.load_weights(paths[-1])
    stages = feature_maps.get("layers") or stage_layers(model)
    channels = {layer: representative_channels(model, layer, shown, k=onset["channels"]) for layer in stages.values()}
    # One ascent per layer, traced once: loading a checkpoint assigns the model's variables in place.
    ascents = {
        layer: GradientAscent(model, layer, steps=feature_maps["steps"], alpha=feature_maps["alpha"])
        for layer in stages.values()
    }
    maps: dict[str, list[np.ndarray]] = {layer: [] for layer in ascents}
    for path in paths:
        model.load_weights(path)
        for layer, ascent in ascents.items():
            maps[layer].append(ascent_changes(ascent, shown, channels[layer]).astype(np.float32))
    curve_rows, rows = [], []
    for depth, (stage, layer) in enumerate(stages.items(), start=1):
        curves = correlation_curves(np.stack(maps[layer]), maps[layer][-1])
        result = layer_onset(curves, steps, onset["threshold"])
        units = [(int(c), i) for c in channels[layer] for i in range(len(shown))]
        for u, (channel, image) in enumerate(units):
            curve_rows += [
                {
                    "stage": stage,
                    "layer": layer,
                    "channel": channel,
                    "image": image,
                    "step": s,
                    "correlation": float(r),
                    "unit_onset": result.unit_steps[u],
                }
                for s, r in zip(steps, curves[u])
            ]
        rows.append(
            {
                "stage": stage,
                "layer": layer,
                "depth": depth,
                "onset_median": result.median,
                "onset_q25": result.q25,
                "onset_q75": result.q75,
                "units": result.units,
                "settled": result.settled,
                "channels": len(channels[layer]),
                "images": len(shown),
                "readings": len(steps),
                "last_step": steps[-1],
                "study_onset": STUDY_ONSET.get(stage),
            }
        )
    return pd.DataFrame(curve_rows), pd.DataFrame(rows)


def plot_onset(
    curves: pd.DataFrame, table: pd.DataFrame, threshold: float, run_id: str, path: str | os.PathLike
) -> Path:
    """Per stage: the median correlation with the final map over training, and the onsets.

    The band is the quartiles over units; the measured median onset is dotted with its IQR
    shaded, the study's onset dashed.

    Args:
        curves: the curves table of :func:`measure_onset`.
        table: the per-stage table of :func:`measure_onset`.
        threshold: the onset threshold, drawn as a line.
        run_id: the run's id, for the title.
        path: where to save the figure.

    Returns:
        ``path`` as a Path.
    """
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for row in table.itertuples():
        group = curves[curves["layer"] == row.layer].groupby("step")["correlation"]
        q = group.quantile([0.25, 0.5, 0.75]).unstack()
        label = (
            f"{row.stage} ({row.layer}): onset {_fmt(row.onset_median)} [{_fmt(row.onset_q25)}-{_fmt(row.onset_q75)}]"
        )
        (line,) = ax.plot(q.index, q[0.5], marker="o", ms=3, label=label)
        ax.fill_between(q.index, q[0.25], q[0.75], color=line.get_color(), alpha=0.15, lw=0)
        if np.isfinite(row.onset_median):
            ax.axvline(row.onset_median, color=line.get_color(), ls=":")
            ax.axvspan(row.onset_q25, row.onset_q75, color=line.get_color(), alpha=0.08)
        if row.study_onset is not None and np.isfinite(row.study_onset):
            ax.axvline(row.study_onset, color=line.get_color(), ls="--", lw=0.9)
    ax.axhline(threshold, color="grey", ls="-", lw=0.8, label=f"threshold {threshold}")
    ax.plot([], [], color="0.3", ls="--", lw=0.9, label="study B onset (20 / 100 / 200)")
    ax.set_xscale("symlog", linthresh=1)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlim(0, max(curves["step"].max(), table["study_onset"].fillna(0).max()) * 1.1)
    ax.set_xlabel("training step (0 = initial weights; log scale above 1)")
    ax.set_ylabel("correlation with end-of-training map")
    units = f"{int(table['channels'].iloc[0])} channels x {int(table['images'].iloc[0])} images per stage"
    ax.set_title(f"{run_id}: feature onset by stage (median and quartiles over {units})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def _fmt(value: float) -> str:
    return "never" if not np.isfinite(value) else f"{value:g}"
