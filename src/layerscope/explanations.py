"""The explanation stage: which test images to explain, and the maps of one run.

Images are picked per class from the run's test predictions, correct and wrong
ones alternating, so every class and both outcomes appear. Maps are raw arrays
(saved as .npz); figures are drawn by :mod:`layerscope.explain_figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.errors import LayerscopeError
from layerscope.explain import CAM, LIME, GradCAM, GradientAscent, default_gradcam_layers, representative_channels
from layerscope.explain import feature_onset, pearson, stage_layers


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
        rest = list(right[len(wrong):]) + list(wrong[len(right):])
        chosen.extend(int(r) for r in (interleaved + rest)[:per_class])
    if not chosen:
        raise LayerscopeError(f"no test predictions of the classes {list(classes)} to explain")
    return np.array(sorted(chosen), dtype=np.int64)


def explain_run(model, images: np.ndarray, settings: dict, seed: int, cam_model=None) -> dict[str, np.ndarray]:
    """Grad-CAM per block, CAM (from the GAP model when given) and LIME evidence for ``images``.

    Keys: ``predicted``, ``gradcam/<layer>`` (N, H, W upsampled), ``cam`` (N, H, W),
    ``lime_labels`` (N, L), ``lime_positive`` / ``lime_negative`` (N, L, H, W), ``lime_segments``.
    """
    x = images.astype(np.float32)
    batch = settings["batch_size"]
    probabilities = model.predict(x, batch_size=batch, verbose=0)
    predicted = probabilities.argmax(axis=1)
    maps: dict[str, np.ndarray] = {"predicted": predicted, "probabilities": probabilities}
    for layer in default_gradcam_layers(model):
        maps[f"gradcam/{layer}"] = GradCAM(model, layer, batch_size=batch, upsample=True).explain(x, predicted)
    if cam_model is not None:
        cam_predicted = cam_model.predict(x, batch_size=batch, verbose=0).argmax(axis=1)
        maps["cam"] = CAM(cam_model, batch_size=batch, upsample=True).explain(x, cam_predicted)
        maps["cam_predicted"] = cam_predicted
    lime = settings["lime"]
    evidence = LIME(model, batch_size=lime["batch_size"], num_samples=lime["num_samples"],
                    top_labels=lime["top_labels"], seed=seed).evidence(x)
    maps.update({f"lime_{key}": value for key, value in evidence.items() if key != "weights"})
    return maps


def feature_map_layers(model, configured: dict | None) -> dict[str, str]:
    """The stages to visualise: config ``feature_maps.layers`` or the first, a middle and the last conv layer."""
    layers = configured or stage_layers(model)
    names = {layer.name for layer in model.layers}
    unknown = [name for name in layers.values() if name not in names]
    if unknown:
        raise LayerscopeError(f"explain.feature_maps.layers: no layer {unknown} in model '{model.name}'")
    return dict(layers)


def ascent_deltas(model, layer: str, images: np.ndarray, channels, steps: int, alpha: float) -> np.ndarray:
    """What gradient ascent adds to each image for each channel: (C, N, H, W, 3).

    The difference from the normalised start image is shown rather than the image
    itself: with the study's alpha and step count the change is small next to the
    image, and it is the change that carries the unit's feature.
    """
    ascent = GradientAscent(model, layer, steps=steps, alpha=alpha)
    start = ascent.unit.preprocess(images)
    return np.stack([ascent.explain(images, int(c)) - start for c in channels])


def choose_channels(model, layer: str, images: np.ndarray, configured: list[int] | None, count: int) -> np.ndarray:
    """Config ``feature_maps.channels`` or the ``count`` most responsive channels on ``images``."""
    if configured:
        return np.asarray(configured, dtype=np.int64)
    return representative_channels(model, layer, images, k=count)


def onset_study(model, checkpoints: list, image: np.ndarray, cfg: dict, threshold: float):
    """Correlation of each stage's feature map at every checkpoint with the trained model's map.

    The channel of each stage is the most responsive one of the trained model; the map
    is the gradient-ascent change on ``image``. Returns (curves, onsets) tables; the
    trained model's own weights are restored afterwards.
    """
    if not checkpoints:
        raise LayerscopeError("no training checkpoints to study (training.checkpoint_steps is empty "
                              "or training ended before the first listed step)")
    stages = feature_map_layers(model, cfg["layers"])
    channels = {layer: choose_channels(model, layer, image, cfg["channels"], 1)[:1] for layer in stages.values()}
    final = model.get_weights()

    def maps() -> dict[str, np.ndarray]:
        return {layer: ascent_deltas(model, layer, image, channels[layer], cfg["steps"], cfg["alpha"])[0, 0]
                for layer in stages.values()}

    reference = maps()
    steps, by_layer = [], {layer: [] for layer in stages.values()}
    for path in checkpoints:
        model.load_weights(path)
        steps.append(int(path.name.split("_")[1].split(".")[0]))
        for layer, value in maps().items():
            by_layer[layer].append(value)
    model.set_weights(final)
    for layer in by_layer:
        by_layer[layer].append(reference[layer])
    onsets = feature_onset(by_layer, threshold=threshold)  # index len(steps) = only the trained model
    curves = pd.DataFrame(
        [{"stage": stage, "layer": layer, "step": step, "correlation": pearson(m, reference[layer])}
         for stage, layer in stages.items() for step, m in zip(steps, by_layer[layer])]
    )
    rows = []
    for depth, (stage, layer) in enumerate(stages.items(), start=1):
        index = onsets[layer].index
        settled = index is not None and index < len(steps)
        rows.append({"stage": stage, "layer": layer, "depth": depth,
                     "onset_step": steps[index] if settled else None,
                     "correlation_at_onset": float(onsets[layer].correlation[index]) if settled else None})
    return curves, pd.DataFrame(rows)
