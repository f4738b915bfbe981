"""The precision policy a job computes under: mixed_float16 is kept on a GPU and computed in
float32 without one; auto is bfloat16 on a CPU with AMX-BF16 only; the float16 training path
itself still runs and learns."""

import functools
import json
import logging

import keras
import numpy as np
import pytest
from helpers.training import config

import layerscope.train.run as run_module
from layerscope.train.precision import effective_policy, use_policy
from layerscope.train.run import RunFiles, train_run
from layerscope.train.runs import job_settings, parse_run_id


class Devices:
    """A stand-in for ``tf.config`` that lists ``gpus`` GPUs."""

    def __init__(self, gpus: int):
        self.gpus = gpus

    def list_physical_devices(self, kind):
        return [f"/physical_device:{kind}:{i}" for i in range(self.gpus)] if kind == "GPU" else []


@pytest.fixture
def restore_float32():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "requested, gpus, expected",
    [
        (False, 0, "float32"),
        (False, 1, "float32"),
        ("mixed_float16", 0, "float32"),
        ("mixed_float16", 2, "mixed_float16"),
        ("mixed_bfloat16", 0, "mixed_bfloat16"),
        ("mixed_bfloat16", 1, "mixed_bfloat16"),
    ],
)
def test_effective_policy(requested, gpus, expected):
    assert effective_policy(requested, gpus) == expected


SAPPHIRE_RAPIDS = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"]
ZEN5 = ["avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16"]


@pytest.mark.parametrize(
    "isa, gpus, expected",
    [
        (SAPPHIRE_RAPIDS, 0, "mixed_bfloat16"),
        (ZEN5, 0, "float32"),  # AVX512-BF16 without AMX: bfloat16 training gained nothing there
        (["avx2", "fma"], 0, "float32"),
        ([], 0, "float32"),
        (SAPPHIRE_RAPIDS, 1, "float32"),  # a GPU computes: auto does not pick a GPU policy for it
    ],
)
def test_auto_is_bfloat16_only_on_a_cpu_with_amx_bf16(isa, gpus, expected):
    assert effective_policy("auto", gpus, isa) == expected


def test_use_policy_auto_logs_what_it_chose_and_why(restore_float32, caplog):
    with caplog.at_level(logging.INFO, logger="layerscope.train.precision"):
        assert use_policy("auto", Devices(0), isa=SAPPHIRE_RAPIDS) == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert use_policy("auto", Devices(0), isa=ZEN5) == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
    assert "mixed_precision auto: computing in mixed_bfloat16 (a CPU with AMX-BF16)" in caplog.text
    assert "mixed_precision auto: computing in float32 (no AMX-BF16 on this CPU)" in caplog.text


def test_use_policy_sets_keras_policy_and_warns_only_when_it_falls_back(restore_float32, caplog):
    with caplog.at_level(logging.WARNING, logger="layerscope.train.precision"):
        assert use_policy("mixed_float16", Devices(0)) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert "mixed_precision mixed_float16 needs a GPU and none is visible: computing in float32" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="layerscope.train.precision"):
        assert use_policy("mixed_float16", Devices(1)) == "mixed_float16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert use_policy(False, Devices(1)) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32" and not caplog.text


def test_train_run_records_both_policies_and_trains_in_float16_where_kept(
    tmp_path,
    data_dir,  # noqa: F811
    monkeypatch,
    restore_float32,
):
    cfg = config(mixed_precision="mixed_float16")
    run_id = "lenet5-relu-momentum"
    spec = parse_run_id(run_id, cfg["training"])
    settings = {**job_settings(run_id, cfg), "step_checkpoints": False}
    metrics = {}
    for gpus in (0, 1):  # without a GPU, then as on one: the float16 path (loss scaling) on this CPU
        monkeypatch.setattr(run_module, "use_policy", functools.partial(use_policy, tf_config=Devices(gpus)))
        files = RunFiles(tmp_path / str(gpus))
        metrics[gpus] = json.loads(json.dumps(train_run(spec, data_dir, files, **settings)))
        model = keras.models.load_model(files.model)
        assert model.get_layer("c1").compute_dtype == ("float16" if gpus else "float32")
        assert all(w.dtype == np.float32 for w in model.get_weights())
        assert np.isfinite(np.concatenate([w.ravel() for w in model.get_weights()])).all()
        keras.mixed_precision.set_global_policy("float32")
    assert metrics[0]["precision"] == "float32" and metrics[1]["precision"] == "mixed_float16"
    assert metrics[0]["precision_requested"] == metrics[1]["precision_requested"] == "mixed_float16"
    assert metrics[1]["epochs_run"] == 2 and metrics[1]["test"]["n"] == 9
