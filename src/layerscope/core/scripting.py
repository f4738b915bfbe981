"""The frame every workflow script runs in.

Output, progress bars and native-library messages (TensorFlow's C++ logging writes
to file descriptor 2 directly) go to the rule's ``log:`` file; a LayerscopeError is
reported as one clear line (on the terminal and in the log) instead of a traceback,
as is a full disk, and the job fails so Snakemake removes its outputs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from layerscope.core.atomic import is_disk_full
from layerscope.core.errors import LayerscopeError
from layerscope.core.provenance import write_provenance

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any script imports TensorFlow
log = logging.getLogger("layerscope")

JOB_GC_THRESHOLD = 50_000
"""Allocations between the cyclic collector's young-generation passes in a job (Python: 700).

Importing TensorFlow and Keras creates about 390,000 objects that live as long as the
process, and at the default threshold the collector makes about 960 passes while they
load, none of which finds garbage: 9-16% of a training or rendering job's import CPU
time, by machine (``benchmarks/bench_job_startup.py``). Cycles are still collected, in
larger batches.
"""


def use_job_gc_threshold() -> tuple[int, int, int]:
    """Raise the young generation's collector threshold to :data:`JOB_GC_THRESHOLD`; return the one it replaces."""
    before = gc.get_threshold()
    gc.set_threshold(JOB_GC_THRESHOLD, *before[1:])
    return before


@contextlib.contextmanager
def _descriptors_to(path: str) -> Iterator[int]:
    """Point stdout and stderr (the descriptors, not just the Python objects) at ``path``.

    Yields a duplicate of the original stderr for messages meant for the terminal.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(path, "a", buffering=1) as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield saved[2]
        finally:
            stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def use_onednn() -> None:
    """Turn TensorFlow's oneDNN kernels on unless the environment says otherwise, before TensorFlow loads.

    TensorFlow enables them by default only on CPUs with AVX512-VNNI, AVX512-BF16,
    AVX-VNNI or AMX, so without this an AVX2 machine and an AVX-512 one run different
    kernel libraries and round differently; on a 2-core AVX2 EPYC oneDNN also trains a
    depth-3 epoch in about 60 s instead of 105 s. ``TF_ENABLE_ONEDNN_OPTS=0`` in the
    environment keeps TensorFlow's own kernels. Once TensorFlow is loaded the setting can
    no longer change its kernels, so it is left alone then: it would only mislead the
    provenance record and leak into child processes.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def run_job(snakemake: Any, job: Callable[[Any], None]) -> None:
    """Run ``job(snakemake)`` with logging to ``snakemake.log[0]``; exit 1 on user errors.

    The job runs at the collector threshold :data:`JOB_GC_THRESHOLD`, restored after it.

    Args:
        snakemake: the ``snakemake`` object Snakemake gives a script.
        job: the script's work, called with ``snakemake``.

    Raises:
        SystemExit: a LayerscopeError or a full disk, reported as one line on the terminal and in the log.
    """
    use_onednn()
    log_path = snakemake.log[0] if len(snakemake.log) else None
    with contextlib.ExitStack() as stack:
        stack.callback(gc.set_threshold, *use_job_gc_threshold())
        if log_path:
            terminal = stack.enter_context(_descriptors_to(log_path))
        else:
            terminal = os.dup(2)
            stack.callback(os.close, terminal)
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        try:
            job(snakemake)
        except Exception as err:
            if not isinstance(err, LayerscopeError) and not is_disk_full(err):
                log.exception("rule %s failed with an unexpected error", snakemake.rule)
                raise
            message = err if isinstance(err, LayerscopeError) else _full_disk_message(err, snakemake)
            log.error("%s", message)
            os.write(terminal, f"layerscope: rule {snakemake.rule} failed: {message}\n".encode())
            sys.exit(1)


def _full_disk_message(err: OSError, snakemake: Any) -> str:
    """One line for a full disk no writer named itself: the file if the error says, else the job's outputs."""
    where = err.filename or f"the outputs of rule {snakemake.rule} ({', '.join(map(str, snakemake.output))})"
    return f"no space left on device writing {where}: free space and rerun"


def write_job_provenance(
    smk: Any, inputs=None, outputs=None, seed: int | None = None, extra: dict | None = None
) -> dict:
    """Write the job's ``provenance`` output: the record every rule stamps its outputs with.

    Args:
        smk: the ``snakemake`` object of the running script (rule, config, inputs, outputs).
        inputs: the files the job read (default: the rule's declared inputs, which name
            everything its script reads).
        outputs: the files it wrote (default: the rule's outputs besides the record).
        seed: the seed the job ran with (default: the config's ``seed``).
        extra: job-specific fields (run id, chosen images, ...).

    Returns:
        The record written.
    """
    if inputs is None:
        inputs = smk.input
    if outputs is None:
        outputs = [path for path in smk.output if path != smk.output.provenance]
    return write_provenance(
        smk.output.provenance,
        rule=smk.rule,
        experiment=smk.config["experiment"],
        config=smk.config,
        seed=smk.config["seed"] if seed is None else seed,
        inputs=list(inputs),
        outputs=list(outputs),
        extra=extra,
    )
