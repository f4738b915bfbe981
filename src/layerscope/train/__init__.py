"""The training stage: run grid, models, pretrained weights, fitting and evaluation.

Also the shared frozen-feature caches and the linear-probe baseline.
"""
