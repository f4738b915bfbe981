"""Why TensorFlow computes on the CPU, decided from simulated facts (no GPU needed)."""

from types import SimpleNamespace

import pytest

from layerscope.core.gpu_check import DeviceFacts, device_verdict, gather_facts

CUDA_BUILD = {"gpus": (), "built_with_cuda": True, "cuda_visible_devices": None, "driver": True, "cuda_libraries": True}


@pytest.mark.parametrize(
    ("facts", "cause"),
    [
        (
            {"built_with_cuda": False},
            "this TensorFlow is built without CUDA; install the GPU build: make reproduce EXTRAS=gpu",
        ),
        ({"built_with_cuda": False, "driver": False}, "built without CUDA; no NVIDIA driver either"),
        ({"cuda_visible_devices": ""}, "CUDA_VISIBLE_DEVICES is '', which hides every GPU; unset it"),
        ({"cuda_visible_devices": "-1"}, "CUDA_VISIBLE_DEVICES is '-1', which hides every GPU"),
        ({"driver": False}, "no NVIDIA driver is loaded (no /proc/driver/nvidia/version, no libcuda)"),
        (
            {"cuda_libraries": False},
            "driver is loaded but TensorFlow's CUDA libraries are not installed; make reproduce EXTRAS=gpu",
        ),
        ({}, "the driver and CUDA libraries are present but TensorFlow lists no GPU; check nvidia-smi"),
    ],
)
def test_a_cuda_build_without_a_gpu_says_why_in_one_line(facts, cause):
    has_gpu, line = device_verdict(DeviceFacts(**{**CUDA_BUILD, **facts}))
    assert not has_gpu
    assert line.startswith("device: CPU, no GPU: ") and cause in line and "\n" not in line


def test_a_visible_gpu_is_named():
    facts = DeviceFacts(**{**CUDA_BUILD, "gpus": ("/physical_device:GPU:0",), "cuda_visible_devices": "0"})
    assert device_verdict(facts) == (True, "device: 1 GPU(s) (/physical_device:GPU:0)")


def test_facts_are_read_from_tensorflow_and_the_environment(monkeypatch):
    fake_tf = SimpleNamespace(
        config=SimpleNamespace(list_physical_devices=lambda kind: [SimpleNamespace(name=f"/{kind}:0")]),
        test=SimpleNamespace(is_built_with_cuda=lambda: True),
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    facts = gather_facts(fake_tf)
    assert (facts.gpus, facts.built_with_cuda, facts.cuda_visible_devices) == (("/GPU:0",), True, "1")
