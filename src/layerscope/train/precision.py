"""The precision policy a job computes under: the config's, except ``mixed_float16`` without a GPU.

float16 is a GPU format. On a CPU, TensorFlow's float16 kernels are far slower than its
float32 ones: a VGG-16 training step at 32 px, batch 8, took 232 ms in float32 and
31.9 s under ``mixed_float16`` on a 2-core Intel Xeon with AVX-512 FP16 and AMX (137x;
LeNet-5 33x), which made ``config/paper.yaml`` unrunnable on a CPU (the TensorFlow guide
warns of the same). So a job with no GPU computes ``mixed_float16`` in float32 and says so
in its log. ``mixed_bfloat16`` is kept on a CPU: it is the CPU's mixed format, and a
choice the config makes on purpose (``benchmarks/bench_precision.py`` measures it).

Files record both: ``precision`` is what the job computed under, ``precision_requested``
the config's value, which is what a cache is checked against (the same config on a GPU
node and a CPU node asks for the same thing).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

GPU_ONLY = frozenset({"mixed_float16"})


def policy_name(policy: str | bool) -> str:
    """The config's ``mixed_precision`` value as a Keras policy name (False: ``float32``)."""
    return policy or "float32"


def effective_policy(requested: str | bool, gpus: int) -> str:
    """The policy a job with ``gpus`` visible GPUs computes under when the config asks for ``requested``."""
    name = policy_name(requested)
    return "float32" if name in GPU_ONLY and gpus == 0 else name


def use_policy(requested: str | bool, tf_config=None) -> str:
    """Set Keras' global policy for this job (call before any model is built) and return its name.

    Args:
        requested: the config's ``training.mixed_precision`` (False: float32).
        tf_config: ``tf.config`` or a stand-in (None: TensorFlow's, imported here).

    Returns:
        The policy set: ``requested``, or ``float32`` for a GPU-only policy on a machine without a GPU.
    """
    import keras

    if tf_config is None:
        import tensorflow as tf

        tf_config = tf.config
    policy = effective_policy(requested, len(tf_config.list_physical_devices("GPU")))
    if policy != policy_name(requested):
        log.warning("mixed_precision %s needs a GPU and none is visible: computing in %s", requested, policy)
    keras.mixed_precision.set_global_policy(policy)
    return policy
