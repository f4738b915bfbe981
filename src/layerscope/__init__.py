"""layerscope: a reproducible pipeline for explanation-guided transfer learning."""

__version__ = "0.3.0"
