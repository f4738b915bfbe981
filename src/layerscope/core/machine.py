"""The machine a job ran on: CPU model and the instruction sets TensorFlow's kernels can use.

Results are not bitwise equal across CPU kinds (AVX2, AVX-512, AVX512-BF16 and AMX
kernels round differently), so every provenance record names the CPU, the vector
instruction sets it offers and the oneDNN settings, and a result can be traced to the
kind of machine that made it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path

# The x86 flags (as /proc/cpuinfo spells them) that decide which TensorFlow/oneDNN
# kernels run, widest last.
ISA_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
ONEDNN_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")
# Without TF_ENABLE_ONEDNN_OPTS, TensorFlow (x86 Linux) turns oneDNN on only for CPUs with these.
ONEDNN_BY_DEFAULT = ("avx_vnni", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def onednn_on(setting: str | None, isa: list[str]) -> bool:
    """Whether TensorFlow runs its oneDNN kernels: as ``TF_ENABLE_ONEDNN_OPTS`` says, else by the CPU."""
    if setting is not None:
        return setting.strip().lower() in ("1", "true", "yes", "on")
    return any(flag in isa for flag in ONEDNN_BY_DEFAULT)


def cpu_description(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """(model, instruction sets of :data:`ISA_FLAGS` present) from ``cpuinfo``.

    The model is the model name with the family and model numbers, which tell CPU
    generations apart where a virtual machine names them all "AMD EPYC".

    Args:
        cpuinfo: a file in /proc/cpuinfo's format; where it is absent (not Linux) the
            model is :func:`platform.processor` and no instruction set is listed.

    Returns:
        The first processor's model and its flags of interest, in :data:`ISA_FLAGS` order.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: all cores are one kind here
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    model = fields.get("model name") or fields.get("Model") or platform.machine()
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    return model, [flag for flag in ISA_FLAGS if flag in flags]


def machine_record() -> dict:
    """The machine fields of a provenance record: CPU, instruction sets, cores, oneDNN settings.

    An unset oneDNN variable is recorded as None; ``onednn`` says whether the kernels are
    on (:func:`onednn_on`), since TensorFlow's default depends on the CPU.
    """
    model, isa = cpu_description()
    return {
        "cpu_model": model,
        "cpu_isa": isa,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        **{name.lower(): os.environ.get(name) for name in ONEDNN_VARIABLES},
        "onednn": onednn_on(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), isa),
    }


def machine_line(record: dict) -> str:
    """The machine in one line, as the README's results name it."""
    isa = ", ".join(flag.upper().replace("_", "-") for flag in record.get("cpu_isa") or []) or "none listed"
    setting = record.get("tf_enable_onednn_opts")
    on = record.get("onednn", onednn_on(setting, record.get("cpu_isa") or []))
    how = "TensorFlow's default for this CPU" if setting is None else f"TF_ENABLE_ONEDNN_OPTS={setting}"
    return (
        f"{record.get('cpu_model')}, {record.get('cpu_count')} cores, instruction sets {isa}; "
        f"oneDNN {'on' if on else 'off'} ({how})"
    )


def machines_of(records: Iterable[Mapping]) -> list[str]:
    """The distinct machines (:func:`machine_line`) of provenance records, in first-seen order.

    A training job's record also names the precision it computed in (``extra.precision``),
    which ``mixed_precision: auto`` chooses by the CPU: it follows the machine it ran on.
    """
    lines: list[str] = []
    for record in records:
        if "machine" not in record:
            continue
        line = machine_line(record["machine"])
        if precision := (record.get("extra") or {}).get("precision"):
            line += f"; training in {precision}"
        if line not in lines:
            lines.append(line)
    return lines
