"""GPU choice and sharing for concurrent jobs: Snakemake caps how many run, but assigns no device ids.

Each training job claims a free GPU with an exclusive file lock, held until the
process ends, and sets CUDA_VISIBLE_DEVICES before TensorFlow starts. A device
already chosen by the user or the cluster (CUDA_VISIBLE_DEVICES set) is respected.
Jobs on one GPU share its memory (:func:`share_gpus`), and each names its device in
its log's first lines.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from layerscope.core.errors import LayerscopeError

log = logging.getLogger(__name__)
_held: list = []  # open lock files; the lock lasts as long as the process


def gpu_count() -> int:
    """Number of NVIDIA GPUs on this machine (0 without nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def claim_gpu(count: int | None = None, lock_dir: str | os.PathLike | None = None) -> int | None:
    """Claim a free GPU for this process by setting CUDA_VISIBLE_DEVICES; call before TensorFlow starts.

    Args:
        count: the number of GPUs (None: ask nvidia-smi).
        lock_dir: where the per-GPU lock files live (None: the system temp folder).

    Returns:
        The claimed GPU's index, or None when there is no choice to make (CUDA_VISIBLE_DEVICES
        already set, or at most one GPU). When every GPU is claimed, one is shared.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    count = gpu_count() if count is None else count
    if count <= 1:
        return None
    directory = Path(lock_dir or tempfile.gettempdir())
    for index in range(count):
        handle = open(directory / f"layerscope-gpu-{index}.lock", "w")  # noqa: SIM115 (held for the process)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
        log.info("using GPU %d of %d", index, count)
        return index
    index = os.getpid() % count
    log.warning("all %d GPUs are claimed by other jobs; sharing GPU %d", count, index)
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return index


def share_gpus(memory_mb: int | None = None, tf_config=None) -> str:
    """Let several jobs share a GPU, and log which device this job computes on; call before TensorFlow starts.

    TensorFlow otherwise maps nearly all of a GPU's memory into the first job that touches
    it, and the next job on that GPU fails to allocate. With memory growth each job takes
    what it uses; with ``memory_mb`` it gets a fixed cap (a per-job resource, ``gpu_mem_mb``
    in the profiles), so the jobs Snakemake runs at once fit side by side.

    Args:
        memory_mb: per-job cap on each visible GPU in MB (None or 0: grow as needed).
        tf_config: ``tf.config`` or a stand-in (None: TensorFlow's, imported here).

    Returns:
        The line logged: the devices this job uses and how their memory is shared.

    Raises:
        LayerscopeError: a negative ``memory_mb``.
    """
    if memory_mb is not None and memory_mb < 0:
        raise LayerscopeError(f"resource gpu_mem_mb: {memory_mb} is negative (0: memory growth)")
    if tf_config is None:
        import tensorflow as tf

        tf_config = tf.config
    gpus = tf_config.list_physical_devices("GPU")
    for gpu in gpus:
        if memory_mb:
            tf_config.set_logical_device_configuration(
                gpu, [tf_config.LogicalDeviceConfiguration(memory_limit=memory_mb)]
            )
        else:
            tf_config.experimental.set_memory_growth(gpu, True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpus:
        line = "device: CPU (no GPU visible to TensorFlow)"
    else:
        names = ", ".join(gpu.name for gpu in gpus)
        sharing = f"memory capped at {memory_mb} MB per job" if memory_mb else "memory growth on"
        line = f"device: {names} (CUDA_VISIBLE_DEVICES={visible}), {sharing}"
    log.info(line)
    return line
