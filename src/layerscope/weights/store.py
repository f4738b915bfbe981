"""The accumulated-weight-change store (study C, Yang and Park 2023): one chunked, gzip-compressed HDF5 file per run.

Layout (format ``layerscope.weight_changes``, version 2; version 1 lacks ``net``)::

    /                      attrs: format, format_version, run_id, period, provenance (JSON),
                                  snapshot_dtype, n_readings, complete
    /layers/{name, block, kernel_shape (JSON), has_bias, n_params, n_units}   one row per layer
    /readings/{step, epoch, epoch_end}                                        one row per reading
    /summary/{accumulated, period_change, weight_l1, net}  (readings x layers) float64, L1 sums
    /units                     (readings x units of all layers, in layer order) float32, accumulated
    /net_units                 (readings x units) float32, net change |W_t - W_0|
    /initial/<layer>/{kernel, bias}                    the weights W_0 of the first reading, float32
    /snapshots/r<reading>/<layer>/{kernel, bias}       full accumulated tensors (float16 default)

A unit is an output channel (last kernel axis); its change is the L1 sum over the other
kernel axes plus its bias. Two modes (our reading of study C, Yang and Park 2023): ``accumulated``
is the sum over readings (every ``period`` steps and at epoch ends) of ``|W_t - W_prev|``,
so it grows with the path the weights travel and depends on the period; ``net`` is
``|W_t - W_0|``, where the weights ended up, independent of the period (net <= accumulated).

The writer appends to ``<path>.partial``, flushes after every reading and bumps
``n_readings`` last, so a crash leaves a readable store of the readings so far;
``finish`` sets ``complete`` and renames it to ``<path>``. The reader opens either.
At each epoch end the full float32 accumulators go to ``<path>.resume.npz`` (removed by
``finish``), so training resumed after a crash continues the store exactly.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from layerscope.core.atomic import atomic_path, naming_full_disk
from layerscope.core.blocks import block_label
from layerscope.core.errors import LayerscopeError, rerun_hint

FORMAT = "layerscope.weight_changes"
FORMAT_VERSION = 2
SUMMARIES = ("accumulated", "period_change", "weight_l1", "net")
MODES = ("accumulated", "net")
"""What a unit's value can be: the summed path of its weights, or their net displacement."""
_COMPRESSION = {
    "compression": "gzip",
    "compression_opts": 1,
    "shuffle": True,
}  # level 4+ saves ~1%, costs 30%
_STR = h5py.string_dtype()


def partial_path(path: str | os.PathLike) -> Path:
    """Where a store lives while it is being written."""
    return Path(f"{os.fspath(path)}.partial")


def resume_path(path: str | os.PathLike) -> Path:
    """Where the accumulators of the last epoch end wait for a resumed run."""
    return Path(f"{os.fspath(path)}.resume.npz")


