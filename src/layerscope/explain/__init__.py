"""Explanation methods, one module each, sharing :class:`Explainer` (Xplique's shape).

Grad-CAM per VGG block (Selvaraju et al. 2017, arXiv:1610.02391), CAM for GAP-head
models (Zhou et al. 2016, arXiv:1512.04150), LIME superpixel evidence (Ribeiro, Singh and
Guestrin 2016, arXiv:1602.04938), and gradient-ascent feature maps (Erhan et al. 2009;
Olah et al. 2017, distill.pub/2017/feature-visualization) with their onset and
invariance measures (study B, Kwak 2021).
"""
