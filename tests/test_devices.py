import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from helpers import REPO

from layerscope.core.devices import claim_gpu, share_gpus
from layerscope.core.errors import LayerscopeError

CLAIM = (
    "import sys; from layerscope.core.devices import claim_gpu; "
    "print(claim_gpu(2, sys.argv[1])); sys.stdout.flush(); sys.stdin.read()"
)


def test_concurrent_jobs_get_distinct_gpus(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    claimed = [job.stdout.readline().strip() for job in jobs]
    for job in jobs:
        job.communicate("")
    assert sorted(claimed) == ["0", "1"]


def test_user_choice_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpu(4, tmp_path) is None


def test_single_gpu_needs_no_claim(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert claim_gpu(1, tmp_path) is None
    assert claim_gpu(0, tmp_path) is None


class FakeTfConfig:
    """tf.config with a mocked device list: records what share_gpus asks of each GPU."""

    class LogicalDeviceConfiguration:
        def __init__(self, memory_limit):
            self.memory_limit = memory_limit

    def __init__(self, gpus):
        self.gpus = [SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(gpus)]
        self.growth, self.limits = {}, {}
        self.experimental = SimpleNamespace(set_memory_growth=lambda gpu, on: self.growth.__setitem__(gpu.name, on))

    def list_physical_devices(self, kind):
        assert kind == "GPU"
        return self.gpus

    def set_logical_device_configuration(self, gpu, configs):
        self.limits[gpu.name] = [c.memory_limit for c in configs]


def test_jobs_on_one_gpu_grow_their_memory_and_say_so(monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    tf_config = FakeTfConfig(1)
    with caplog.at_level(logging.INFO, logger="layerscope.core.devices"):
        line = share_gpus(0, tf_config)
    assert tf_config.growth == {"/physical_device:GPU:0": True} and tf_config.limits == {}
    assert line == "device: /physical_device:GPU:0 (CUDA_VISIBLE_DEVICES=0), memory growth on"
    assert caplog.messages == [line]


def test_a_memory_cap_bounds_each_visible_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    tf_config = FakeTfConfig(2)
    line = share_gpus(6000, tf_config)
    assert tf_config.limits == {"/physical_device:GPU:0": [6000], "/physical_device:GPU:1": [6000]}
    assert tf_config.growth == {}
    assert line.endswith("memory capped at 6000 MB per job")


def test_cpu_only_job_says_so_and_a_negative_cap_is_refused():
    assert share_gpus(None, FakeTfConfig(0)) == "device: CPU (no GPU visible to TensorFlow)"
    with pytest.raises(LayerscopeError, match="gpu_mem_mb: -1"):
        share_gpus(-1, FakeTfConfig(1))


def test_default_profile_lets_several_training_jobs_share_a_gpu():
    profile = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    per_job = profile["set-resources"]["train"]["gpu_jobs"]
    assert profile["resources"]["gpu_jobs"] // per_job > 1
    assert profile["set-resources"]["train"]["gpu_mem_mb"] == 0  # memory growth
