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
from layerscope.explain.feature_map_claims import invariance_direction
from layerscope.explain.feature_maps import (
    ChannelChoice,
    GradientAscent,
    change_similarity,
    choose_channels_from,
    layer_means,
    pairwise_correlations,
    profile_correlations,
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


def feature_map_study(
    model, images: np.ndarray, labels: np.ndarray, cfg: dict, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """Study B's panels: ``cfg["images"]`` images (classes spread) x stages x channels.

    Channels are chosen on all of ``images`` by :func:`choose_channels_from` (threshold
    ``cfg["max_correlation"]``; ``cfg["channels"]`` overrides), at a linear first layer by
    colour direction (:func:`colour_directions`). :data:`RANDOM_CHANNELS` channels drawn at
    random from the layer (``seed``) are ascended beside them, so how alike the shown
    channels are can be set against the layer's typical channels (:func:`distinctness_table`).

    Returns (stages, table): ``stages[name] = {"layer", "channels", "choice", "flat",
    "random_channels", "random_profiles", "random_optimised", **ascend(...)}``; the table
    has one row per stage, channel and image with the objective before and after and
    the mean absolute pixel change, so a run shows whether the ascent ascended.
    """
    shown = images[spread_over_classes(labels, cfg["images"])]
    stages, rows = {}, []
    layers = feature_map_layers(model, cfg["layers"])
    means = layer_means(model, list(layers.values()), images)
    first_conv = conv_layer_names(model)[0]
    colours = model.inputs[0].shape[-1] if len(model.inputs[0].shape) == 4 else 1
    rng = np.random.default_rng(seed)
    for stage, layer in layers.items():
        flat = layer == first_conv  # linear in the pixels: its change is spatially flat
        directions = colour_directions(model, layer, shown[0]) if flat and colours > 1 else None
        choice = choose_channels_from(
            means[layer], cfg["count"], layer, cfg["max_correlation"], cfg["channels"], directions
        )
        channels, k = choice.channels, len(choice.channels)
        filters = means[layer].shape[1]
        random = np.sort(rng.choice(filters, size=min(RANDOM_CHANNELS, filters), replace=False))
        both = ascend(model, layer, shown, np.concatenate([channels, random]), cfg["steps"], cfg["alpha"])
        result = {key: value if key == "start" else value[:k] for key, value in both.items()}
        stages[stage] = {
            "layer": layer,
            "channels": channels,
            "choice": choice,
            "flat": flat,
            "random_channels": random,
            "random_profiles": means[layer][:, random],
            "random_optimised": both["optimised"][k:],
            **result,
        }
        change = np.abs(result["optimised"] - result["start"][None]).mean(axis=(2, 3, 4))
        for j, channel in enumerate(channels):
            for i in range(len(shown)):
                before, after = result["objective_start"][j, i], result["objective_end"][j, i]
                rows.append(
                    {
                        "stage": stage,
                        "layer": layer,
                        "channel": int(channel),
                        "image": i,
                        "objective_start": before,
                        "objective_end": after,
                        "gain": after / before if before > 0 else float("nan"),
                        "mean_abs_change": change[j, i],
                    }
                )
    return stages, pd.DataFrame(rows)


RANDOM_CHANNELS = 10
"""Random channels per stage, the reference for how alike a layer's channels are (45 pairs per image)."""


def colour_directions(model, layer: str, image: np.ndarray) -> np.ndarray:
    """Each channel's colour direction at a linear first layer: the mean over pixels of one ascent step.

    The layer is linear in the pixels, so its step is the same from every image and
    ``image`` only has to fit the model. Returns (channels, colours).
    """
    channels = np.arange(model.get_layer(layer).filters)
    step = ascend(model, layer, np.asarray(image)[None], channels, steps=1, alpha=1.0)
    return (step["optimised"][:, 0] - step["start"][0]).mean(axis=(1, 2))


PIXEL_MEASURE = "Pearson of x* - x"
COLOUR_MEASURE = "cosine of mean colour change (linear first layer: its change is spatially flat)"
NO_MEASURE = "none (linear first layer on one colour: one flat change)"


def change_measure(flat: bool, colours: int) -> str:
    """The name of the measure :func:`change_similarity` applies to a stage's changes."""
    if not flat:
        return PIXEL_MEASURE
    return COLOUR_MEASURE if colours > 1 else NO_MEASURE


def distinctness_table(stages: dict) -> pd.DataFrame:
    """Per stage: how the channels were chosen and how alike they are, beside random channels.

    Activations: Pearson correlation of the channels' activation profiles (spatial-mean
    pre-activation per image, on the images the channels were chosen on). Changes: every
    pair of channels' x* - x on each shown image (:func:`change_similarity`: Pearson, or
    the cosine of the mean colour change at a linear first layer). Means and maxima are
    over pairs (and images); the random columns hold the same numbers for
    :data:`RANDOM_CHANNELS` channels drawn at random from the layer.
    """
    rows = []
    for stage, v in stages.items():
        choice: ChannelChoice = v["choice"]
        colours = v["start"].shape[-1]
        changes = v["optimised"] - v["start"][None]
        random_changes = v["random_optimised"] - v["start"][None]
        activation = _upper(choice.correlations)
        random_activation = _upper(profile_correlations(v["random_profiles"]))
        similarity = change_similarity(changes, v["flat"])
        random_similarity = change_similarity(random_changes, v["flat"])
        rows.append(
            {
                "stage": stage,
                "layer": v["layer"],
                "rule": choice.rule,
                "compared_by": choice.compared_by if choice.rule == "distinct" else "",
                "max_correlation": choice.max_correlation,
                "channels": " ".join(map(str, choice.channels.tolist())),
                "fallback": choice.fallback,
                "profile_images": len(choice.profiles),
                "activation_corr_mean": _stat(np.mean, activation),
                "activation_corr_max": _stat(np.max, activation),
                "activation_corr_pairs": _pairs_text(choice.channels, choice.correlations),
                "change_measure": change_measure(v["flat"], colours),
                "change_corr_mean": _stat(np.mean, similarity),
                "change_corr_max": _stat(np.max, similarity),
                "random_channels": " ".join(map(str, v["random_channels"].tolist())),
                "random_activation_corr_mean": _stat(np.mean, random_activation),
                "random_change_corr_mean": _stat(np.mean, random_similarity),
                "random_change_corr_max": _stat(np.max, random_similarity),
            }
        )
    return pd.DataFrame(rows)


def _upper(matrix: np.ndarray) -> np.ndarray:
    """The pairs of a correlation matrix (upper triangle), NaN pairs left out."""
    values = matrix[np.triu_indices(len(matrix), k=1)]
    return values[np.isfinite(values)]


def _pairs_text(channels: np.ndarray, correlations: np.ndarray) -> str:
    rows, cols = np.triu_indices(len(channels), k=1)
    return "; ".join(f"{channels[a]}-{channels[b]} {correlations[a, b]:.2f}" for a, b in zip(rows, cols))


def stage_label(v: dict, table_row: pd.Series) -> str:
    """The figure's stage label: how the channels were chosen and how alike their changes are."""
    measure = "colour cos" if table_row["change_measure"] == COLOUR_MEASURE else "r"
    alike = (
        f"changes {measure} mean {table_row['change_corr_mean']:.2f}, random {table_row['random_change_corr_mean']:.2f}"
        if table_row["change_measure"] != NO_MEASURE
        else "flat change, one colour"
    )
    return f"{v['choice'].label()}\n{alike}"


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
    means = layer_means(model, layers, images)
    for depth, layer in enumerate(layers, start=1):
        channel = strongest_channels(means[layer], 1, layer)
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

    The direction is :func:`invariance_direction`'s: it holds when the last layer's x*
    correlate more than the first layer's and the correlation rises with depth overall
    (Spearman rho > 0); reversed when both say the opposite; unclear otherwise. The
    spreads are quoted so a small difference can be read as such.
    """
    rows = table.sort_values("depth")
    first, last = rows.iloc[0], rows.iloc[-1]
    direction, rho = invariance_direction(table)
    outcome = {"holds": "holds", "opposite": "is reversed"}.get(direction, "is not clear")
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
        maps: npz of every stage's start images, x*, objectives and random channels' x*.
        gains: csv of the objective before and after ascent, per stage, channel and image.
        channels: csv of how each stage's channels were chosen and how alike they are
            (:func:`distinctness_table`).
        figure: the feature-map panel figure.
        invariance_table: csv of per-layer pairwise correlations of x*.
        verdict: text file with the one-sentence invariance verdict.
        invariance: the invariance figure.
    """

    maps: str | os.PathLike
    gains: str | os.PathLike
    channels: str | os.PathLike
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
    seed: int = 0,
) -> dict:
    """Run both studies on test images of one run and write every output.

    Invariance uses the most frequent class, so it has the most start images to compare.

    Args:
        model: the trained Keras model of the run.
        images: test images (N, H, W[, C]) in 0..255 pixels.
        labels: their integer class labels (N,).
        classes: class names, indexed by label.
        cfg: the ``explain.feature_maps`` config (images, layers, channels, count,
            max_correlation, steps, alpha, invariance_images).
        run_id: the run's id, for figure titles.
        files: where to write.
        seed: draws the random channels set beside the chosen ones.

    Returns:
        For the job's provenance: ``invariance_verdict`` (the sentence also written to
        ``files.verdict``) and, per stage, ``channels``: the layer, rule, threshold,
        chosen channels, fallback count, their profiles' pairwise correlations and the
        random channels.

    Raises:
        LayerscopeError: configured layers or channels the model does not have.
    """
    stages, gains = feature_map_study(model, images, labels, cfg, seed)
    with atomic_path(files.maps) as tmp:
        arrays = {f"{stage}/{key}": value for stage, v in stages.items() for key, value in v.items()}
        np.savez_compressed(tmp, **{key: value for key, value in arrays.items() if isinstance(value, np.ndarray)})
    with atomic_path(files.gains) as tmp:
        gains.to_csv(tmp, index=False)
    distinct = distinctness_table(stages)
    with atomic_path(files.channels) as tmp:
        distinct.to_csv(tmp, index=False)
    labels_by_stage = {stage: stage_label(stages[stage], row) for stage, row in distinct.set_index("stage").iterrows()}
    plot_feature_maps(stages, run_id, files.figure, cfg["steps"], cfg["alpha"], labels_by_stage)

    label = int(np.bincount(labels).argmax())
    same_class = images[labels == label][: cfg["invariance_images"]]
    table, optimised, verdict = invariance_study(model, same_class, cfg)
    table.insert(2, "class", classes[label])
    with atomic_path(files.invariance_table) as tmp:
        table.to_csv(tmp, index=False)
    write_text(files.verdict, verdict + "\n")
    shown = [layer for layer in dict.fromkeys(v["layer"] for v in stages.values()) if layer in optimised]
    plot_invariance(same_class, optimised, table, verdict, classes[label], run_id, files.invariance, shown=shown)
    return {"invariance_verdict": verdict, "channels": {stage: _choice_record(v) for stage, v in stages.items()}}


def _choice_record(v: dict) -> dict:
    choice: ChannelChoice = v["choice"]
    return {
        "layer": v["layer"],
        "rule": choice.rule,
        "compared_by": choice.compared_by,
        "max_correlation": choice.max_correlation,
        "channels": choice.channels.tolist(),
        "fallback": choice.fallback,
        "profile_correlations": _rounded(choice.correlations),  # None: a constant profile
        "compared": _rounded(choice.compared),  # the rule's measure: profile r or colour cosine
        "random_channels": v["random_channels"].tolist(),
    }


def _rounded(matrix: np.ndarray) -> list[list[float | None]]:
    return [[round(float(r), 4) if np.isfinite(r) else None for r in row] for row in matrix]
