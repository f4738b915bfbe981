"""The explanation_quality rule: how faithful each explanation of one run is, and whether it depends on the model.

For the test images the explain rule chose (``maps.npz``), every method the study uses
is scored with :mod:`layerscope.explain.quality`: Grad-CAM at the last conv layer of
every block the model has (every conv layer of models without VGG blocks), LIME (the
explain rule's maps of the predicted class), CAM (on the GAP model itself) and random
maps, the bracket a faithful method must beat. Faithfulness: deletion and insertion
AUC, deleted pixels replaced by ``explain.quality.baseline``'s fill (``auto``: the
perturbation_fills rule's measured choice). Dependence on the model: cascading parameter
randomisation and the random-logit check; LIME runs them on fewer images with fewer
samples, and its cascade is read after the top layer, each Grad-CAM layer and the full
depth only, since each reading is one LIME fit per image. Grad-CAM's per-block
faithfulness is a signal for the freeze depth: blocks whose maps beat the random bracket
carry the class evidence.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.blocks import block_of
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import to_latex
from layerscope.explain.base import (
    conv_layer_names,
    prepare_inputs,
    probability_pass,
    spread_over_classes,
)
from layerscope.explain.explanations import Explained, read_explained
from layerscope.explain.fills import NEEDS_SEGMENTS, resolve_fill
from layerscope.explain.lime_method import rgb_uint8, superpixels
from layerscope.explain.quality import (
    RANDOMISATION_COLUMNS,
    cam_fn,
    deletion_insertion,
    gradcam_layers_fn,
    lime_fn,
    parameter_randomisation,
    random_logit,
    random_maps,
    randomisation_tables,
    remember,
    summarise,
)
from layerscope.explain.quality_report import (
    RANDOM,
    RANDOM_CAM,
    QualityResult,
    main_table,
    method_label,
    plot_quality,
    quality_markdown,
)

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["run", "method", "layer", "metric", "value", "sd", "n"]
CURVE_COLUMNS = ["run", "method", "layer", "curve", "fraction", "mean", "sd", "n"]
RANDOMISATION_TABLE_COLUMNS = ["run", "method", "layer", "randomised", *RANDOMISATION_COLUMNS[1:]]


def quality_layers(model: keras.Model) -> list[str]:
    """The Grad-CAM layers: the last conv layer of every VGG block, else every conv layer.

    Args:
        model: the run's model.

    Returns:
        Layer names, input side first (VGG-16: block1_conv2, block2_conv2, block3_conv3,
        block4_conv3, block5_conv3; LeNet-5: c1, c3, c5).

    Raises:
        LayerscopeError: the model has no conv layer.
    """
    convs = conv_layer_names(model)
    if not convs:
        raise LayerscopeError(f"model '{model.name}' has no Conv2D layer for Grad-CAM")
    last_of_block = {block_of(name): name for name in convs if block_of(name) is not None}
    return [last_of_block[b] for b in sorted(last_of_block)] or convs


def lime_read_at(model: keras.Model, layers: list[str]) -> list[str]:
    """Where LIME's cascade is read: one LIME fit per image per reading.

    After the top weighted layer, each of ``layers`` (the Grad-CAM layers, deepest first)
    and the first weighted layer (the full cascade).
    """
    weighted = [layer.name for layer in model.layers if layer.weights]
    return list(dict.fromkeys([weighted[-1], *reversed(layers), weighted[0]]))


class _Clock:
    """Adds up wall-clock seconds per metric and logs each step."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def time(self, metric: str, what: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        elapsed = time.perf_counter() - start
        self.seconds[metric] = self.seconds.get(metric, 0.0) + elapsed
        log.info("%s of %s: %.1f s", metric, what, elapsed)
        return result