@dataclass(frozen=True)
class LayerInfo:
    """What the store keeps about one recorded layer."""

    name: str
    kernel_shape: tuple[int, ...]
    has_bias: bool

    @property
    def block(self) -> str:
        """The block the layer is drawn in (see :func:`block_label`)."""
        return block_label(self.name)

    @property
    def n_units(self) -> int:
        """Output channels: the last kernel axis."""
        return int(self.kernel_shape[-1])

    @property
    def n_params(self) -> int:
        """Kernel and bias parameters."""
        return int(np.prod(self.kernel_shape)) + (self.n_units if self.has_bias else 0)


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
        group["name"] = np.array([info.name for info in layers], dtype=object).astype(_STR)
        group["block"] = np.array([info.block for info in layers], dtype=object).astype(_STR)
        shapes = [json.dumps(list(info.kernel_shape)) for info in layers]
        group["kernel_shape"] = np.array(shapes, dtype=object).astype(_STR)
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
                **_COMPRESSION,
            )
        n_units = sum(info.n_units for info in layers)
        for name in ("units", "net_units"):
            handle.create_dataset(
                name,
                (0, n_units),
                np.float32,
                maxshape=(None, n_units),
                chunks=(1, n_units),
                **_COMPRESSION,  # one chunk per reading: a flush recompresses only it
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
            accumulators = [(saved[f"kernel{i}"], saved.get(f"bias{i}")) for i in range(n_layers)]
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
        """Keep the float32 accumulators at epoch-end ``reading`` for a resumed run."""
        arrays = {
            "reading": reading,
            "step": self._file["readings/step"][reading],
            "n_layers": len(accumulators),
        }
        for i, (kernel, bias) in enumerate(accumulators):
            arrays[f"kernel{i}"] = kernel
            if bias is not None:
                arrays[f"bias{i}"] = bias
        with atomic_path(resume_path(self.path)) as tmp:
            np.savez(tmp, **arrays)

    @property
    def n_readings(self) -> int:
        """Readings committed so far (bumped last, so it never counts a half-written one)."""
        return int(self._file.attrs["n_readings"])

    @_naming_full_disk
    def write_initial(self, tensors: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Keep the weights W_0 (kernel, bias) of every layer, float32: the origin of the net change."""
        group = self._file["initial"]
        for name, (kernel, bias) in zip(self._names, tensors, strict=True):
            group.create_dataset(f"{name}/kernel", data=np.asarray(kernel, np.float32), **_COMPRESSION)
            if bias is not None:
                group.create_dataset(f"{name}/bias", data=np.asarray(bias, np.float32))
        self._file.flush()

    def initial(self) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
        """W_0 per layer as written by :meth:`write_initial`; None if it was never written."""
        group = self._file.get("initial")
        if group is None or not all(name in group for name in self._names):
            return None
        return [
            (group[f"{n}/kernel"][()], group[f"{n}/bias"][()] if f"{n}/bias" in group else None) for n in self._names
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
        return _snapshot_group(reading) in self._file

    @_naming_full_disk
    def write_snapshot(self, reading: int, tensors: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Store the full accumulated (kernel, bias) tensors of every layer at ``reading``."""
        group = self._file.create_group(_snapshot_group(reading))
        dtype = np.dtype(self._file.attrs["snapshot_dtype"])
        for name, (kernel, bias) in zip(self._names, tensors, strict=True):
            group.create_dataset(f"{name}/kernel", data=kernel.astype(dtype), chunks=True, **_COMPRESSION)
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


def _put_row(dataset: h5py.Dataset, index: int, value) -> None:
    dataset.resize(index + 1, axis=0)
    dataset[index] = value


def _snapshot_group(reading: int) -> str:
    return f"snapshots/r{reading:06d}"


class WeightChangeStore:
    """Read a store written by :class:`WeightStoreWriter` (complete, or ``.partial`` from an interrupted run).

    Args:
        path: the store's final path; its ``.partial`` is read when the run did not finish.
        expected_layers: the layer names, in order, the store must record (see
            :func:`layerscope.weights.recorder.recorded_layer_names`); None: any layout.

    Attributes:
        run_id: the run that wrote the store.
        period: training steps between readings.
        complete: whether the writer finished.
        n_readings: the readings recorded.
        layers: one row per layer: name, block, shape, n_params, n_units.
        layer_names: the layer names, in model order.
        readings: one row per reading: step, epoch, epoch_end.
        snapshot_readings: the readings with full tensors.

    Raises:
        LayerscopeError: no store at ``path``, an unreadable or foreign file, a newer format,
            or another layer layout than ``expected_layers``.
    """

    def __init__(self, path: str | os.PathLike, expected_layers: Sequence[str] | None = None):
        """Open the store and read its metadata and per-layer summaries (units are read on demand)."""
        self.path = _resolve(Path(path))
        try:
            with h5py.File(self.path, "r") as handle:
                self._load(handle)
        except OSError as err:
            raise LayerscopeError(
                f"{self.path} is not a readable HDF5 weight-change store ({err}); {rerun_hint(path)}"
            ) from err
        except KeyError as err:
            raise LayerscopeError(f"{self.path} is not a weight-change store (missing {err})") from err
        if expected_layers is not None and list(expected_layers) != self.layer_names:
            missing = sorted(set(expected_layers) - set(self.layer_names))
            extra = sorted(set(self.layer_names) - set(expected_layers))
            raise LayerscopeError(
                f"{self.path} records another layer layout than expected "
                f"(missing {missing}, unexpected {extra}, or a different order)"
            )

    def _load(self, handle: h5py.File) -> None:
        attrs = handle.attrs
        if attrs.get("format") != FORMAT:
            raise LayerscopeError(
                f"{self.path} is not a weight-change store (format attribute {attrs.get('format')!r})"
            )
        if int(attrs["format_version"]) > FORMAT_VERSION:
            raise LayerscopeError(
                f"{self.path} has store format version {attrs['format_version']}, "
                f"newer than this layerscope reads ({FORMAT_VERSION})"
            )
        self.run_id = str(attrs["run_id"])
        self.period = int(attrs["period"])
        self.provenance = json.loads(attrs["provenance"])
        self.complete = bool(attrs["complete"])
        self.n_readings = int(attrs["n_readings"])
        group = handle["layers"]
        self.layers = pd.DataFrame(
            {
                "name": group["name"].asstr()[()],
                "block": group["block"].asstr()[()],
                "shape": [tuple(json.loads(s)) for s in group["kernel_shape"].asstr()[()]],
                "n_params": group["n_params"][()],
                "n_units": group["n_units"][()],
            }
        )
        self.layer_names = list(self.layers["name"])
        ends = np.cumsum(self.layers["n_units"].to_numpy())
        self._unit_range = {
            name: (end - n, end) for name, end, n in zip(self.layer_names, ends, self.layers["n_units"])
        }
        n = self.n_readings
        self.readings = pd.DataFrame({name: handle[f"readings/{name}"][:n] for name in ("step", "epoch", "epoch_end")})
        self.has_net = "net_units" in handle
        self._summary = {
            name: handle[f"summary/{name}"][:n]
            if f"summary/{name}" in handle
            else np.full((n, len(self.layer_names)), np.nan)
            for name in SUMMARIES
        }
        self.snapshot_readings = sorted(int(key[1:]) for key in handle["snapshots"])

    def layer_summary(self) -> pd.DataFrame:
        """Long table: one row per (reading, layer) with absolute and norm-relative changes.

        Returns:
            Columns reading, step, epoch, layer, block, accumulated, period_change, their
            ``_rel`` versions (divided by the weights' L1 norm), weight_l1, net and net_rel.
        """
        n_layers = len(self.layer_names)
        acc, period, l1, net = (self._summary[name] for name in SUMMARIES)
        with np.errstate(divide="ignore", invalid="ignore"):
            acc_rel = np.where(l1 > 0, acc / l1, 0.0)
            period_rel = np.where(l1 > 0, period / l1, 0.0)
            net_rel = np.where(l1 > 0, net / l1, np.where(np.isnan(net), np.nan, 0.0))
        return pd.DataFrame(
            {
                "reading": np.repeat(np.arange(self.n_readings), n_layers),
                "step": np.repeat(self.readings["step"].to_numpy(), n_layers),
                "epoch": np.repeat(self.readings["epoch"].to_numpy(), n_layers),
                "layer": np.tile(self.layer_names, self.n_readings),
                "block": np.tile(self.layers["block"].to_numpy(), self.n_readings),
                "accumulated": acc.ravel(),
                "period_change": period.ravel(),
                "accumulated_rel": acc_rel.ravel(),
                "period_change_rel": period_rel.ravel(),
                "weight_l1": l1.ravel(),
                "net": net.ravel(),
                "net_rel": net_rel.ravel(),
            }
        )

    def reading_index(self, reading: int) -> int:
        """A reading index with Python's negative indexing, checked against the store."""
        if not -self.n_readings <= reading < self.n_readings:
            raise LayerscopeError(f"{self.path} has {self.n_readings} readings; there is no reading {reading}")
        return reading % self.n_readings

    def unit_changes(self, layer: str, reading: int = -1, mode: str = "accumulated") -> np.ndarray:
        """Change per unit of ``layer`` at ``reading``: the L1 sum over the unit's parameters.

        Args:
            layer: a recorded layer name.
            reading: a reading index, negative from the end.
            mode: ``accumulated`` (sum of |W_t - W_prev| over readings) or ``net`` (|W_t - W_0|).

        Returns:
            float32 (units,) changes.

        Raises:
            LayerscopeError: an unknown layer, mode or reading, or a store without the net change.
        """
        self._check_layer(layer)
        if mode not in MODES:
            raise LayerscopeError(f"weight-change mode must be one of {list(MODES)}, got {mode!r}")
        index = self.reading_index(reading)
        start, end = self._unit_range[layer]
        if mode == "net" and not self.has_net:
            values = np.array([np.nan])
        else:
            with h5py.File(self.path, "r") as handle:
                values = handle["units" if mode == "accumulated" else "net_units"][index, start:end]
        if mode == "net" and np.isnan(values).all():
            raise LayerscopeError(
                f"{self.path} has no net change (|W_t - W_0|) at reading {index}: written by an "
                f"older layerscope or without the net; {rerun_hint(self.path)}"
            )
        return values

    def snapshot(self, layer: str, reading: int = -1, part: str = "kernel") -> np.ndarray:
        """Full accumulated-change tensor at a snapshot reading.

        Args:
            layer: a recorded layer name.
            reading: a snapshot reading index, negative from the end.
            part: ``kernel`` or ``bias``.

        Returns:
            The tensor, in the store's snapshot dtype.

        Raises:
            LayerscopeError: an unknown layer, no snapshot at that reading, or no such part.
        """
        self._check_layer(layer)
        index = self.reading_index(reading)
        if index not in self.snapshot_readings:
            raise LayerscopeError(
                f"{self.path} has no snapshot at reading {index}; snapshots at {self.snapshot_readings}"
            )
        key = f"{_snapshot_group(index)}/{layer}/{part}"
        with h5py.File(self.path, "r") as handle:
            if key not in handle:
                raise LayerscopeError(f"{self.path} has no {part!r} snapshot for layer {layer!r}")
            return handle[key][()]

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layer_names:
            raise LayerscopeError(f"{self.path} has no layer {layer!r}; layers: {self.layer_names}")


def _resolve(path: Path) -> Path:
    """The finished store if there is one, else the ``.partial`` of an interrupted run."""
    if path.exists():
        return path
    if partial_path(path).exists():
        return partial_path(path)
    raise LayerscopeError(f"no weight-change store at {path} (nor {partial_path(path)})")
