"""LIME on SLIC superpixels, through the ``lime`` package.

Implements LIME (Ribeiro, Singh and Guestrin 2016, "'Why Should I Trust You?':
Explaining the Predictions of Any Classifier", arXiv:1602.04938).

Superpixels come from SLIC with a target count (``n_segments``), so their number
follows the image size: lime's default quickshift (kernel_size 4, max_dist 200) gives
2-3 segments at 40-64 px, and LIME over 2 segments paints solid blocks. Fewer than
:data:`MIN_SEGMENTS` superpixels is refused with the image size named.

What a switched-off superpixel becomes is a fill from :mod:`layerscope.explain.fills`
(``hide``), handed to lime as its replacement image: black (lime's ``hide_color=0``)
reads as a defect on electroluminescence cells, so the pipeline measures the fills and
uses the one that moves predictions least (the perturbation_fills rule).

Two things make it usable here. The classifier is one compiled forward pass per
call, fed large batches: lime's default of 10 images per call with ``model.predict``
spends most of its time in per-call overhead (about 3x slower on the 2-core CPU;
the batch size itself adds about 1.2x there, more on a GPU). And the seed fixes the
perturbation sampling (SLIC itself is deterministic), so the same seed gives the same
explanation.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from lime.lime_image import LimeImageExplainer
from skimage.segmentation import slic
from tqdm.auto import tqdm

from layerscope.core.errors import LayerscopeError
from layerscope.explain.base import Explainer, array_digest, prepare_inputs, probability_pass, resolve_targets
from layerscope.explain.fills import canonical_fill, fill_images

MIN_SEGMENTS = 10
"""Fewer superpixels than this leave LIME nothing to localise."""


class LIME(Explainer):
    """Signed superpixel evidence per class, painted back onto the pixels (LIME, arXiv:1602.04938).

    Args:
        model: a Keras classifier whose output is class probabilities.
        batch_size: perturbed images per forward pass.
        num_samples: perturbed images per explained image.
        top_labels: how many classes, most probable first, :meth:`evidence` explains.
        seed: fixes lime's perturbation sampling, so one seed gives one explanation.
        hide: what a switched-off superpixel becomes, one of
            :data:`layerscope.explain.fills.FILLS` ("black": lime's own image tutorial's
            ``hide_color=0``; "segment_mean": its mean colour, lime's ``hide_color=None``).
        n_segments: SLIC's target superpixel count; see :func:`superpixels`.
        compactness: SLIC's balance of colour against position (higher: more grid-like).
        progress: show a progress bar over the images.
        keep_outputs: keep the classifier's outputs per perturbed batch, so explaining the
            same images again (another class) costs no forward pass; only for a model
            whose weights do not change while this explainer lives.

    Raises:
        LayerscopeError: ``n_segments`` < :data:`MIN_SEGMENTS`, ``compactness`` <= 0,
            ``top_labels`` outside 1..classes, ``num_samples`` < 2, or an unknown ``hide``.
    """

    def __init__(
        self,
        model: keras.Model,
        batch_size: int = 128,
        num_samples: int = 1000,
        top_labels: int = 2,
        seed: int = 0,
        hide: str = "black",
        n_segments: int = 50,
        compactness: float = 10.0,
        progress: bool = True,
        keep_outputs: bool = False,
    ):
        """Check the sampling settings and trace the batched classifier once."""
        super().__init__(model, batch_size)
        num_classes = model.outputs[0].shape[-1]
        if int(n_segments) < MIN_SEGMENTS or not float(compactness) > 0:
            raise LayerscopeError(
                f"LIME needs n_segments >= {MIN_SEGMENTS} and compactness > 0 "
                f"(explain.lime), got n_segments={n_segments}, compactness={compactness}"
            )
        if not 1 <= top_labels <= num_classes or num_samples < 2:
            raise LayerscopeError(
                f"LIME needs 1 <= top_labels <= {num_classes} and num_samples >= 2, "
                f"got top_labels={top_labels}, num_samples={num_samples}"
            )
        self.num_samples = num_samples
        self.top_labels = top_labels
        self.seed = seed
        self.hide = canonical_fill(hide, "explain.lime.hide")
        self.segmentation = {"n_segments": int(n_segments), "compactness": float(compactness)}
        self.progress = progress
        self._channels = model.inputs[0].shape[-1]
        self._forward = probability_pass(model)
        self._outputs: dict[bytes, np.ndarray] | None = {} if keep_outputs else None

    def explain(self, inputs, targets=None) -> np.ndarray:
        """Signed superpixel weight maps for ``targets``.

        Args:
            inputs: images (N, H, W[, C]) in 0..255 pixels.
            targets: class indices or one-hot rows (see :func:`resolve_targets`); None: the predicted class.

        Returns:
            float32 (N, H, W): each pixel carries its superpixel's LIME weight for the class.

        Raises:
            LayerscopeError: images that do not fit the model, targets out of range, or too few superpixels.
        """
        images = self._rgb(inputs)
        t = resolve_targets(targets, len(images), self.model.outputs[0].shape[-1])
        maps = []
        for i, image in enumerate(tqdm(images, desc="LIME", disable=not self.progress)):
            if t is None:
                explanation = self._explain_image(image, labels=(), top_labels=1)
            else:
                explanation = self._explain_image(image, labels=(int(t[i]),), top_labels=None)
            label = next(iter(explanation.local_exp))
            maps.append(_paint(explanation, label))
        return np.stack(maps)

    def evidence(self, inputs) -> dict[str, np.ndarray]:
        """Evidence for the predicted class and the runner-ups (``top_labels`` of them).

        Args:
            inputs: images (N, H, W[, C]) in 0..255 pixels.

        Returns:
            A dict: "labels" (N, L) classes, most probable first; "weights" (N, L, H, W)
            signed superpixel weights per pixel; "positive" and "negative" (N, L, H, W)
            the parts above and below zero (negative stays signed); "segments" (N, H, W).

        Raises:
            LayerscopeError: images that do not fit the model, or too few superpixels.
        """
        images = self._rgb(inputs)
        labels, weights, segments = [], [], []
        for image in tqdm(images, desc="LIME", disable=not self.progress):
            explanation = self._explain_image(image, labels=(), top_labels=self.top_labels)
            labels.append(explanation.top_labels)
            weights.append([_paint(explanation, label) for label in explanation.top_labels])
            segments.append(explanation.segments)
        weights = np.asarray(weights, dtype=np.float32)
        return {
            "labels": np.asarray(labels, dtype=np.int32),
            "weights": weights,
            "positive": np.maximum(weights, 0),
            "negative": np.minimum(weights, 0),
            "segments": np.asarray(segments, dtype=np.int32),
        }

    def _rgb(self, inputs) -> np.ndarray:
        return rgb_uint8(prepare_inputs(self.model, inputs))

    def _explain_image(self, image: np.ndarray, labels: tuple, top_labels: int | None):
        # A fresh explainer per image resets the sampling state: same seed, same samples.
        explainer = LimeImageExplainer(random_state=self.seed)
        segments = superpixels(image, **self.segmentation)
        fill = fill_images(image[None], segments[None], self.hide)[0]
        return explainer.explain_instance(
            image,
            self._classify,
            labels=labels,
            hide_color=np.clip(np.rint(fill), 0, 255).astype(np.uint8),  # lime copies it in whole
            top_labels=top_labels,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
            segmentation_fn=functools.partial(_given, segments),
        )

    def _classify(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        if self._channels == 1:
            x = x.mean(axis=-1, keepdims=True)
        if self._outputs is None:
            return self._forward(tf.constant(x)).numpy()
        key = array_digest(x)
        if key not in self._outputs:
            self._outputs[key] = self._forward(tf.constant(x)).numpy()
        return self._outputs[key]


def rgb_uint8(x: np.ndarray) -> np.ndarray:
    """Model inputs (N, H, W, C) as uint8 RGB: SLIC converts to Lab, which needs 3 channels in 0..255."""
    x = np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _given(segments: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Lime's segmentation_fn for superpixels computed beforehand (the fill needs them first)."""
    return segments


def superpixels(image: np.ndarray, n_segments: int = 50, compactness: float = 10.0) -> np.ndarray:
    """SLIC labels 0..S-1 of an RGB image, S >= MIN_SEGMENTS or a LayerscopeError.

    SLIC is deterministic (no seed); it aims at ``n_segments`` and usually lands
    within a factor of two, fewer when connectivity merges tiny pieces.

    Args:
        image: one uint8 RGB image (H, W, 3).
        n_segments: SLIC's target superpixel count.
        compactness: SLIC's balance of colour against position.

    Returns:
        int (H, W) superpixel labels starting at 0.

    Raises:
        LayerscopeError: fewer than :data:`MIN_SEGMENTS` superpixels.
    """
    segments = slic(image, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    count = len(np.unique(segments))
    if count < MIN_SEGMENTS:
        raise LayerscopeError(
            f"SLIC found only {count} superpixels in a {image.shape[0]}x{image.shape[1]} px image "
            f"(explain.lime.n_segments={n_segments}); LIME needs at least {MIN_SEGMENTS}: raise "
            "n_segments or the image size (data.image_size)"
        )
    return segments


def _paint(explanation, label: int) -> np.ndarray:
    """Each pixel gets its superpixel's weight for ``label``."""
    segments = explanation.segments
    lookup = np.zeros(segments.max() + 1, dtype=np.float32)
    for segment, weight in explanation.local_exp[label]:
        lookup[segment] = weight
    return lookup[segments]