def evaluate_quality(
    model: keras.Model,
    explained: Explained,
    cfg: dict,
    lime_settings: dict,
    seed: int,
    run: str,
    cam_model: keras.Model | None = None,
    batch_size: int = 32,
) -> QualityResult:
    """Deletion / insertion, cascading randomisation and random-logit for every method of one run.

    Args:
        model: the run's trained model.
        explained: the explain rule's images and maps (:func:`read_explained`).
        cfg: the ``explain.quality`` config (steps, baseline, lime_images, lime_samples);
            its baseline a fill name (not ``auto``: :func:`write_quality` resolves it).
        lime_settings: the ``explain.lime`` config, its ``hide`` a fill name;
            ``num_samples`` is replaced by ``cfg["lime_samples"]`` for the randomisation checks.
        seed: seeds the random maps, the redrawn weights, the other classes and LIME.
        run: the run's id, the tables' ``run`` column.
        cam_model: the GAP model CAM is evaluated on; None skips CAM.
        batch_size: images per Grad-CAM / CAM pass.

    Returns:
        A :class:`QualityResult`.

    Raises:
        LayerscopeError: a CAM model without CAM maps, or a model the explainers refuse.
    """
    if (cam_model is None) != (explained.cam is None):
        raise LayerscopeError(
            "CAM needs both the GAP model and the explain rule's CAM maps (explain.cam_run): "
            f"got {'a' if cam_model is not None else 'no'} model and {'' if explained.cam is not None else 'no '}maps"
        )
    clock = _Clock()
    x = prepare_inputs(model, explained.images)
    layers = quality_layers(model)
    # The trained model's maps are asked for again by the randomisation and random-logit checks.
    gradcam = remember(gradcam_layers_fn(layers, batch_size), model)
    gradcam_maps = clock.time("gradcam_maps", f"{len(layers)} layers", gradcam, model, x, explained.targets)
    segments = None
    if cfg["baseline"] in NEEDS_SEGMENTS:  # LIME's superpixels: SLIC is deterministic
        segmentation = {key: lime_settings[key] for key in ("n_segments", "compactness")}
        segments = np.stack([superpixels(image, **segmentation) for image in rgb_uint8(x)])
    summaries, curves = _faithfulness(
        model, explained, gradcam_maps, cfg, seed, run, cam_model, batch_size, clock, segments
    )
    lime_subset = explained.subset(spread_over_classes(explained.true, cfg["lime_images"]))
    lime = remember(lime_fn({**lime_settings, "num_samples": cfg["lime_samples"]}, seed, fixed=model), model)
    randomised = _randomisation(
        model, explained, gradcam, layers, lime, lime_subset, seed, cam_model, batch_size, clock
    )
    logits = _random_logits(model, explained, gradcam, layers, lime, lime_subset, seed, cam_model, batch_size, clock)
    for (method, layer), frame in [*randomised.items(), *logits.items()]:
        summaries.append(summarise(frame, method, layer, run))
    randomisation = pd.concat(
        [
            frame.rename(columns={"layer": "randomised"}).assign(run=run, method=method, layer=layer)
            for (method, layer), frame in randomised.items()
        ],
        ignore_index=True,
    )[RANDOMISATION_TABLE_COLUMNS]
    log.info("seconds per metric: %s", ", ".join(f"{k} {v:.1f}" for k, v in clock.seconds.items()))
    return QualityResult(
        table=pd.concat(summaries, ignore_index=True)[TABLE_COLUMNS],
        curves=pd.concat(curves, ignore_index=True)[CURVE_COLUMNS],
        randomisation=randomisation,
        images=len(x),
        lime_images=len(lime_subset.images),
        timings=clock.seconds,
    )


def _faithfulness(model, explained, gradcam_maps, cfg, seed, run, cam_model, batch_size, clock, segments):
    """Deletion / insertion of every method and random bracket: summary rows and mean curves."""
    t = explained.targets
    methods = [("gradcam", layer, model, maps, t) for layer, maps in gradcam_maps.items()]
    methods.append(("lime", None, model, explained.lime, t))
    if cam_model is not None:
        methods.append(("cam", None, cam_model, explained.cam, explained.cam_targets))
    methods.append((RANDOM, None, model, random_maps(explained.lime.shape, seed), t))
    if cam_model is not None:
        bracket = random_maps(explained.lime.shape, seed + 1)
        methods.append((RANDOM_CAM, None, cam_model, bracket, explained.cam_targets))
    passes = {id(m): probability_pass(m) for m in (model, cam_model) if m is not None}  # traced once per model
    summaries, curves = [], []
    for method, layer, m, maps, targets in tqdm(methods, desc="deletion/insertion", mininterval=2):
        result = clock.time(
            "deletion_insertion",
            method_label(method, layer),
            deletion_insertion,
            m,
            explained.images,
            maps,
            targets,
            steps=cfg["steps"],
            baseline=cfg["baseline"],
            batch_size=4 * batch_size,  # larger batches run faster on a CPU
            forward=passes[id(m)],
            segments=segments,
        )
        summaries.append(summarise(result, method, layer, run))
        for curve in ("deletion", "insertion"):
            values = getattr(result, curve)
            sd = values.std(axis=0, ddof=1) if len(values) > 1 else np.nan
            columns = {"run": run, "method": method, "layer": layer, "curve": curve, "fraction": result.fractions}
            curves.append(pd.DataFrame({**columns, "mean": values.mean(axis=0), "sd": sd, "n": len(values)}))
    return summaries, curves


def _randomisation(model, explained, gradcam, layers, lime, lime_subset, seed, cam_model, batch_size, clock):
    """Cascading randomisation tables, keyed by (method, layer)."""
    x, t = explained.images, explained.targets
    tables = clock.time(
        "randomisation",
        f"gradcam at {len(layers)} layers",
        randomisation_tables,
        model,
        gradcam,
        x,
        t,
        seed,
        desc="gradcam randomisation",
    )
    randomised = {("gradcam", layer): tables[layer] for layer in layers}
    randomised[("lime", None)] = clock.time(
        "randomisation",
        f"lime ({len(lime_subset.images)} image(s))",
        randomisation_tables,
        model,
        functools.partial(_lime_mapping, lime),
        lime_subset.images,
        lime_subset.targets,
        seed,
        read_at=lime_read_at(model, layers),
        desc="lime randomisation",
    )["lime"]
    if cam_model is not None:
        randomised[("cam", None)] = clock.time(
            "randomisation",
            "cam",
            parameter_randomisation,
            cam_model,
            cam_fn(batch_size),
            x,
            explained.cam_targets,
            seed,
        )
    return randomised


