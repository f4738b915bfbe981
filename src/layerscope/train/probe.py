"""Cheap baselines every trained run must beat: a linear probe on frozen VGG-16 features.

The probe is scikit-learn's logistic regression on the spatial mean and maximum of each
channel of the pretrained conv base's last block (``block5_pool``, the features the
fixed-feature-extraction run sees): 1,024 numbers per image. Its regularisation
strength is chosen on the validation split only. If a trained VGG-16 run loses to it,
the training (not the network) is what failed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from layerscope.core.atomic import atomic_path, write_text
from layerscope.core.timings import timings
from layerscope.data.prepare import load_classes, load_split
from layerscope.data.splits import SPLITS
from layerscope.train.evaluation import (
    classification_metrics,
    majority_baseline,
    predictions_table,
)
from layerscope.train.features import load_frozen_features

log = logging.getLogger(__name__)

PROBE_LAYER = "block5_pool"
PROBE_C_GRID = (0.001, 0.01, 0.1, 1.0)


def pooled_features(feature_maps: np.ndarray) -> np.ndarray:
    """Per-channel spatial mean and max of (N, H, W, C) maps -> (N, 2C)."""
    maps = np.asarray(feature_maps, dtype=np.float32)
    return np.concatenate([maps.mean(axis=(1, 2)), maps.max(axis=(1, 2))], axis=1)


def fit_probe(
    features: dict[str, np.ndarray], labels: dict[str, np.ndarray], class_weight: str, seed: int
) -> tuple[dict[str, np.ndarray], dict]:
    """Fit the probe on train, pick C by validation accuracy, return class probabilities per split.

    Args:
        features: pooled features per split (``train``, ``val``, ...), (N, 2C) each.
        labels: integer class labels per split, (N,) each.
        class_weight: "balanced" weights classes by inverse frequency; anything else does not.
        seed: the logistic regression's random state.

    Returns:
        ``(probabilities, details)``: (N, classes) probabilities by split, and the C grid's
        validation accuracies with the chosen C.
    """
    weight = "balanced" if class_weight == "balanced" else None
    num_classes = int(max(y.max() for y in labels.values())) + 1
    scores, fitted = {}, {}
    for c in PROBE_C_GRID:
        started = time.perf_counter()
        probe = make_pipeline(
            StandardScaler(), LogisticRegression(C=c, class_weight=weight, max_iter=3000, random_state=seed)
        )
        probe.fit(features["train"], labels["train"])
        scores[c] = float((probe.predict(features["val"]) == labels["val"]).mean())
        fitted[c] = probe
        log.info("probe C=%g: validation accuracy %.3f (%.1f s)", c, scores[c], time.perf_counter() - started)
    chosen = max(PROBE_C_GRID, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    probe = fitted[chosen]
    probabilities = {}
    for split, x in features.items():
        known = probe.predict_proba(x)
        full = np.zeros((len(x), num_classes))
        full[:, probe.classes_] = known  # a class absent from train keeps probability 0
        probabilities[split] = full
    return probabilities, {"C": chosen, "val_accuracy_by_C": {str(c): s for c, s in scores.items()}}


def run_probe(
    data_dir: Path,
    features_file: Path,
    out_dir: Path,
    weights: str,
    class_weight: str,
    seed: int,
    policy: str | bool = False,
) -> dict:
    """Fit the probe on the shared ``block5`` feature cache; write ``metrics.json`` and ``predictions.csv``.

    The metrics have the shape of a training run's (train/val/test figures, test
    intervals, majority baseline), so the tables read both the same way.

    Args:
        data_dir: the data stage's output folder (labels, classes, manifest).
        features_file: the shared ``block5.npy`` frozen-feature cache (meta beside it).
        out_dir: the probe's output folder (created if missing).
        weights: the VGG-16 weights source the cache must have been computed with.
        class_weight: the training config's class weighting ("balanced" or "none").
        seed: the logistic regression's random state.
        policy: the precision policy the cache must have been computed with (False: float32).

    Returns:
        The probe's metrics, as written to ``metrics.json``.

    Raises:
        LayerscopeError: the feature cache is unreadable or was computed with other settings.
    """
    classes = load_classes(data_dir)
    labels = {name: load_split(data_dir, name)[1] for name in SPLITS}
    started = time.perf_counter()
    features = {name: pooled_features(x) for name, x in load_frozen_features(features_file, 5, weights, policy).items()}
    fit_started = time.perf_counter()
    probabilities, details = fit_probe(features, labels, class_weight, seed)
    metrics = {
        "run_id": "linear-probe",
        "layer": PROBE_LAYER,
        "features": "per-channel spatial mean and max",
        "weights": weights,
        "class_weight": class_weight,
        **details,
        **timings(fit_seconds=time.perf_counter() - fit_started),
        **{name: classification_metrics(labels[name], p, classes) for name, p in probabilities.items()},
        "majority_baseline": majority_baseline(labels["train"], labels["test"], len(classes), classes),
    }
    manifest = pd.read_csv(Path(data_dir) / "manifest.csv")
    test_paths = manifest.loc[manifest["split"] == "test", "path"].tolist()
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions_table(test_paths, labels["test"], probabilities["test"], classes).to_csv(tmp, index=False)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    log.info(
        "linear probe: C=%g, test accuracy %.3f, weighted F1 %.3f (%.1f s)",
        details["C"],
        metrics["test"]["accuracy"],
        metrics["test"]["f1_weighted"],
        time.perf_counter() - started,
    )
    return metrics


BLOCK_PROBE_COLUMNS = [
    "block",
    "layer",
    "features",
    "C",
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_binary_accuracy",
]


def block_pooled_features(images: dict[str, np.ndarray], weights: str, batch_size: int = 64) -> dict[int, dict]:
    """Pooled features (:func:`pooled_features`) of every block's ``block{k}_pool`` in one pass per split.

    Args:
        images: uint8 images per split, (N, H, W, 3) each.
        weights: the pretrained VGG-16 conv base to read.
        batch_size: images per forward pass.

    Returns:
        Block k (1..5) -> split -> (N, 2 C_k) features.
    """
    import keras

    from layerscope.train.features import frozen_extractor

    base = frozen_extractor(next(iter(images.values())).shape[1:], 5, weights)
    outputs = [base.get_layer(f"block{k}_pool").output for k in range(1, 6)]
    probe_net = keras.Model(base.inputs, outputs)
    pooled: dict[int, dict] = {k: {} for k in range(1, 6)}
    for split, x in images.items():
        parts: dict[int, list[np.ndarray]] = {k: [] for k in range(1, 6)}
        for start in range(0, len(x), batch_size):
            maps = probe_net.predict_on_batch(x[start : start + batch_size].astype(np.float32))
            for k, block_maps in enumerate(maps, start=1):
                parts[k].append(pooled_features(np.asarray(block_maps)))
        for k in parts:
            pooled[k][split] = np.concatenate(parts[k])
    return pooled


def block_probe_table(data_dir: Path, weights: str, class_weight: str, seed: int) -> pd.DataFrame:
    """The linear probe on each VGG-16 block's pooled features: how good block k's features are untrained.

    A freeze-depth signal that needs no training of the network, so it covers depths 1
    and 2 even where the sweep cannot: freezing k blocks keeps block k's features, and
    the better a probe does on them the less the frozen part costs.

    Args:
        data_dir: the data stage's output folder.
        weights: the pretrained VGG-16 conv base.
        class_weight: the training config's class weighting ("balanced" or "none").
        seed: the logistic regressions' random state.

    Returns:
        One row per block 1..5 (:data:`BLOCK_PROBE_COLUMNS`); C chosen on validation.
    """
    classes = load_classes(data_dir)
    splits = {name: load_split(data_dir, name) for name in SPLITS}
    labels = {name: y for name, (_, y) in splits.items()}
    pooled = block_pooled_features({name: x for name, (x, _) in splits.items()}, weights)
    rows = []
    for k, features in pooled.items():
        probabilities, details = fit_probe(features, labels, class_weight, seed)
        metrics = {name: classification_metrics(labels[name], p, classes) for name, p in probabilities.items()}
        rows.append(
            {
                "block": k,
                "layer": f"block{k}_pool",
                "features": features["train"].shape[1],
                "C": details["C"],
                **{f"{name}_accuracy": metrics[name]["accuracy"] for name in SPLITS},
                "test_balanced_accuracy": metrics["test"]["balanced_accuracy"],
                "test_binary_accuracy": (metrics["test"]["binary"] or {}).get("accuracy", float("nan")),
            }
        )
        log.info("block-%d probe: C=%g, validation accuracy %.3f", k, details["C"], metrics["val"]["accuracy"])
    return pd.DataFrame(rows, columns=BLOCK_PROBE_COLUMNS)
