"""Record how much every layer's weights move during training (study C, Yang and Park 2023).

Every ``period`` steps and at each epoch end the recorder adds ``|W_t - W_prev|`` into a
per-parameter accumulator (our reading of study C's accumulated change; it depends on the
period, since back-and-forth moves between readings cancel) and also reads the net change
``|W_t - W_0|`` from the weights at the first reading, which does not. The previous and
initial weights and the accumulator live on the device as ``tf.Variable``s and one
compiled ``tf.function`` updates the layers the current ``fit`` trains (frozen layers'
figures are read once per fit), so a reading costs one pass over the trained weights and
moves only per-unit sums to the host; full tensors are copied out only at snapshot readings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from layerscope.core.errors import LayerscopeError
from layerscope.weights.store import SUMMARIES, LayerInfo
from layerscope.weights.store_writer import WeightStoreWriter

log = logging.getLogger(__name__)

DEFAULT_PERIOD = 20
"""Steps between readings; keeps the recording overhead under 1% of a training step
(see ``benchmarks/bench_weight_changes.py``)."""


def recorded_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers with a kernel, in model order (frozen ones included), nested models flattened."""
    found: list[keras.layers.Layer] = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found.extend(recorded_layers(layer))
        elif getattr(layer, "kernel", None) is not None:
            found.append(layer)
    names = [layer.name for layer in found]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise LayerscopeError(f"model {model.name!r} has several layers named {duplicates}")
    return found


def recorded_layer_names(model: keras.Model) -> list[str]:
    """The layer list a store of ``model`` must have (for ``WeightChangeStore(expected_layers=)``)."""
    return [layer.name for layer in recorded_layers(model)]