def _random_logits(model, explained, gradcam, layers, lime, lime_subset, seed, cam_model, batch_size, clock):
    """Random-logit tables, keyed by (method, layer)."""
    x, t = explained.images, explained.targets
    logits = {}
    for layer in tqdm(layers, desc="random logit", mininterval=2):
        explain = functools.partial(_one_layer, gradcam, layer)
        logits[("gradcam", layer)] = clock.time(
            "random_logit", f"gradcam/{layer}", random_logit, model, explain, x, t, seed
        )
    logits[("lime", None)] = clock.time(
        "random_logit", "lime", random_logit, model, lime, lime_subset.images, lime_subset.targets, seed
    )
    if cam_model is not None:
        logits[("cam", None)] = clock.time(
            "random_logit", "cam", random_logit, cam_model, cam_fn(batch_size), x, explained.cam_targets, seed
        )
    return logits


def _lime_mapping(lime, model, images, targets) -> dict[str, np.ndarray]:
    return {"lime": lime(model, images, targets)}


def _one_layer(gradcam, layer: str, model, images, targets) -> np.ndarray:
    return gradcam(model, images, targets)[layer]


@dataclass(frozen=True)
class QualityFiles:
    """Where the explanation_quality rule writes, one field per rule output.

    Attributes:
        table: csv of tidy metric rows (run, method, layer, metric, value, sd, n).
        curves: csv of mean and sd deletion / insertion curves per method, layer and fraction.
        randomisation: csv of the randomisation Spearman per method, layer and depth.
        summary: Markdown of the main table and the readings.
        latex: the main table as a booktabs LaTeX table.
        figure: curves and randomisation figure.
    """

    table: str | os.PathLike
    curves: str | os.PathLike
    randomisation: str | os.PathLike
    summary: str | os.PathLike
    latex: str | os.PathLike
    figure: str | os.PathLike


def write_quality(
    model: keras.Model,
    test_images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    cfg: dict,
    lime_settings: dict,
    seed: int,
    run_id: str,
    files: QualityFiles,
    cam_model: keras.Model | None = None,
    cam_run: str | None = None,
    batch_size: int = 32,
    measured_fill: str | None = None,
) -> QualityResult:
    """Score every explanation method of one run and write every output.

    Args:
        model: the run's trained Keras model.
        test_images: the test split (N, H, W[, C]) in 0..255 pixels, as the explain rule saw it.
        maps: the explain rule's ``maps.npz`` (``indices``, ``true``, ``predicted``,
            ``lime_labels``, ``lime_positive``, ``lime_negative``; ``cam``, ``cam_predicted``).
        cfg: the ``explain.quality`` config (images, steps, baseline, lime_images, lime_samples);
            baseline ``auto`` takes ``measured_fill``.
        lime_settings: the ``explain.lime`` config; hide ``auto`` takes ``measured_fill``.
        seed: seeds every random choice.
        run_id: the run's id.
        files: where to write.
        cam_model: CAM's GAP model; None skips CAM (then ``maps`` has no CAM).
        cam_run: its run id, for the Markdown and the figure.
        batch_size: images per Grad-CAM / CAM pass (``explain.batch_size``).
        measured_fill: the perturbation_fills rule's choice for this run, or None.

    Returns:
        The :class:`QualityResult` written, with the fills used.

    Raises:
        LayerscopeError: maps that do not fit the test split or the model (see
            :func:`read_explained`), or a fill set to ``auto`` without ``measured_fill``.
    """
    fills = {
        "deletion": resolve_fill(cfg["baseline"], measured_fill, "explain.quality.baseline"),
        "lime": resolve_fill(lime_settings["hide"], measured_fill, "explain.lime.hide"),
    }
    cfg = {**cfg, "baseline": fills["deletion"].fill}
    lime_settings = {**lime_settings, "hide": fills["lime"].fill}
    explained = read_explained(maps, test_images, cfg["images"])
    result = evaluate_quality(model, explained, cfg, lime_settings, seed, run_id, cam_model, batch_size)
    result.fills.update(fills)
    for frame, path in (
        (result.table, files.table),
        (result.curves, files.curves),
        (result.randomisation, files.randomisation),
    ):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    write_text(files.summary, quality_markdown(result, run_id, cfg, cam_run))
    caption = f"Explanation quality of {run_id}: mean over {result.images} test images"
    write_text(files.latex, to_latex(main_table(result).set_index(["method", "layer"]), caption=caption))
    title = (
        f"{run_id}: explanation quality on {result.images} test images ({cfg['steps']} steps; LIME checks on "
        f"{result.lime_images} image(s)" + (f"; CAM on the GAP model {cam_run}" if cam_run else "") + ")\n"
        f"deleted pixels become: {fills['deletion'].note}; LIME's hidden superpixels: {fills['lime'].note}"
    )
    plot_quality(result, title, files.figure)
    return result
