"""The precision policy a job computes under: the config's, except ``mixed_float16`` without a GPU and ``auto``.

float16 is a GPU format. On a CPU, TensorFlow's float16 kernels are far slower than its
float32 ones: a VGG-16 training step at 32 px, batch 8, took 232 ms in float32 and
31.9 s under ``mixed_float16`` on a 2-core Intel Xeon with AVX-512 FP16 and AMX (137x;
LeNet-5 33x), which made ``config/paper.yaml`` unrunnable on a CPU (the TensorFlow guide
warns of the same). So a job with no GPU computes ``mixed_float16`` in float32 and says so
in its log. ``mixed_bfloat16`` is kept on a CPU: it is the CPU's mixed format, and a
choice the config makes on purpose (``benchmarks/bench_precision.py`` measures it).

``auto`` (the default config's) computes in ``mixed_bfloat16`` on a CPU with AMX-BF16
matrix units and in float32 everywhere else. On a 2-core Intel Xeon with AMX a whole
VGG-16 trains about 4.5 times faster in bfloat16 at 64 px than in float32; on CPUs
without AMX bfloat16 gained nothing in training or was slower (docs/design.md, "Precision").
A job that sees a GPU keeps float32 under ``auto``: ask for a GPU policy by name.

Files record both: ``precision`` is what the job computed under, ``precision_requested``
the config's value, which is what a cache is checked against (the same config on a GPU
node and a CPU node asks for the same thing).
"""

from __future__ import annotations

import logging

from layerscope.core.machine import cpu_description

log = logging.getLogger(__name__)

GPU_ONLY = frozenset({"mixed_float16"})
AUTO = "auto"
# The /proc/cpuinfo flag of the matrix units that make bfloat16 training faster than float32.
BF16_UNITS = "amx_bf16"


def policy_name(policy: str | bool) -> str:
    """The config's ``mixed_precision`` value as a Keras policy name (False: ``float32``)."""
    return policy or "float32"


def effective_policy(requested: str | bool, gpus: int, isa: list[str] | tuple[str, ...] = ()) -> str:
    """The policy a job computes under when the config asks for ``requested``.

    Args:
        requested: the config's ``training.mixed_precision``.
        gpus: the GPUs visible to TensorFlow.
        isa: the CPU's instruction sets (:func:`layerscope.core.machine.cpu_description`).
    """
    name = policy_name(requested)
    if name == AUTO:
        return "mixed_bfloat16" if gpus == 0 and BF16_UNITS in isa else "float32"
    return "float32" if name in GPU_ONLY and gpus == 0 else name


def use_policy(requested: str | bool, tf_config=None, isa: list[str] | None = None) -> str:
    """Set Keras' global policy for this job (call before any model is built) and return its name.

    Args:
        requested: the config's ``training.mixed_precision`` (False: float32).
        tf_config: ``tf.config`` or a stand-in (None: TensorFlow's, imported here).
        isa: the CPU's instruction sets (None: this machine's).

    Returns:
        The policy set: ``requested``; ``float32`` for a GPU-only policy on a machine without
        a GPU; for ``auto``, ``mixed_bfloat16`` on a CPU with AMX-BF16, else ``float32``.
    """
    import keras

    if tf_config is None:
        import tensorflow as tf

        tf_config = tf.config
    if isa is None:
        isa = cpu_description()[1]
    policy = effective_policy(requested, len(tf_config.list_physical_devices("GPU")), isa)
    if policy_name(requested) == AUTO:
        log.info("mixed_precision auto: computing in %s (%s)", policy, _auto_reason(policy, isa))
    elif policy != policy_name(requested):
        log.warning("mixed_precision %s needs a GPU and none is visible: computing in %s", requested, policy)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _auto_reason(policy: str, isa: list[str]) -> str:
    if policy == "mixed_bfloat16":
        return "a CPU with AMX-BF16"
    return "a GPU is visible" if BF16_UNITS in isa else "no AMX-BF16 on this CPU"