class _DeviceAccumulator:
    """Previous weights and accumulated changes as device variables, updated in one call.

    Only the layers that can move in the current ``fit`` (see :meth:`activate`) are read
    on the device: a frozen layer's figures stay what they were when the fit began, so
    they are taken once then, and a depth-4 run reads block 5 and the head, not all of VGG-16.
    """

    def __init__(self, layers: Sequence[keras.layers.Layer]):
        self._weights = [[v for v in (layer.kernel, getattr(layer, "bias", None)) if v is not None] for layer in layers]
        self._prev, self._acc, self._initial = [], [], []
        for weights in self._weights:
            prevs, accs, initials = [], [], []
            for w in weights:
                with tf.device(w.value.device):  # next to the weight it follows
                    prevs.append(tf.Variable(_value(w), trainable=False))
                    accs.append(tf.Variable(tf.zeros_like(prevs[-1]), trainable=False))
                    initials.append(tf.Variable(prevs[-1], trainable=False))
            self._prev.append(prevs)
            self._acc.append(accs)
            self._initial.append(initials)
        self._units = [int(layer.kernel.shape[-1]) for layer in layers]
        self.activate([True] * len(layers))

    def activate(self, moving: Sequence[bool]) -> None:
        """Read only the layers flagged in ``moving`` on the device from now on.

        The others must not change until the next call: their accumulated change, weight
        norm and net change per unit are read once here, and their period change is zero.
        """
        self._moving = [i for i, on in enumerate(moving) if on]
        self._still = {i: self._unit_figures(i) for i, on in enumerate(moving) if not on}
        self._update_fn = tf.function(self._update) if self._moving else None  # XLA was 50% slower on CPU

    def _unit_figures(self, i: int) -> list[np.ndarray]:
        """[accumulated, period change (0), |W|, |W - W_0|] per unit of a layer that stays still."""
        acc, weights, initial = self._acc[i], self._weights[i], self._initial[i]
        figures = [
            sum(_unit_sums(a) for a in acc),
            tf.zeros([self._units[i]]),
            sum(_unit_sums(tf.abs(_value(w))) for w in weights),
            sum(_unit_sums(tf.abs(_value(w) - w0)) for w, w0 in zip(weights, initial)),
        ]
        return [x.numpy().astype(np.float64) for x in figures]

    def read(self) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
        """Accumulate since the last read and return the changes.

        Returns:
            The accumulated and the net change per unit of each layer, and per-layer sums
            (accumulated, period change, weight L1 norm, net).
        """
        per_layer = [[None] * len(self._units) for _ in SUMMARIES]
        if self._moving:
            values = self._update_fn().numpy().astype(np.float64)
            bounds = np.cumsum([self._units[i] * len(SUMMARIES) for i in self._moving])[:-1]
            for i, block in zip(self._moving, np.split(values, bounds)):
                for k, x in enumerate(np.split(block, len(SUMMARIES))):
                    per_layer[k][i] = x
        for i, figures in self._still.items():
            for k, x in enumerate(figures):
                per_layer[k][i] = x
        summaries = {name: np.array([u.sum() for u in units]) for name, units in zip(SUMMARIES, per_layer)}
        return per_layer[0], per_layer[3], summaries

    def _update(self) -> tf.Tensor:
        """Accumulate the moving layers, then return their [accumulated, period change, |W|, |W - W_0|] per unit.

        One vector, layer after layer, so the host fetches one small array.
        """
        parts = []
        for i in self._moving:
            sums = [0.0] * len(SUMMARIES)
            for w, prev, acc, initial in zip(self._weights[i], self._prev[i], self._acc[i], self._initial[i]):
                current = _value(w)
                delta = tf.abs(current - prev)
                total = acc.assign_add(delta)
                prev.assign(current)
                for k, x in enumerate((total, delta, tf.abs(current), tf.abs(current - initial))):
                    sums[k] = sums[k] + _unit_sums(x)
            parts.extend(sums)
        return tf.concat(parts, axis=0)

    def sync(self) -> None:
        """Take the current weights as the reference.

        Changes made between fits (weight restores, loading) then do not count as training.
        """
        for weights, prevs in zip(self._weights, self._prev):
            for w, prev in zip(weights, prevs):
                prev.assign(_value(w))

    def load(
        self,
        accumulators: Sequence[tuple[np.ndarray, np.ndarray | None]],
        initial: Sequence[tuple[np.ndarray, np.ndarray | None]] | None = None,
    ) -> None:
        """Restore accumulated changes (and W_0 of the layers that have one) saved by an interrupted run."""
        for accs, (kernel, bias) in zip(self._acc, accumulators, strict=True):
            for acc, value in zip(accs, (kernel, bias)):
                acc.assign(value)
        for initials, kept in zip(self._initial, initial or [], strict=initial is not None):
            for variable, value in zip(initials, kept or ()):  # None: not trained yet, W_0 is the weights
                variable.assign(value)
        self.activate([i in self._moving for i in range(len(self._units))])  # the still layers' figures moved

    @property
    def moving(self) -> list[int]:
        """Indices of the layers the current fit trains."""
        return list(self._moving)

    def initial(self, layers: Iterable[int]) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """The reference weights W_0 (kernel, bias) of the layers at these indices, copied to the host."""
        host = {}
        for i in layers:
            kernel, *bias = self._initial[i]
            host[i] = (kernel.numpy(), bias[0].numpy() if bias else None)
        return host

    def snapshot(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Accumulated (kernel, bias) tensors per layer, copied to the host.

        A layer that has not moved yet gets read-only zeros that take no memory.
        """
        tensors = []
        for i, accs in enumerate(self._acc):
            unmoved = i in self._still and not self._still[i][0].any()
            arrays = [np.broadcast_to(np.float32(0), tuple(a.shape)) if unmoved else a.numpy() for a in accs]
            tensors.append((arrays[0], arrays[1] if len(arrays) > 1 else None))
        return tensors


def _unit_sums(x: tf.Tensor) -> tf.Tensor:
    """Sum over all axes but the last (the unit axis), as a matrix product with ones.

    On CPU this runs ~3x faster than ``reduce_sum`` over leading axes.
    """
    if len(x.shape) == 1:
        return x
    matrix = tf.reshape(x, [-1, x.shape[-1]])
    return tf.reshape(tf.matmul(tf.ones([1, matrix.shape[0]], x.dtype), matrix), [-1])


def _value(variable) -> tf.Tensor:
    """A Keras variable's value as a float32 tensor.

    Mixed-precision models keep float32 variables; the cast is a no-op then.
    """
    return tf.cast(tf.convert_to_tensor(variable.value), tf.float32)


class WeightChangeRecorder(keras.callbacks.Callback):
    """Keras callback writing the accumulated weight change of every kernel layer to a store.

    The recording behind study C (Yang and Park 2023). Several ``fit`` calls append to one
    store; each ends complete. A ``fit`` resuming an interrupted run (``initial_epoch`` > 0,
    in a new process) continues the interrupted store from the accumulators saved at the
    last epoch end.

    Args:
        store_path: the HDF5 store to write (see :class:`layerscope.weights.store.WeightChangeStore`).
        period: training steps between readings.
        snapshot_readings: ``"epoch_end"``, ``"final"`` or reading indices at which the full
            per-parameter tensors are stored; the final reading always gets one.
        model: the model whose layers are recorded when ``fit`` runs on another model sharing
            its layers (training the tail on cached features); None: the model being fitted.
        run_id: the run's id, stored as an attribute.
        provenance: provenance stored with the data.
        snapshot_dtype: the float dtype of the stored snapshots.

    Raises:
        LayerscopeError: ``period`` < 1, unknown ``snapshot_readings``, or a non-float ``snapshot_dtype``;
            at train begin, a model with no kernel layer or with duplicate layer names.
    """

    def __init__(
        self,
        store_path: str | os.PathLike,
        period: int = DEFAULT_PERIOD,
        snapshot_readings: str | Iterable[int] = "epoch_end",
        model: keras.Model | None = None,
        run_id: str = "",
        provenance: Mapping | None = None,
        snapshot_dtype: str = "float16",
    ):
        """Check the settings; the layers are found and the store opened when training begins."""
        super().__init__()
        if not isinstance(period, (int, np.integer)) or isinstance(period, bool) or period < 1:
            raise LayerscopeError(f"weight-change period must be a positive number of steps, got {period!r}")
        if isinstance(snapshot_readings, str):
            if snapshot_readings not in ("epoch_end", "final"):
                raise LayerscopeError(
                    f"snapshot_readings must be 'epoch_end', 'final' or reading indices, got {snapshot_readings!r}"
                )
            self._snapshot_at: str | frozenset[int] = snapshot_readings
        else:
            self._snapshot_at = frozenset(int(i) for i in snapshot_readings)
        if np.dtype(snapshot_dtype).kind != "f":
            raise LayerscopeError(f"snapshot_dtype must be a float type, got {snapshot_dtype!r}")
        self.store_path = os.fspath(store_path)
        self.period = int(period)
        self.run_id = run_id
        self._recorded_model = model
        self._provenance = dict(provenance or {})
        self._snapshot_dtype = snapshot_dtype
        self._device: _DeviceAccumulator | None = None
        self._recorded: list[keras.layers.Layer] = []
        self._writer: WeightStoreWriter | None = None
        self._layers: list[LayerInfo] = []
        self._step = self._epoch_base = self._last_step = 0
        self._epoch = 0
        self.last_reading: dict | None = None
        """The latest reading: ``layers`` (LayerInfo), per-unit accumulated ``units`` and ``summaries``."""

    def on_train_begin(self, logs=None):
        """Set up the device accumulators on the first fit; later fits resync them and reopen the store.

        Either way only the layers this ``fit`` trains are read on the device.
        """
        if self._device is None:
            target = self._recorded_model or self.model
            layers = recorded_layers(target)
            if not layers:
                raise LayerscopeError(f"model {target.name!r} has no layer with a kernel to record")
            self._device = _DeviceAccumulator(layers)
            self._recorded = layers
            self._layers = [
                LayerInfo(x.name, tuple(x.kernel.shape), getattr(x, "bias", None) is not None) for x in layers
            ]
        else:
            self._device.sync()
            self._writer = WeightStoreWriter.reopen(self.store_path)
        trained = {id(v) for v in self.model.trainable_weights}
        self._device.activate([id(layer.kernel) in trained for layer in self._recorded])
        if self._writer is not None:  # a later fit: layers it unfreezes get their W_0 now
            self._write_initial()

    def on_epoch_begin(self, epoch, logs=None):
        """Open the store at the first epoch, which tells whether ``fit`` resumes."""
        if self._writer is None:
            self._open_store(epoch)
        self._epoch = epoch + 1
        self._epoch_base = self._step

    def _open_store(self, first_epoch: int) -> None:
        """A new store, or the interrupted one when ``fit`` resumes at a later epoch.

        An interrupted store is cut back to that epoch's start and its accumulators restored.
        """
        if first_epoch > 0:
            resumed = WeightStoreWriter.resume(self.store_path, [x.name for x in self._layers], first_epoch)
            if resumed is not None:
                self._writer, self._step, accumulators = resumed
                self._last_step = self._step
                initial = self._writer.initial()
                if initial is None:
                    log.warning(
                        "%s keeps no initial weights; the net change of the resumed run is "
                        "measured from the resumed weights",
                        self.store_path,
                    )
                self._device.load(accumulators, initial)
                return
            self._step = self._last_step = first_epoch * int(self.params.get("steps") or 0)
            log.warning(
                "no weight-change store to resume at epoch %d (%s); starting a new one at step %d, "
                "earlier changes are not in it",
                first_epoch + 1,
                self.store_path,
                self._step,
            )
        self._writer = WeightStoreWriter.create(
            self.store_path,
            self._layers,
            run_id=self.run_id,
            period=self.period,
            provenance=self._provenance,
            snapshot_dtype=self._snapshot_dtype,
        )
        self._write_initial()

    def _write_initial(self) -> None:
        """Keep W_0 of the layers this fit trains that the store has none of yet.

        A layer is written when it first trains: until then its weights are its W_0, so a
        depth-5 run keeps the head's W_0, not all of VGG-16's (about 53 MB and 1.5 s).
        """
        kept = self._writer.initial_layers()
        new = [i for i in self._device.moving if self._layers[i].name not in kept]  # copied to the host only if new
        self._writer.write_initial({self._layers[i].name: weights for i, weights in self._device.initial(new).items()})

    def on_train_batch_end(self, batch, logs=None):
        """Read when the step crosses a multiple of ``period``."""
        self._step = self._epoch_base + batch + 1
        if self._step // self.period > self._last_step // self.period:
            self._read(epoch_end=False)

    def on_epoch_end(self, epoch, logs=None):
        """Read and mark the epoch end, snapshot if asked, and save the resume point."""
        if self._step > self._last_step:
            self._read(epoch_end=True)
        elif self._writer.n_readings:
            self._writer.mark_epoch_end(self._writer.n_readings - 1)
        last = self._writer.n_readings - 1
        if last < 0:
            return
        tensors = self._device.snapshot()
        if self._snapshot_at == "epoch_end" and not self._writer.has_snapshot(last):
            self._writer.write_snapshot(last, tensors)
        self._writer.save_resume_point(last, tensors)

    def on_train_end(self, logs=None):
        """Take the last reading and its snapshot, and finish the store so it is complete."""
        if self._step > self._last_step:
            self._read(epoch_end=False)
        last = self._writer.n_readings - 1
        if last >= 0 and not self._writer.has_snapshot(last):
            self._writer.write_snapshot(last, self._device.snapshot())
        self._writer.finish()

    def _read(self, epoch_end: bool) -> None:
        units, net_units, summaries = self._device.read()
        index = self._writer.append(
            step=self._step,
            epoch=self._epoch,
            epoch_end=epoch_end,
            summaries=summaries,
            units=units,
            net_units=net_units,
        )
        self._last_step = self._step
        self.last_reading = {"layers": self._layers, "units": units, "summaries": summaries}
        if isinstance(self._snapshot_at, frozenset) and index in self._snapshot_at:
            self._writer.write_snapshot(index, self._device.snapshot())
