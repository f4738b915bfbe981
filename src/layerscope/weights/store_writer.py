"""Writing the weight-change store (format: :mod:`layerscope.weights.store`).

The writer appends to ``<path>.partial``, flushes after every reading and bumps
``n_readings`` last, so a crash leaves a readable store of the readings so far;
``finish`` sets ``complete`` and renames it to ``<path>``. A full disk names the
``.partial`` file in one line.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from layerscope.core.atomic import atomic_path, naming_full_disk
from layerscope.weights.store import (
    COMPRESSION,
    FORMAT,
    FORMAT_VERSION,
    STR,
    SUMMARIES,
    LayerInfo,
    partial_path,
    resume_path,
    snapshot_group,
)


def _naming_full_disk(method):
    """Report a full disk while the store is written as one line naming its file.

    Writes land in the ``.partial`` file over the whole run (HDF5 raises ``OSError`` with
    errno 28 from deep inside a training callback otherwise).
    """

    @functools.wraps(method)
    def wrapped(owner, *args, **kwargs):
        # A writer knows its path; the class methods take it as their first argument.
        path = owner.path if isinstance(owner, WeightStoreWriter) else kwargs.get("path") or args[0]
        with naming_full_disk(partial_path(path)):
            return method(owner, *args, **kwargs)

    return wrapped


class WeightStoreWriter:
    """Appends readings to a store.

    Start with :meth:`create`, :meth:`reopen` or :meth:`resume`; end with :meth:`finish`.
    """

    def __init__(self, path: Path, handle: h5py.File):
        """Wrap an open ``.partial`` file; use the class methods rather than calling this."""
        self.path = path
        self._file = handle
        self._names = list(handle["layers/name"].asstr()[()])

    @classmethod
    @_naming_full_disk
    def create(
        cls,
        path: str | os.PathLike,
        layers: Sequence[LayerInfo],
        *,
        run_id: str,
        period: int,
        provenance: Mapping | None = None,
        snapshot_dtype: str = "float16",
    ) -> WeightStoreWriter:
        """Start a new store at ``<path>.partial``.

        An older store at ``path`` is removed, since it no longer describes this run.
        """
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        final.unlink(missing_ok=True)
        resume_path(final).unlink(missing_ok=True)
        handle = h5py.File(partial_path(final), "w")
        attrs = handle.attrs
        attrs.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            run_id=run_id,
            period=int(period),
            provenance=json.dumps(dict(provenance or {}), sort_keys=True, default=str),
            snapshot_dtype=str(np.dtype(snapshot_dtype)),
            n_readings=0,
            complete=False,
        )
        group = handle.create_group("layers")
        group["name"] = np.array([info.name for info in layers], dtype=object).astype(STR)
        group["block"] = np.array([info.block for info in layers], dtype=object).astype(STR)
        shapes = [json.dumps(list(info.kernel_shape)) for info in layers]
        group["kernel_shape"] = np.array(shapes, dtype=object).astype(STR)
        group["has_bias"] = np.array([info.has_bias for info in layers], dtype=bool)
        group["n_params"] = np.array([info.n_params for info in layers], dtype=np.int64)
        group["n_units"] = np.array([info.n_units for info in layers], dtype=np.int64)
        for name, dtype in (("step", np.int64), ("epoch", np.int32), ("epoch_end", bool)):
            handle.create_dataset(f"readings/{name}", (0,), dtype, maxshape=(None,), chunks=(256,))
        n_layers = len(layers)
        for name in SUMMARIES:
            handle.create_dataset(
                f"summary/{name}",
                (0, n_layers),
                np.float64,
                maxshape=(None, n_layers),
                chunks=(64, n_layers),
                **COMPRESSION,
            )
        n_units = sum(info.n_units for info in layers)
        for name in ("units", "net_units"):
            handle.create_dataset(
                name,
                (0, n_units),
                np.float32,
                maxshape=(None, n_units),
                chunks=(1, n_units),
                **COMPRESSION,  # one chunk per reading: a flush recompresses only it
            )
        handle.create_group("snapshots")
        handle.create_group("initial")
        handle.flush()
        return cls(final, handle)

    @classmethod
    @_naming_full_disk
    def reopen(cls, path: str | os.PathLike) -> WeightStoreWriter:
        """Continue a finished store (a later ``fit`` of the same run): back to ``.partial``."""
        final = Path(path)
        if final.exists():
            os.replace(final, partial_path(final))
        handle = h5py.File(partial_path(final), "a")
        handle.attrs["complete"] = False
        handle.flush()
        return cls(final, handle)

    @classmethod
    @_naming_full_disk
    def resume(
        cls, path: str | os.PathLike, layer_names: Sequence[str], first_epoch: int
    ) -> tuple[WeightStoreWriter, int, list[tuple[np.ndarray, np.ndarray | None]]] | None:
        """Continue an interrupted store from its last saved epoch end, dropping later readings and snapshots.

        Returns:
            ``(writer, step, accumulators)`` at that epoch end, or None when the store or the
            resume point is missing, from another epoch or of other layers.
        """
        final = Path(path)
        if not (partial_path(final).exists() and resume_path(final).exists()):
            return None
        with np.load(resume_path(final)) as saved:
            reading, step = int(saved["reading"]), int(saved["step"])
            n_layers = int(saved["n_layers"])
            accumulators = [(_saved_part(saved, "kernel", i), _saved_part(saved, "bias", i)) for i in range(n_layers)]
        handle = h5py.File(partial_path(final), "a")
        readings = handle["readings"]
        if not (
            list(handle["layers/name"].asstr()[()]) == list(layer_names)
            and reading < int(handle.attrs["n_readings"])
            and bool(readings["epoch_end"][reading])
            and int(readings["epoch"][reading]) == first_epoch
            and int(readings["step"][reading]) == step
        ):
            handle.close()
            return None
        for key in list(handle["snapshots"]):
            if int(key[1:]) > reading:
                del handle["snapshots"][key]
        handle.attrs["n_readings"] = reading + 1
        handle.flush()
        return cls(final, handle), step, accumulators

    def save_resume_point(self, reading: int, accumulators: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Keep the float32 accumulators at epoch-end ``reading`` for a resumed run.

        All-zero ones (frozen layers) are kept as their shape: a depth-3 run's point is
        then its trained blocks, not all of VGG-16.
        """
        arrays = {
            "reading": reading,
            "step": self._file["readings/step"][reading],
            "n_layers": len(accumulators),
        }
        for i, (kernel, bias) in enumerate(accumulators):
            for part, value in (("kernel", kernel), ("bias", bias)):
                if value is None:
                    continue
                if value.any():
                    arrays[f"{part}{i}"] = value
                else:  # a layer that has not moved: its shape is enough
                    arrays[f"{part}_zeros{i}"] = np.array(value.shape)
        with atomic_path(resume_path(self.path)) as tmp:
            np.savez(tmp, **arrays)

    @property
    def n_readings(self) -> int:
        """Readings committed so far (bumped last, so it never counts a half-written one)."""
        return int(self._file.attrs["n_readings"])

    @_naming_full_disk
    def write_initial(self, tensors: Mapping[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Keep the weights W_0 (kernel, bias) of the named layers, float32: the origin of their net change.

        Stored uncompressed: pretrained or freshly initialised weights are near-random
        floats, which gzip shrinks by 10-14% (a scratch VGG-16's 59 MB to 52 MB) for about
        15 times the write time (0.8 s against 0.05 s), paid before the first step.
        """
        group = self._file["initial"]
        for name, (kernel, bias) in tensors.items():
            group.create_dataset(f"{name}/kernel", data=np.asarray(kernel, np.float32))
            if bias is not None:
                group.create_dataset(f"{name}/bias", data=np.asarray(bias, np.float32))
        self._file.flush()

    def initial_layers(self) -> set[str]:
        """The layers whose W_0 the store keeps."""
        return set(self._file["initial"])

    def initial(self) -> list[tuple[np.ndarray, np.ndarray | None] | None] | None:
        """W_0 per layer as written by :meth:`write_initial`, None for a layer that never trained.

        None when the store keeps no W_0 at all (written before it was kept).
        """
        group = self._file.get("initial")
        if group is None:
            return None
        return [
            (group[f"{n}/kernel"][()], group[f"{n}/bias"][()] if f"{n}/bias" in group else None) if n in group else None
            for n in self._names
        ]

    @_naming_full_disk
    def append(
        self,
        *,
        step: int,
        epoch: int,
        epoch_end: bool,
        summaries: Mapping[str, np.ndarray],
        units: Sequence[np.ndarray],
        net_units: Sequence[np.ndarray] | None = None,
    ) -> int:
        """Add one reading and return its index.

        ``summaries`` hold one value per layer; ``units`` and ``net_units`` one vector per
        layer. A missing net is stored as NaN.
        """
        index = self.n_readings
        row = {"step": step, "epoch": epoch, "epoch_end": epoch_end}
        for name, value in row.items():
            _put_row(self._file[f"readings/{name}"], index, value)
        flat = np.concatenate(units)
        for name in SUMMARIES:
            _put_row(self._file[f"summary/{name}"], index, summaries.get(name, np.full(len(self._names), np.nan)))
        _put_row(self._file["units"], index, flat)
        _put_row(
            self._file["net_units"],
            index,
            np.concatenate(net_units) if net_units is not None else np.full(flat.shape, np.nan, np.float32),
        )
        self._file.flush()
        self._file.attrs["n_readings"] = index + 1
        self._file.flush()
        return index

    @_naming_full_disk
    def mark_epoch_end(self, reading: int) -> None:
        """Flag an existing reading as an epoch end (the epoch ended right on a period)."""
        self._file["readings/epoch_end"][reading] = True
        self._file.flush()

    def has_snapshot(self, reading: int) -> bool:
        """Whether ``reading`` already has full tensors stored."""
        return snapshot_group(reading) in self._file

    @_naming_full_disk
    def write_snapshot(self, reading: int, tensors: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Store the full accumulated (kernel, bias) tensors of every layer at ``reading``.

        An all-zero kernel (a frozen layer) costs no compression and no space.
        """
        group = self._file.create_group(snapshot_group(reading))
        dtype = np.dtype(self._file.attrs["snapshot_dtype"])
        for name, (kernel, bias) in zip(self._names, tensors, strict=True):
            if kernel.any():
                group.create_dataset(f"{name}/kernel", data=kernel.astype(dtype), chunks=True, **COMPRESSION)
            else:  # a frozen layer: no chunk is written, reads give the fill value 0
                group.create_dataset(f"{name}/kernel", kernel.shape, dtype, chunks=True, fillvalue=0, **COMPRESSION)
            if bias is not None:
                group.create_dataset(f"{name}/bias", data=bias.astype(dtype))
        self._file.flush()

    @_naming_full_disk
    def finish(self) -> Path:
        """Mark the store complete and move it to its final path."""
        self._file.attrs["complete"] = True
        self._file.close()
        os.replace(partial_path(self.path), self.path)
        resume_path(self.path).unlink(missing_ok=True)
        return self.path


def _saved_part(saved: Mapping, part: str, i: int) -> np.ndarray | None:
    """A layer's kernel or bias from a resume point: the array, zeros of its kept shape, or None."""
    if f"{part}{i}" in saved:
        return saved[f"{part}{i}"]
    if f"{part}_zeros{i}" in saved:
        return np.zeros(tuple(saved[f"{part}_zeros{i}"]), np.float32)
    return None


def _put_row(dataset: h5py.Dataset, index: int, value) -> None:
    dataset.resize(index + 1, axis=0)
    dataset[index] = value
