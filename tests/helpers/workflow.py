"""Child processes the way the tests start them: Snakemake and Python, on a device chosen on purpose.

A test about the CPU path hides every GPU from its children (``CUDA_VISIBLE_DEVICES=""``), so it
passes the same on a machine with a GPU, and asserts the device line that decision gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO

CPU_LINE = "device: CPU (no GPU visible to TensorFlow)"
"""What ``layerscope.core.devices.share_gpus`` logs in a job that sees no GPU."""


def cpu_env(**extra: str) -> dict[str, str]:
    """This process's environment with every GPU hidden and the cost estimate off (20-30 s of
    every run's start; ``test_estimate`` turns it on), and ``extra`` set."""
    return {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LAYERSCOPE_COST_ESTIMATE": "off",
        **extra,
    }


def run_python(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python *args`` in a child on the CPU (unless ``env`` says otherwise), output captured."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=cpu_env() if env is None else env, cwd=cwd
    )


def run_snakemake(
    workdir: Path,
    *args: str,
    cores: int = 2,
    profile: str | None = None,
    env: dict[str, str] | None = None,
    repo: Path = REPO,
) -> subprocess.CompletedProcess:
    """Snakemake on the workflow of ``repo`` (this repository, or a copy a test edits) with
    results under ``workdir``, on the CPU unless ``env`` says otherwise; ``profile`` is a folder
    under workflow/profiles (default: none given, so Snakemake finds the default profile itself)."""
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--directory", str(workdir)]
    if repo != REPO:
        command += ["--snakefile", str(repo / "workflow" / "Snakefile")]
    if profile is not None:
        command += ["--workflow-profile", str(repo / "workflow/profiles" / profile)]
    return subprocess.run(
        [*command, *args], cwd=repo, capture_output=True, text=True, env=cpu_env() if env is None else env
    )


def dry_run(workdir: Path, config: Path | str, *args: str, profile: str | None = None) -> subprocess.CompletedProcess:
    """``snakemake -n`` of ``config``: the jobs it would run, none run."""
    return run_snakemake(workdir, "-n", "--configfile", str(config), *args, cores=1, profile=profile)
