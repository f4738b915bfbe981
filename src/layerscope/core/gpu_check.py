"""Why TensorFlow computes on the CPU: one line a user can act on, said once before a run starts.

A GPU user sees only "no GPU visible" otherwise, and the causes need different fixes: a
TensorFlow built without CUDA, ``CUDA_VISIBLE_DEVICES`` hiding every GPU, no NVIDIA driver,
or the driver without the CUDA libraries TensorFlow loads (the ``gpu`` extra installs them).
:func:`device_verdict` decides from the facts alone, so it is tested without a GPU;
:func:`gather_facts` reads them from this machine.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

GPU_INSTALL = "make reproduce EXTRAS=gpu (or pip install -c constraints.txt '.[gpu]')"


@dataclass(frozen=True)
class DeviceFacts:
    """What decides whether TensorFlow computes on a GPU.

    Attributes:
        gpus: names of the GPUs TensorFlow lists.
        built_with_cuda: whether this TensorFlow build has CUDA support.
        cuda_visible_devices: the variable's value (None: unset).
        driver: whether an NVIDIA kernel driver is loaded (``/proc/driver/nvidia/version``
            or ``libcuda`` found).
        cuda_libraries: whether TensorFlow's pip CUDA libraries (``nvidia-cudnn-cu12`` and
            the rest, the ``gpu`` extra) are installed.
    """

    gpus: tuple[str, ...]
    built_with_cuda: bool
    cuda_visible_devices: str | None
    driver: bool
    cuda_libraries: bool


def device_verdict(facts: DeviceFacts) -> tuple[bool, str]:
    """(whether a GPU computes, the one line that says which device and, on the CPU, why).

    The first cause found is named, in the order a user would fix them.
    """
    if facts.gpus:
        return True, f"device: {len(facts.gpus)} GPU(s) ({', '.join(facts.gpus)})"
    if not facts.built_with_cuda:
        why = "this TensorFlow is built without CUDA"
        fix = f"install the GPU build: {GPU_INSTALL}" if facts.driver else "no NVIDIA driver either"
    elif facts.cuda_visible_devices is not None and facts.cuda_visible_devices.strip() in ("", "-1"):
        why = f"CUDA_VISIBLE_DEVICES is {facts.cuda_visible_devices.strip()!r}, which hides every GPU"
        fix = "unset it or name a GPU (CUDA_VISIBLE_DEVICES=0)"
    elif not facts.driver:
        why = "no NVIDIA driver is loaded (no /proc/driver/nvidia/version, no libcuda)"
        fix = "on a GPU machine install the NVIDIA driver; on a CPU machine nothing to do"
    elif not facts.cuda_libraries:
        why = "the NVIDIA driver is loaded but TensorFlow's CUDA libraries are not installed"
        fix = GPU_INSTALL
    else:
        why = "the driver and CUDA libraries are present but TensorFlow lists no GPU"
        fix = "check nvidia-smi and that the driver supports this TensorFlow's CUDA version"
    return False, f"device: CPU, no GPU: {why}; {fix}"


def gather_facts(tf=None) -> DeviceFacts:
    """This machine's :class:`DeviceFacts` (imports TensorFlow unless ``tf`` is given)."""
    if tf is None:
        import tensorflow as tf
    return DeviceFacts(
        gpus=tuple(gpu.name for gpu in tf.config.list_physical_devices("GPU")),
        built_with_cuda=bool(tf.test.is_built_with_cuda()),
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        driver=Path("/proc/driver/nvidia/version").is_file() or ctypes.util.find_library("cuda") is not None,
        cuda_libraries=_installed("nvidia.cudnn") and _installed("nvidia.cublas"),
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
