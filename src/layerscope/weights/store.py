"""The accumulated-weight-change store (study C, Yang and Park 2023): one chunked, gzip-compressed HDF5 file per run.

Layout (format ``layerscope.weight_changes``, version 2; version 1 lacks ``net``)::

    /                      attrs: format, format_version, run_id, period, provenance (JSON),
                                  snapshot_dtype, n_readings, complete
    /layers/{name, block, kernel_shape (JSON), has_bias, n_params, n_units}   one row per layer
    /readings/{step, epoch, epoch_end}                                        one row per reading
    /summary/{accumulated, period_change, weight_l1, net}  (readings x layers) float64, L1 sums
    /units                     (readings x units of all layers, in layer order) float32, accumulated
    /net_units                 (readings x units) float32, net change |W_t - W_0|
    /initial/<layer>/{kernel, bias}                    W_0 of each layer that trains, from its first fit, float32
    /snapshots/r<reading>/<layer>/{kernel, bias}       full accumulated tensors (float16 default)

A unit is an output channel (last kernel axis); its change is the L1 sum over the other
kernel axes plus its bias. Two modes (our reading of study C, Yang and Park 2023): ``accumulated``
is the sum over readings (every ``period`` steps and at epoch ends) of ``|W_t - W_prev|``,
so it grows with the path the weights travel and depends on the period; ``net`` is
``|W_t - W_0|``, where the weights ended up, independent of the period (net <= accumulated).

The writer (:mod:`layerscope.weights.store_writer`) appends to ``<path>.partial``, flushes after every reading and bumps
``n_readings`` last, so a crash leaves a readable store of the readings so far;
``finish`` sets ``complete`` and renames it to ``<path>``. The reader opens either.
At each epoch end the full float32 accumulators go to ``<path>.resume.npz`` (removed by
``finish``), so training resumed after a crash continues the store exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from layerscope.core.blocks import block_label
from layerscope.core.errors import LayerscopeError, rerun_hint

FORMAT = "layerscope.weight_changes"
FORMAT_VERSION = 2
SUMMARIES = ("accumulated", "period_change", "weight_l1", "net")
MODES = ("accumulated", "net")
"""What a unit's value can be: the summed path of its weights, or their net displacement."""
COMPRESSION = {
    "compression": "gzip",
    "compression_opts": 1,
    "shuffle": True,
}  # level 4+ saves ~1%, costs 30%
STR = h5py.string_dtype()


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


def snapshot_group(reading: int) -> str:
    """The HDF5 group holding a reading's full snapshot tensors."""
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
        key = f"{snapshot_group(index)}/{layer}/{part}"
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
