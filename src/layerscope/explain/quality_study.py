"""The explanation_quality rule: how faithful each explanation of one run is, and whether it depends on the model.

For the test images the explain rule chose (``maps.npz``), every method the study uses
is scored with :mod:`layerscope.explain.quality`: Grad-CAM at the last conv layer of
every block the model has (every conv layer of models without VGG blocks), LIME (the
explain rule's maps of the predicted class), CAM (on the GAP model itself) and random
maps, the bracket a faithful method must beat. Faithfulness: deletion and insertion
AUC. Dependence on the model: cascading parameter randomisation and the random-logit
check; LIME runs them on fewer images with fewer samples, and its cascade is read after
the top layer, each Grad-CAM layer and the full depth only, since each reading is one
LIME fit per image. Grad-CAM's per-block faithfulness is a signal for the freeze depth:
blocks whose maps beat the random bracket carry the class evidence.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import zipfile
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.errors import LayerscopeError
from layerscope.core.render import to_latex
from layerscope.explain import conv_layer_names
from layerscope.explain.base import (
    INDICES,
    class_scores,
    find_layer,
    input_spec,
    prepare_inputs,
    resize_maps,
    resolve_targets,
    spatial_output,
)
from layerscope.explain.feature_map_study import spread_over_classes
from layerscope.explain.gradcam import gradcam_maps
from layerscope.explain.quality import (
    RANDOMISATION_COLUMNS,
    cam_fn,
    deletion_insertion,
    lime_fn,
    map_agreement,
    parameter_randomisation,
    random_logit,
    random_maps,
    randomisation_cascade,
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
from layerscope.train.models import block_of

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


class GradCAMLayers:
    """Grad-CAM at several layers from one gradient pass, as an explain_fn returning ``{layer: maps}``.

    The maps equal :class:`layerscope.explain.GradCAM`'s, upsampled to the input: one pass
    to the shallowest layer costs about what one layer's does, and the side model is built
    and traced once per model object, so it follows a randomisation cascade's clone as its
    weights are redrawn in place.
    """

    def __init__(self, layers: list[str], batch_size: int = 32):
        """Keep the layers; the side model is built on the first call with a model.

        Args:
            layers: the conv layers to explain, e.g. :func:`quality_layers`.
            batch_size: images per gradient pass.
        """
        self.layers = list(layers)
        self.batch_size = int(batch_size)
        self._model = None
        self._maps = None

    def __call__(self, model: keras.Model, images, targets) -> dict[str, np.ndarray]:
        """Grad-CAM maps of every layer, upsampled to the images.

        Args:
            model: the model to explain (a new object builds and traces a new side model).
            images: images (N, H, W[, C]) in the model's raw pixel range.
            targets: class indices or one-hot rows; None: the predicted class.

        Returns:
            ``{layer: float32 (N, H, W) non-negative maps}``.

        Raises:
            LayerscopeError: a layer the model lacks, or images or targets that do not fit.
        """
        if model is not self._model:
            scores, _ = class_scores(model)
            features = [spatial_output(find_layer(model, name), model) for name in self.layers]
            side = keras.Model(model.inputs[0], [*features, scores])
            self._maps = tf.function(
                functools.partial(gradcam_maps, side), input_signature=[input_spec(model), INDICES]
            )
            self._model = model
        x = prepare_inputs(model, images)
        t = resolve_targets(targets, len(x), model.outputs[0].shape[-1])
        t = np.full(len(x), -1, np.int32) if t is None else t
        batches = [
            self._maps(tf.constant(x[s : s + self.batch_size]), tf.constant(t[s : s + self.batch_size]))
            for s in range(0, len(x), self.batch_size)
        ]
        return {
            name: resize_maps(np.concatenate([batch[k].numpy() for batch in batches]), x.shape[1:3])
            for k, name in enumerate(self.layers)
        }


def cascade(
    model: keras.Model,
    explain_fn: Callable[[keras.Model, np.ndarray, np.ndarray], Mapping[str, np.ndarray]],
    images,
    targets,
    seed: int,
    read_at: Collection[str] | None = None,
    desc: str = "gradcam randomisation",
) -> dict[str, pd.DataFrame]:
    """Cascading parameter randomisation of several maps at once, read where asked.

    :func:`layerscope.explain.quality.parameter_randomisation` for an ``explain_fn`` that
    returns several maps from one call (``{key: maps}``), e.g. :class:`GradCAMLayers`:
    one cascade, each key's table as that function's.

    Args:
        model: the trained model.
        explain_fn: ``explain_fn(model, images, targets) -> {key: maps (N, h, w)}``.
        images: raw images (N, H, W[, C]).
        targets: the explained classes (N,).
        seed: seed of the redrawn weights.
        read_at: the randomised layers after which the maps are read (None: every one);
            the cascade still randomises every layer in between.
        desc: the progress bar's label.

    Returns:
        ``{key: table}``, each with :data:`layerscope.explain.quality.RANDOMISATION_COLUMNS`.
    """
    x = prepare_inputs(model, images)
    original = explain_fn(model, x, targets)
    rows: dict[str, list] = {key: [] for key in original}
    steps = [layer for layer in model.layers if layer.weights]
    for layer, depth, clone in tqdm(randomisation_cascade(model, seed), desc=desc, total=len(steps), mininterval=2):
        if read_at is not None and layer not in read_at:
            continue
        maps = explain_fn(clone, x, targets)
        for key, before in original.items():
            rows[key].append((layer, depth, *map_agreement(before, maps[key])))
    return {key: pd.DataFrame(value, columns=RANDOMISATION_COLUMNS) for key, value in rows.items()}


def lime_read_at(model: keras.Model, layers: list[str]) -> list[str]:
    """Where LIME's cascade is read: one LIME fit per image per reading.

    After the top weighted layer, each of ``layers`` (the Grad-CAM layers, deepest first)
    and the first weighted layer (the full cascade).
    """
    weighted = [layer.name for layer in model.layers if layer.weights]
    return list(dict.fromkeys([weighted[-1], *reversed(layers), weighted[0]]))


@dataclass(frozen=True)
class Explained:
    """The explain rule's choice for one run, read from its ``maps.npz``.

    Attributes:
        images: the chosen test images (N, H, W[, C]), 0..255.
        true: their true classes (N,).
        targets: the explained (predicted) classes (N,).
        lime: LIME's signed maps of the explained class (N, H, W).
        cam: CAM's maps (N, H, W) of the GAP model, or None.
        cam_targets: the GAP model's predicted classes (N,), or None.
    """

    images: np.ndarray
    true: np.ndarray
    targets: np.ndarray
    lime: np.ndarray
    cam: np.ndarray | None = None
    cam_targets: np.ndarray | None = None

    def subset(self, positions: np.ndarray) -> Explained:
        """The same fields for the images at ``positions``."""
        pick = {name: getattr(self, name) for name in ("images", "true", "targets", "lime", "cam", "cam_targets")}
        return Explained(**{name: None if value is None else value[positions] for name, value in pick.items()})


def read_explained(maps: Mapping[str, np.ndarray], test_images: np.ndarray, count: int | None = None) -> Explained:
    """The explain rule's images and maps, ``count`` of them (classes spread; None: all).

    LIME's map is that of the predicted class (positive plus negative evidence): its top
    label, or the next one where LIME's own forward pass ranks a near-tie the other way.

    Args:
        maps: the explain rule's ``maps.npz`` (or a dict of its arrays).
        test_images: the test split the ``indices`` point into.
        count: how many of the chosen images to keep, one class after another.

    Returns:
        An :class:`Explained`.

    Raises:
        LayerscopeError: the maps hold indices outside the test split, or LIME's labels
            miss the predicted class.
    """
    indices = np.asarray(maps["indices"], dtype=np.int64)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(test_images):
        raise LayerscopeError(
            f"maps.npz names test images {indices.tolist()} but the test split has {len(test_images)}; "
            "rerun the explain rule"
        )
    targets = np.asarray(maps["predicted"], dtype=np.int32)
    labels = np.asarray(maps["lime_labels"])
    matches = labels == targets[:, None]
    wrong = np.flatnonzero(~matches.any(axis=1))
    if len(wrong):
        raise LayerscopeError(
            f"maps.npz: LIME's labels {labels[wrong].tolist()} do not include the predicted class "
            f"{targets[wrong].tolist()} for images {indices[wrong].tolist()}; rerun the explain rule"
        )
    column = matches.argmax(axis=1)  # the predicted class's map: LIME's top label unless probabilities tie
    rows = np.arange(len(indices))
    lime = np.asarray(maps["lime_positive"])[rows, column] + np.asarray(maps["lime_negative"])[rows, column]
    has_cam = "cam" in maps
    explained = Explained(
        images=np.asarray(test_images)[indices],
        true=np.asarray(maps["true"]),
        targets=targets,
        lime=lime.astype(np.float32),
        cam=np.asarray(maps["cam"], dtype=np.float32) if has_cam else None,
        cam_targets=np.asarray(maps["cam_predicted"], dtype=np.int32) if has_cam else None,
    )
    if count is None or count >= len(indices):
        return explained
    return explained.subset(spread_over_classes(explained.true, count))


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
        cfg: the ``explain.quality`` config (steps, baseline, lime_images, lime_samples).
        lime_settings: the ``explain.lime`` config; ``num_samples`` is replaced by
            ``cfg["lime_samples"]`` for the randomisation checks.
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
    gradcam = GradCAMLayers(layers, batch_size)
    gradcam_maps = clock.time("gradcam_maps", f"{len(layers)} layers", gradcam, model, x, explained.targets)
    summaries, curves = _faithfulness(model, explained, gradcam_maps, cfg, seed, run, cam_model, batch_size, clock)
    lime_subset = explained.subset(spread_over_classes(explained.true, cfg["lime_images"]))
    lime = lime_fn({**lime_settings, "num_samples": cfg["lime_samples"]}, seed)
    randomised = _randomisation(model, explained, gradcam, lime, lime_subset, seed, cam_model, batch_size, clock)
    logits = _random_logits(model, explained, gradcam, lime, lime_subset, seed, cam_model, batch_size, clock)
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


def _faithfulness(model, explained, gradcam_maps, cfg, seed, run, cam_model, batch_size, clock):
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
        )
        summaries.append(summarise(result, method, layer, run))
        for curve in ("deletion", "insertion"):
            values = getattr(result, curve)
            sd = values.std(axis=0, ddof=1) if len(values) > 1 else np.nan
            columns = {"run": run, "method": method, "layer": layer, "curve": curve, "fraction": result.fractions}
            curves.append(pd.DataFrame({**columns, "mean": values.mean(axis=0), "sd": sd, "n": len(values)}))
    return summaries, curves


def _randomisation(model, explained, gradcam, lime, lime_subset, seed, cam_model, batch_size, clock):
    """Cascading randomisation tables, keyed by (method, layer)."""
    x, t, layers = explained.images, explained.targets, gradcam.layers
    tables = clock.time("randomisation", f"gradcam at {len(layers)} layers", cascade, model, gradcam, x, t, seed)
    randomised = {("gradcam", layer): tables[layer] for layer in layers}
    randomised[("lime", None)] = clock.time(
        "randomisation",
        f"lime ({len(lime_subset.images)} image(s))",
        cascade,
        model,
        functools.partial(_as_mapping, lime),
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


def _random_logits(model, explained, gradcam, lime, lime_subset, seed, cam_model, batch_size, clock):
    """Random-logit tables, keyed by (method, layer)."""
    x, t = explained.images, explained.targets
    logits = {}
    for layer in tqdm(gradcam.layers, desc="random logit", mininterval=2):
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


def _as_mapping(explain_fn, model, images, targets) -> dict[str, np.ndarray]:
    return {"lime": explain_fn(model, images, targets)}


def _one_layer(gradcam: GradCAMLayers, layer: str, model, images, targets) -> np.ndarray:
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


def read_maps(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The explain rule's ``maps.npz``, every array read, or one line naming the damaged file.

    Raises:
        LayerscopeError: the file is missing, cut short or otherwise unreadable.
    """
    try:
        with np.load(path) as maps:
            return {name: maps[name] for name in maps.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise LayerscopeError(
            f"{path}: unreadable explanation maps ({type(err).__name__}: {err}); "
            f"rerun the job that wrote it: snakemake --forcerun {path}"
        ) from None


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
) -> QualityResult:
    """Score every explanation method of one run and write every output.

    Args:
        model: the run's trained Keras model.
        test_images: the test split (N, H, W[, C]) in 0..255 pixels, as the explain rule saw it.
        maps: the explain rule's ``maps.npz`` (``indices``, ``true``, ``predicted``,
            ``lime_labels``, ``lime_positive``, ``lime_negative``; ``cam``, ``cam_predicted``).
        cfg: the ``explain.quality`` config (images, steps, baseline, lime_images, lime_samples).
        lime_settings: the ``explain.lime`` config.
        seed: seeds every random choice.
        run_id: the run's id.
        files: where to write.
        cam_model: CAM's GAP model; None skips CAM (then ``maps`` has no CAM).
        cam_run: its run id, for the Markdown and the figure.
        batch_size: images per Grad-CAM / CAM pass (``explain.batch_size``).

    Returns:
        The :class:`QualityResult` written.

    Raises:
        LayerscopeError: maps that do not fit the test split or the model, see :func:`read_explained`.
    """
    explained = read_explained(maps, test_images, cfg["images"])
    result = evaluate_quality(model, explained, cfg, lime_settings, seed, run_id, cam_model, batch_size)
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
        f"{run_id}: explanation quality on {result.images} test images ({cfg['steps']} steps, "
        f"baseline {cfg['baseline']}; LIME checks on {result.lime_images} image(s)"
        + (f"; CAM on the GAP model {cam_run}" if cam_run else "")
        + ")"
    )
    plot_quality(result, title, files.figure)
    return result
