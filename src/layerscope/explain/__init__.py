"""Explanation methods, one module each, sharing :class:`Explainer` (Xplique's shape).

Grad-CAM per VGG block, CAM for GAP-head models, LIME superpixel evidence, and
gradient-ascent feature maps with their onset and invariance measures (study B).
"""

from layerscope.explain.base import (
    Explainer,
    conv_layer_names,
    last_conv_layer,
    normalise_maps,
    resize_maps,
)
from layerscope.explain.cam import CAM
from layerscope.explain.feature_maps import (
    GradientAscent,
    PreActivation,
    pairwise_correlations,
    representative_channels,
    stage_layers,
)
from layerscope.explain.gradcam import GradCAM, default_gradcam_layers
from layerscope.explain.lime_method import LIME
from layerscope.explain.onset import Onset, feature_onset, mean_pairwise_correlation, pearson

__all__ = [
    "CAM",
    "LIME",
    "Explainer",
    "GradCAM",
    "GradientAscent",
    "Onset",
    "PreActivation",
    "conv_layer_names",
    "default_gradcam_layers",
    "feature_onset",
    "last_conv_layer",
    "mean_pairwise_correlation",
    "normalise_maps",
    "pairwise_correlations",
    "pearson",
    "representative_channels",
    "resize_maps",
    "stage_layers",
]
