"""The explain rule: which test images to explain, and the maps of one run.

Images are picked per class from the run's test predictions, correct and wrong
ones alternating, so every class and both outcomes appear. Maps are raw arrays
(saved as .npz); figures are drawn by :mod:`layerscope.explain.figures`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from layerscope.core.atomic import atomic_path
from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import spread_over_classes
from layerscope.explain.cam import CAM
from layerscope.explain.figures import plot_explanations
from layerscope.explain.fills import ChosenFill, resolve_fill
from layerscope.explain.gradcam import GradCAM, default_gradcam_layers
from layerscope.explain.lime_method import LIME


def select_images(predictions: pd.DataFrame, classes: list[str], per_class: int, seed: int) -> np.ndarray:
    """Test-set row indices: up to ``per_class`` per true class, correct and wrong alternating."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for name in classes:
        rows = predictions.index[predictions["true"] == name].to_numpy()
        right = rows[(predictions.loc[rows, "predicted"] == name).to_numpy()]
        wrong = rows[(predictions.loc[rows, "predicted"] != name).to_numpy()]
        right, wrong = rng.permutation(right), rng.permutation(wrong)
        interleaved = [r for pair in zip(right, wrong) for r in pair]
        rest = list(right[len(wrong) :]) + list(wrong[len(right) :])
        chosen.extend(int(r) for r in (interleaved + rest)[:per_class])
    if not chosen:
        raise LayerscopeError(f"no test predictions of the classes {list(classes)} to explain")
    return np.array(sorted(chosen), dtype=np.int64)


def explain_run(model, images: np.ndarray, settings: dict, seed: int, cam_model=None) -> dict[str, np.ndarray]:
    """Grad-CAM per block, CAM (from the GAP model when given) and LIME evidence for ``images``.

    LIME hides superpixels with ``settings["lime"]["hide"]``, a fill name (not ``auto``:
    :func:`write_explanations` resolves it).

    Keys: ``predicted``, ``gradcam/<layer>`` (N, H, W upsampled), ``cam`` (N, H, W),
    ``lime_labels`` (N, L), ``lime_positive`` / ``lime_negative`` (N, L, H, W), ``lime_segments``,
    ``lime_hide`` (the fill).
    """
    x = images.astype(np.float32)
    batch = settings["batch_size"]
    probabilities = model.predict(x, batch_size=batch, verbose=0)
    predicted = probabilities.argmax(axis=1)
    maps: dict[str, np.ndarray] = {"predicted": predicted, "probabilities": probabilities}
    gradcam = GradCAM(model, default_gradcam_layers(model), batch_size=batch, upsample=True)
    maps.update({f"gradcam/{layer}": m for layer, m in gradcam.explain_layers(x, predicted).items()})
    if cam_model is not None:
        cam_predicted = cam_model.predict(x, batch_size=batch, verbose=0).argmax(axis=1)
        maps["cam"] = CAM(cam_model, batch_size=batch, upsample=True).explain(x, cam_predicted)
        maps["cam_predicted"] = cam_predicted
    lime = settings["lime"]
    evidence = LIME(
        model,
        batch_size=lime["batch_size"],
        num_samples=lime["num_samples"],
        top_labels=lime["top_labels"],
        seed=seed,
        n_segments=lime["n_segments"],
        compactness=lime["compactness"],
        hide=lime["hide"],
    ).evidence(x)
    maps.update({f"lime_{key}": value for key, value in evidence.items() if key != "weights"})
    maps["lime_hide"] = np.array(lime["hide"])
    return maps


def write_explanations(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    predictions: pd.DataFrame,
    classes: list[str],
    settings: dict,
    seed: int,
    run_id: str,
    maps_path: str | os.PathLike,
    figure_path: str | os.PathLike,
    cam_model=None,
    measured_fill: str | None = None,
) -> tuple[np.ndarray, ChosenFill]:
    """Explain the chosen test images of one run: maps to ``maps_path`` (.npz), the figure to ``figure_path``.

    Args:
        model: the run's trained Keras model.
        images: the test images (N, H, W[, C]) in 0..255 pixels, in ``predictions`` row order.
        labels: their integer class labels (N,).
        predictions: the run's test predictions (``true``, ``predicted``, ``path`` columns).
        classes: class names, indexed by label.
        settings: the ``explain`` config (``images_per_class``, ``batch_size``, ``lime``); its
            ``lime.hide`` is a fill name or ``auto`` (then ``measured_fill``).
        seed: fixes the image choice and LIME's sampling.
        run_id: the run's id, for the figure title.
        maps_path: where to write the maps (.npz).
        figure_path: where to write the figure.
        cam_model: the matching GAP-head model for CAM; None skips CAM.
        measured_fill: the perturbation_fills rule's choice for this run, or None.

    Returns:
        The chosen test-set row indices, sorted, and the fill LIME used.

    Raises:
        LayerscopeError: no prediction of the classes to explain, an explainer refuses the
            model, or ``lime.hide`` is ``auto`` without a measured fill.
    """
    lime_fill = resolve_fill(settings["lime"]["hide"], measured_fill, "explain.lime.hide")
    settings = {**settings, "lime": {**settings["lime"], "hide": lime_fill.fill}}
    chosen = select_images(predictions, classes, settings["images_per_class"], seed)
    maps = explain_run(model, images[chosen], settings, seed, cam_model=cam_model)
    maps.update(indices=chosen, true=labels[chosen], paths=predictions.loc[chosen, "path"].to_numpy(str))
    with atomic_path(maps_path) as tmp:
        np.savez_compressed(tmp, **maps)
    plot_explanations(images[chosen], maps, labels[chosen], classes, run_id, figure_path, lime_fill.note)
    return chosen, lime_fill


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
