"""The feature_maps rule: gradient-ascent feature maps per stage and within-class invariance (study B).

Invariance is measured on the optimised images x* of one class (study B, Kwak 2021).

Channels are chosen on images of several classes; x* of one class from several start
images are compared layer by layer to test the study's claim that early layers vary
with the image while late layers converge.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import conv_layer_names, prepare_inputs, spread_over_classes
from layerscope.explain.feature_maps import (
    GradientAscent,
    layer_means,
    pairwise_correlations,
    stage_layers,
    strongest_channels,
)
from layerscope.explain.figures import plot_feature_maps, plot_invariance


def feature_map_layers(model, configured: dict | None) -> dict[str, str]:
    """The stages to visualise: config ``feature_maps.layers`` or the first, a middle and the last conv layer."""
    layers = configured or stage_layers(model)
    names = {layer.name for layer in model.layers}
    unknown = [name for name in layers.values() if name not in names]
    if unknown:
        raise LayerscopeError(f"explain.feature_maps.layers: no layer {unknown} in model '{model.name}'")
    return dict(layers)


def ascend(model, layer: str, images: np.ndarray, channels, steps: int, alpha: float) -> dict[str, np.ndarray]:
    """Gradient ascent from each image on each channel (study B).

    Every (channel, image) pair ascends in one batch: images are independent, so K
    channels cost one pass per step instead of K.

    Keys: ``start`` (N, H, W, C) pixels; ``optimised`` x* (K, N, H, W, C) pixels, K channels;
    ``objective_start`` / ``objective_end`` (K, N) the channel's spatial-mean pre-activation.
    """
    channels = np.asarray(channels, dtype=np.int64)
    ascent = GradientAscent(model, layer, steps=steps, alpha=alpha, batch_size=max(32, len(channels) * len(images)))
    start = ascent.unit.prepare(images)
    pairs = np.concatenate([start] * len(channels))  # channels outer, images inner
    targets = np.repeat(channels, len(start))
    optimised = ascent.explain(pairs, targets)
    grid = (len(channels), len(start))
    return {
        "start": start,
        "optimised": optimised.reshape(*grid, *start.shape[1:]),
        "objective_start": ascent.objective(pairs, targets).reshape(grid),
        "objective_end": ascent.objective(optimised, targets).reshape(grid),
    }


def choose_channels(
    model, layers: list[str], images: np.ndarray, configured: list[int] | None, count: int
) -> dict[str, np.ndarray]:
    """Per layer: config ``feature_maps.channels`` or the ``count`` most responsive channels on ``images``.

    The responses of every layer come from one forward pass over ``images``.
    """
    if configured:
        return {layer: np.asarray(configured, dtype=np.int64) for layer in layers}
    means = layer_means(model, layers, images)
    return {layer: strongest_channels(means[layer], count, layer) for layer in layers}


def feature_map_study(model, images: np.ndarray, labels: np.ndarray, cfg: dict) -> tuple[dict, pd.DataFrame]:
    """Study B's panels: ``cfg["images"]`` images (classes spread) x stages x channels.

    Channels are the most responsive ones on all of ``images`` (or ``cfg["channels"]``).
    Returns (stages, table): ``stages[name] = {"layer", "channels", **ascend(...)}``; the
    table has one row per stage, channel and image with the objective before and after
    and the mean absolute pixel change, so a run shows whether the ascent ascended.
    """
    shown = images[spread_over_classes(labels, cfg["images"])]
    stages, rows = {}, []
    layers = feature_map_layers(model, cfg["layers"])
    chosen = choose_channels(model, list(layers.values()), images, cfg["channels"], cfg["count"])
    for stage, layer in layers.items():
        channels = chosen[layer]
        result = ascend(model, layer, shown, channels, cfg["steps"], cfg["alpha"])
        stages[stage] = {"layer": layer, "channels": channels, **result}
        change = np.abs(result["optimised"] - result["start"][None]).mean(axis=(2, 3, 4))
        for k, channel in enumerate(channels):
            for i in range(len(shown)):
                before, after = result["objective_start"][k, i], result["objective_end"][k, i]
                rows.append(
                    {
                        "stage": stage,
                        "layer": layer,
                        "channel": int(channel),
                        "image": i,
                        "objective_start": before,
                        "objective_end": after,
                        "gain": after / before if before > 0 else float("nan"),
                        "mean_abs_change": change[k, i],
                    }
                )
    return stages, pd.DataFrame(rows)


def invariance_study(model, images: np.ndarray, cfg: dict, layers: list[str] | None = None):
    """Study B's invariance, on x*: per conv layer, how alike the optimised images of one class are.

    Each layer's channel is its most responsive one on ``images`` (one class); every
    image is ascended on it. Returns (table, optimised, verdict): one row per layer with
    the mean, sd, quartiles and count of the pairwise Pearson correlations of x*, and
    for reference the same mean for the start images and for the changes x* - x;
    ``optimised[layer]`` is x* (N, H, W, C); ``verdict`` is :func:`invariance_verdict`.
    """
    layers = layers or conv_layer_names(model)
    rows, optimised = [], {}
    start_corr = float(np.mean(pairwise_correlations(prepare_inputs(model, images))))
    chosen = choose_channels(model, layers, images, None, 1)
    for depth, layer in enumerate(layers, start=1):
        channel = chosen[layer]
        result = ascend(model, layer, images, channel, cfg["steps"], cfg["alpha"])
        x = result["optimised"][0]
        optimised[layer] = x
        r = pairwise_correlations(x)
        change = pairwise_correlations(x - result["start"])
        rows.append(
            {
                "layer": layer,
                "depth": depth,
                "channel": int(channel[0]),
                "images": len(images),
                "mean": _stat(np.mean, r),
                "sd": _stat(np.std, r),
                "q25": _stat(lambda v: np.quantile(v, 0.25), r),
                "q75": _stat(lambda v: np.quantile(v, 0.75), r),
                "n_pairs": len(r),
                "start_images_mean": start_corr,
                "change_mean": _stat(np.mean, change),
            }
        )
    table = pd.DataFrame(rows)
    return table, optimised, invariance_verdict(table)


def _stat(function, values: np.ndarray) -> float:
    return float(function(values)) if len(values) else float("nan")


def invariance_verdict(table: pd.DataFrame) -> str:
    """One sentence: does study B's direction (early layers vary, late layers alike) hold?

    It holds when the last layer's x* correlate more than the first layer's and the
    correlation rises with depth overall (Spearman rho > 0); reversed when both say
    the opposite; unclear otherwise. The spreads are quoted so a small difference
    can be read as such.
    """
    rows = table.sort_values("depth")
    first, last = rows.iloc[0], rows.iloc[-1]
    if len(rows) > 2 and rows["mean"].nunique() > 1:
        rho = float(rows["depth"].corr(rows["mean"], method="spearman"))
    else:
        rho = float(np.sign(last["mean"] - first["mean"]))
    if last["mean"] > first["mean"] and rho > 0:
        outcome = "holds"
    elif last["mean"] < first["mean"] and rho < 0:
        outcome = "is reversed"
    else:
        outcome = "is not clear"
    small = abs(last["mean"] - first["mean"]) < max(first["sd"], last["sd"])
    return (
        f"Study B's direction (early layers vary with the image, late layers similar) {outcome} here: "
        f"x* correlate {first['mean']:.2f} (sd {first['sd']:.2f}) across {int(first['images'])} images "
        f"at {first['layer']} and {last['mean']:.2f} (sd {last['sd']:.2f}) at {last['layer']}, "
        f"Spearman rho over depth {rho:.2f}, start images {first['start_images_mean']:.2f}"
        + ("; the difference is within the spread." if small else ".")
    )


@dataclass(frozen=True)
class FeatureMapFiles:
    """Where the feature_maps rule writes, one field per rule output.

    Attributes:
        maps: npz of every stage's start images, x* and objectives.
        gains: csv of the objective before and after ascent, per stage, channel and image.
        figure: the feature-map panel figure.
        invariance_table: csv of per-layer pairwise correlations of x*.
        verdict: text file with the one-sentence invariance verdict.
        invariance: the invariance figure.
    """

    maps: str | os.PathLike
    gains: str | os.PathLike
    figure: str | os.PathLike
    invariance_table: str | os.PathLike
    verdict: str | os.PathLike
    invariance: str | os.PathLike


def write_feature_maps(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    cfg: dict,
    run_id: str,
    files: FeatureMapFiles,
) -> str:
    """Run both studies on test images of one run and write every output.

    Invariance uses the most frequent class, so it has the most start images to compare.

    Args:
        model: the trained Keras model of the run.
        images: test images (N, H, W[, C]) in 0..255 pixels.
        labels: their integer class labels (N,).
        classes: class names, indexed by label.
        cfg: the ``explain.feature_maps`` config (images, layers, channels, count, steps,
            alpha, invariance_images).
        run_id: the run's id, for figure titles.
        files: where to write.

    Returns:
        The invariance verdict sentence (also written to ``files.verdict``).

    Raises:
        LayerscopeError: configured layers or channels the model does not have.
    """
    stages, gains = feature_map_study(model, images, labels, cfg)
    with atomic_path(files.maps) as tmp:
        np.savez_compressed(
            tmp,
            **{f"{stage}/{key}": value for stage, v in stages.items() for key, value in v.items() if key != "layer"},
        )
    with atomic_path(files.gains) as tmp:
        gains.to_csv(tmp, index=False)
    plot_feature_maps(stages, run_id, files.figure, cfg["steps"], cfg["alpha"])

    label = int(np.bincount(labels).argmax())
    same_class = images[labels == label][: cfg["invariance_images"]]
    table, optimised, verdict = invariance_study(model, same_class, cfg)
    table.insert(2, "class", classes[label])
    with atomic_path(files.invariance_table) as tmp:
        table.to_csv(tmp, index=False)
    write_text(files.verdict, verdict + "\n")
    shown = [layer for layer in dict.fromkeys(v["layer"] for v in stages.values()) if layer in optimised]
    plot_invariance(same_class, optimised, table, verdict, classes[label], run_id, files.invariance, shown=shown)
    return verdict
