"""Validated training configs for the tests that call ``train_run`` directly."""

from __future__ import annotations

from helpers import REPO
from snakemake.utils import validate


def config(**training) -> dict:
    cfg = {
        "experiment": "t",
        "seed": 3,
        "training": {
            "weights": "none",
            "batch_size": 8,
            "epochs": {"freeze": 2, "lenet5": 2, "scratch": 1, "gap": 1},
            "early_stopping_patience": None,
            "dense_units": 16,
            **training,
        },
    }
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg


def model_only(settings: dict) -> dict:
    """``train_run`` settings for a test that compares trained models: no onset checkpoints, one store snapshot."""
    return {**settings, "step_checkpoints": False, "recording": {**settings["recording"], "snapshots": "final"}}
