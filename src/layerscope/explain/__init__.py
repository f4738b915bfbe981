"""Explanation methods, one module each, sharing :class:`Explainer` (Xplique's shape).

Grad-CAM per VGG block (Selvaraju et al. 2017, arXiv:1610.02391), CAM for GAP-head
models (Zhou et al. 2016, arXiv:1512.04150), LIME superpixel evidence (Ribeiro, Singh and
Guestrin 2016, arXiv:1602.04938), and gradient-ascent feature maps (Erhan et al. 2009;
Olah et al. 2017, distill.pub/2017/feature-visualization) with their onset and
invariance measures (study B, Kwak 2021).
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
