"""Explanation-quality metrics: is a map faithful to the model, and does it depend on it?

Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE), placed between
a random map and, where one is known, an oracle map. Dependence on the model: the
cascading parameter-randomisation check (Adebayo et al. 2018) and the random-logit
check (Sixt et al. 2020). The metrics take any ``explain_fn(model, images, targets) ->
maps (N, h, w)``; :func:`gradcam_fn`, :func:`cam_fn` and :func:`lime_fn` build them for
the study's methods. :func:`summarise` turns results into tidy rows for tables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import stats
from tqdm.auto import tqdm

from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_sd_n
from layerscope.explain.base import array_digest, prepare_inputs, probability_pass, resize_maps, resolve_targets
from layerscope.explain.cam import CAM
from layerscope.explain.fills import NEEDS_SEGMENTS, blur, canonical_fill, fill_images
from layerscope.explain.gradcam import GradCAM
from layerscope.explain.lime_method import LIME

ExplainFn = Callable[[keras.Model, np.ndarray, np.ndarray], np.ndarray]
BN_STATISTICS = ("moving_mean", "moving_variance")
"""Batch-norm statistics are kept when randomising: a drawn variance could be negative."""


@dataclasses.dataclass(frozen=True)
class DeletionInsertion:
    """Probability of the explained class as the map's top pixels are deleted / inserted.

    ``fractions`` (S,) the share of pixels changed at each step, 0 to 1; ``targets`` (N,)
    the explained classes; ``deletion`` and ``insertion`` (N, S) the curves.
    """

    fractions: np.ndarray
    targets: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        """Area under each deletion curve (N,): low when the top pixels carry the class."""
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        """Area under each insertion curve (N,): high when the top pixels suffice."""
        return np.trapezoid(self.insertion, self.fractions, axis=1)


def deletion_insertion(
    model: keras.Model,
    images,
    maps,
    targets=None,
    steps: int = 20,
    baseline: str = "mean",
    batch_size: int = 64,
    forward: Callable[[tf.Tensor], tf.Tensor] | None = None,
    segments=None,
) -> DeletionInsertion:
    """Deletion and insertion curves of Petsiuk et al. (2018, RISE, arXiv:1806.07421).

    Why: a faithful map ranks first the pixels the model relies on, so deleting them
    drops the class probability fast and inserting them into a blurred image raises
    it fast. Maps are upsampled (bilinear) to the image size and pixels ranked by
    value, highest first, ties in row-major order. Perturbed images of several inputs
    go through the model together, about ``batch_size`` per forward pass.

    Args:
        model: A model that takes raw images and outputs class probabilities.
        images: Raw images (N, H, W[, C]).
        maps: Explanation maps (N, h, w), any resolution.
        targets: The explained classes (indices or one-hot); None: the prediction.
        steps: Number of equal fractions between 0 and 1 (``steps + 1`` points).
        baseline: What deleted pixels become, a fill of :mod:`layerscope.explain.fills`:
            "mean" (the image's mean colour), "black" (or "zero"), "blur" (the blurred
            image that insertion starts from), "segment_mean" or "inpaint" (per superpixel).
        batch_size: Images per forward pass.
        forward: ``model``'s traced probability pass (:func:`probability_pass`), for
            callers that score several maps of one model; None: traced here.
        segments: (N, H, W) superpixels, for the fills made per superpixel.

    Returns:
        A :class:`DeletionInsertion` with per-image curves and areas under them.
    """
    x = prepare_inputs(model, images)
    n, height, width, _ = x.shape
    maps = _check_maps(maps, n, "maps")
    for name, value in {"steps": steps, "batch_size": batch_size}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise LayerscopeError(f"{name} must be an integer >= 1, got {value!r}")
    baseline = canonical_fill(baseline, "baseline")
    if baseline in NEEDS_SEGMENTS and segments is None:
        raise LayerscopeError(f"the {baseline} baseline needs the images' superpixels (segments), none given")
    t = resolve_targets(targets, n, model.outputs[0].shape[-1])
    if maps.shape[1:] != (height, width):
        maps = resize_maps(maps, (height, width))
    pixels = height * width
    order = np.argsort(-maps.reshape(n, pixels), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(pixels), order.shape), axis=1)
    counts = np.rint(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    top = (rank[:, None, :] < counts[None, :, None]).reshape(n, steps + 1, height, width, 1)
    blurred = blur(x)
    fill = fill_images(x, segments, baseline)
    forward = probability_pass(model) if forward is None else forward
    group = max(1, batch_size // (2 * (steps + 1)))
    probabilities = []
    for s in range(0, n, group):
        m, clean = top[s : s + group], x[s : s + group, None]
        deleted = np.where(m, fill[s : s + group, None], clean)
        inserted = np.where(m, clean, blurred[s : s + group, None])
        batch = np.concatenate([deleted, inserted], axis=1).reshape(-1, *x.shape[1:])
        out = np.concatenate(
            [forward(tf.constant(batch[i : i + batch_size])).numpy() for i in range(0, len(batch), batch_size)]
        )
        probabilities.append(out.reshape(len(m), 2, steps + 1, -1))
    probabilities = np.concatenate(probabilities)
    t = probabilities[:, 0, 0].argmax(axis=1) if t is None else t  # step 0: the clean image
    curves = np.take_along_axis(probabilities, t[:, None, None, None], axis=3)[..., 0]
    return DeletionInsertion(counts / pixels, t.astype(np.int32), curves[:, 0], curves[:, 1])


def random_maps(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Uniform random maps: the lower bracket that a method's curves must beat."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def region_maps(shape: tuple[int, int, int], rows: slice, cols: slice) -> np.ndarray:
    """Maps that are 1 on ``[rows, cols]`` and 0 elsewhere.

    The oracle (the upper bracket) of a model known to look only there, or a
    deliberately misplaced map.
    """
    maps = np.zeros(shape, dtype=np.float32)
    maps[:, rows, cols] = 1.0
    return maps


def parameter_randomisation(
    model: keras.Model, explain_fn: ExplainFn, images, targets=None, seed: int = 0
) -> pd.DataFrame:
    """Cascading model-parameter randomisation (Adebayo et al. 2018, Sanity Checks for Saliency Maps).

    Why: a map that explains the model must change when the model's learnt weights are
    destroyed; one that stays the same shows the input, not the model. On a clone (the
    caller's model is left alone) layers with weights are randomised one at a time from
    the output down and the maps of the same classes recomputed after each step. Each
    weight tensor is redrawn from a normal with its own sd, so scales stay and structure
    goes: kernels around 0 (HED's VGG-16 kernels average -0.04 to -0.35 sd; kept over
    hundreds of inputs, that mean silences every ReLU and leaves only flat maps),
    vectors (biases, batch-norm scales) around their own mean; batch-norm statistics
    are kept.

    Args:
        model: The trained model.
        explain_fn: ``explain_fn(model, images, targets) -> maps (N, h, w)``.
        images: Raw images (N, H, W[, C]).
        targets: The explained classes; None: the trained model's predictions.
        seed: Seed of the redrawn weights.

    Returns:
        One row per depth: ``layer`` (deepest randomised so far), ``depth`` (1: the top
        layer only), ``spearman`` / ``spearman_abs`` (mean over images of the rank
        correlation of signed / absolute maps with the original ones), their ``_sd``
        over images, and ``n`` images with a defined (signed) correlation, see :func:`spearman`.
    """
    return randomisation_tables(model, functools.partial(_as_mapping, explain_fn), images, targets, seed)[_MAPS]


def randomisation_tables(
    model: keras.Model,
    explain_fn: Callable[[keras.Model, np.ndarray, np.ndarray], Mapping[str, np.ndarray]],
    images,
    targets=None,
    seed: int = 0,
    read_at: Collection[str] | None = None,
    desc: str = "randomisation",
) -> dict[str, pd.DataFrame]:
    """:func:`parameter_randomisation` of several maps at once, read where asked.

    For an ``explain_fn`` that returns several maps from one call (``{key: maps}``), e.g.
    Grad-CAM at every block from one gradient pass (:func:`gradcam_layers_fn`): one
    cascade, each key's table as :func:`parameter_randomisation` gives it.

    Args:
        model: The trained model.
        explain_fn: ``explain_fn(model, images, targets) -> {key: maps (N, h, w)}``.
        images: Raw images (N, H, W[, C]).
        targets: The explained classes; None: the trained model's predictions.
        seed: Seed of the redrawn weights.
        read_at: The randomised layers after which the maps are read (None: every one);
            the cascade still randomises every layer in between.
        desc: The progress bar's label.

    Returns:
        ``{key: table}``, each with :data:`RANDOMISATION_COLUMNS`.
    """
    x = prepare_inputs(model, images)
    t = _targets(model, x, targets)
    original = {
        key: _check_maps(maps, len(x), f"explain_fn's maps ({key})") for key, maps in explain_fn(model, x, t).items()
    }
    rows: dict[str, list] = {key: [] for key in original}
    steps = sum(1 for layer in model.layers if layer.weights)
    for layer, depth, clone in tqdm(randomisation_cascade(model, seed), desc=desc, total=steps, mininterval=2):
        if read_at is not None and layer not in read_at:
            continue
        maps = explain_fn(clone, x, t)
        for key, before in original.items():
            after = _check_maps(maps[key], len(x), f"explain_fn's maps ({key})")
            rows[key].append((layer, depth, *map_agreement(before, after)))
    return {key: pd.DataFrame(value, columns=RANDOMISATION_COLUMNS) for key, value in rows.items()}


RANDOMISATION_COLUMNS = ["layer", "depth", "spearman", "spearman_sd", "spearman_abs", "spearman_abs_sd", "n"]
"""The columns of :func:`parameter_randomisation`'s table."""


def randomisation_cascade(model: keras.Model, seed: int = 0) -> Iterator[tuple[str, int, keras.Model]]:
    """The steps of :func:`parameter_randomisation`'s cascade, for reading several maps per step.

    For example Grad-CAM at several layers from one gradient pass. One clone of ``model``
    (the caller's model is left alone) is randomised in place one more weighted layer per
    step from the output down, redrawn as :func:`parameter_randomisation` describes. The
    clone is the same object at every step, so explainers built on it once see each
    step's weights.

    Args:
        model: The trained model.
        seed: Seed of the redrawn weights.

    Yields:
        ``(layer, depth, clone)`` after each step: the layer just randomised, the number
        of layers randomised so far (1: the top layer only) and the clone.
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    weighted = [layer for layer in clone.layers if layer.weights]
    for depth, layer in enumerate(reversed(weighted), start=1):
        for variable in layer.weights:
            if variable.name not in BN_STATISTICS:
                w = keras.ops.convert_to_numpy(variable)
                mean = w.mean() if w.ndim < 2 else 0.0
                variable.assign(rng.normal(mean, w.std(), w.shape).astype(w.dtype))
        yield layer.name, depth, clone


def map_agreement(original, maps) -> tuple[float, float, float, float, int]:
    """Spearman rank correlation of signed and of absolute maps, image by image.

    Args:
        original: Maps (N, h, w) of the trained model.
        maps: Maps (N, h, w) of the same images after randomisation.

    Returns:
        ``spearman``, ``spearman_sd``, ``spearman_abs``, ``spearman_abs_sd`` and ``n`` as
        in :func:`parameter_randomisation`'s rows.
    """
    signed = mean_sd_n([spearman(a, b) for a, b in zip(original, maps)])
    absolute = mean_sd_n([spearman(np.abs(a), np.abs(b)) for a, b in zip(original, maps)])
    return (*signed[:2], *absolute[:2], signed[2])


def random_logit(model: keras.Model, explain_fn: ExplainFn, images, targets=None, seed: int = 0) -> pd.DataFrame:
    """Random-logit check of Sixt et al. (2020, When Explanations Lie, ICML).

    Why: a map that explains a class must differ from the map of another class;
    methods that converge to one class-blind map (many modified backprop rules) score
    near 1. Each image's other class is drawn uniformly from the classes not explained.

    Takes its arguments in :func:`parameter_randomisation`'s order.

    Args:
        model: The model explained.
        explain_fn: ``explain_fn(model, images, targets) -> maps (N, h, w)``.
        images: Raw images (N, H, W[, C]).
        targets: The explained classes; None: the model's predictions.
        seed: Seed of the other classes.

    Returns:
        One row per image: ``image``, ``target``, ``other`` and ``spearman`` (rank
        correlation of the two maps); its mean (NaN rows left out) is the check's score.
    """
    x = prepare_inputs(model, images)
    t = _targets(model, x, targets)
    classes = model.outputs[0].shape[-1]
    other = np.random.default_rng(seed).integers(0, classes - 1, size=len(x)).astype(np.int32)
    other += other >= t  # skip the explained class: uniform over the rest
    explained = _check_maps(explain_fn(model, x, t), len(x), "explain_fn's maps")
    contrast = _check_maps(explain_fn(model, x, other), len(x), "explain_fn's maps")
    return pd.DataFrame(
        {
            "image": np.arange(len(x)),
            "target": t,
            "other": other,
            "spearman": [spearman(a, b) for a, b in zip(explained, contrast)],
        }
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps.

    A flat map (e.g. Grad-CAM's ReLU left nothing) shares no order with a varied one (0);
    two flat maps have no order to compare (NaN, left out of the means and of ``n``).
    """
    ra, rb = stats.rankdata(np.ravel(a)), stats.rankdata(np.ravel(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan") if ra.std() == rb.std() else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def gradcam_fn(layer_name: str, batch_size: int = 32, upsample: bool = True) -> ExplainFn:
    """Grad-CAM at ``layer_name`` as an ``explain_fn`` (input resolution by default)."""
    build = functools.partial(GradCAM, layer_name=layer_name, batch_size=batch_size, upsample=upsample)
    return per_model(build)


def gradcam_layers_fn(
    layers: Sequence[str], batch_size: int = 32
) -> Callable[[keras.Model, np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """Grad-CAM at several layers from one gradient pass, as an ``explain_fn`` returning ``{layer: maps}``.

    Maps are upsampled to the input.
    """
    build = functools.partial(GradCAM, layer_name=list(layers), batch_size=batch_size, upsample=True)
    return per_model(build, method="explain_layers")


def cam_fn(batch_size: int = 32, upsample: bool = True) -> ExplainFn:
    """CAM of a GAP-head model as an ``explain_fn``."""
    build = functools.partial(CAM, batch_size=batch_size, upsample=upsample)
    return per_model(build)


def lime_fn(settings: dict, seed: int, fixed: keras.Model | None = None) -> ExplainFn:
    """LIME as an ``explain_fn``, from the config's ``explain.lime`` block.

    Built as :func:`layerscope.explain.explanations.explain_run` builds it (slow: one fit
    per image). For ``fixed``, a model whose weights stay, the classifier's outputs are
    kept: the same seed draws the same perturbed images, so explaining them again for
    another class costs no forward pass.
    """
    keys = ("batch_size", "num_samples", "top_labels", "n_segments", "compactness", "hide")
    options = {key: settings[key] for key in keys}

    def build(model: keras.Model) -> LIME:
        return LIME(model, seed=seed, progress=False, keep_outputs=model is fixed, **options)

    return per_model(build)


def per_model(build: Callable[[keras.Model], object], method: str = "explain") -> Callable:
    """An ``explain_fn`` that builds (and traces) its explainer once per model object.

    The explainer's ``method(images, targets)`` gives the maps. The explainers read the
    weights at each call, so one built on a randomisation cascade's clone (one object,
    its weights redrawn in place) follows every step; without this, every step would
    trace the explainer's graph again.
    """
    built: dict[int, tuple[keras.Model, object]] = {}

    def explain_fn(model: keras.Model, images, targets):
        if id(model) not in built:
            built[id(model)] = (model, build(model))  # the model is held, so its id is not reused
        return getattr(built[id(model)][1], method)(images, targets)

    return explain_fn


def remember(explain_fn: Callable, model: keras.Model) -> Callable:
    """``explain_fn`` that keeps its results for ``model`` (whose weights must stay) per images and targets.

    The quality checks ask for the trained model's maps of the same images and classes
    more than once; other models (a randomised clone) are explained afresh every call.
    """
    kept: dict[tuple[bytes, bytes], object] = {}

    def explain(m: keras.Model, images, targets):
        if m is not model:
            return explain_fn(m, images, targets)
        key = (array_digest(images), b"" if targets is None else array_digest(targets))
        if key not in kept:
            kept[key] = explain_fn(m, images, targets)
        return kept[key]

    return explain


def summarise(result, method: str, layer: str | None = None, run: str | None = None) -> pd.DataFrame:
    """Tidy rows ``run, method, layer, metric, value, sd, n`` of one metric's result.

    ``value`` is the mean over images and ``sd`` their sample sd; stack several results
    with ``pd.concat`` for CSV or Markdown tables. ``result``: a
    :class:`DeletionInsertion`, a :func:`parameter_randomisation` or a
    :func:`random_logit` frame; ``layer`` is the explained layer, if any.
    """
    if isinstance(result, DeletionInsertion):
        rows = [
            (name, *mean_sd_n(v))
            for name, v in (("deletion_auc", result.deletion_auc), ("insertion_auc", result.insertion_auc))
        ]
    elif isinstance(result, pd.DataFrame) and {"depth", "spearman_abs"} <= set(result):
        rows = [
            (f"randomisation_{kind}@{row['layer']}", row[kind], row[f"{kind}_sd"], row["n"])
            for row in result.to_dict("records")
            for kind in ("spearman", "spearman_abs")
        ]
    elif isinstance(result, pd.DataFrame) and {"other", "spearman"} <= set(result):
        rows = [("random_logit_spearman", *mean_sd_n(result["spearman"]))]
    else:
        raise LayerscopeError(f"summarise cannot read a {type(result).__name__} as a metric result")
    table = pd.DataFrame(rows, columns=["metric", "value", "sd", "n"]).astype({"value": float, "sd": float, "n": int})
    for position, (name, value) in enumerate({"run": run, "method": method, "layer": layer}.items()):
        table.insert(position, name, value)
    return table


_MAPS = "maps"


def _as_mapping(explain_fn: ExplainFn, model, images, targets) -> dict[str, np.ndarray]:
    return {_MAPS: explain_fn(model, images, targets)}


def _check_maps(maps, n: int, name: str) -> np.ndarray:
    m = np.asarray(maps, dtype=np.float32)
    if m.ndim != 3 or len(m) != n:
        raise LayerscopeError(
            f"{name} must be {n} maps shaped (N, h, w), one per image; got an array of shape {np.shape(maps)}"
        )
    return m


def _targets(model: keras.Model, x: np.ndarray, targets) -> np.ndarray:
    """Given classes, or the model's predictions (before any randomisation)."""
    t = resolve_targets(targets, len(x), model.outputs[0].shape[-1])
    if t is not None:
        return t
    forward = probability_pass(model)
    return np.concatenate(
        [forward(tf.constant(x[s : s + 64])).numpy().argmax(axis=1) for s in range(0, len(x), 64)]
    ).astype(np.int32)
