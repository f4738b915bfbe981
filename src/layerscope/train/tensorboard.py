"""TensorBoard event files of a training run (``training.tensorboard``).

Keras' own callback writes loss, accuracy and learning rate per epoch (``train/`` and
``validation/``); :class:`WeightChangeSummaries` adds the per-layer weight change the
recorder measured (``weight_changes/``): the accumulated and the net change relative to the
layer's weight L1 norm as scalars, and each layer's per-unit accumulated change per weight
as a histogram. Open with ``tensorboard --logdir results/<experiment>/runs``.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from layerscope.weights.recorder import WeightChangeRecorder


class WeightChangeSummaries(keras.callbacks.Callback):
    """Write the recorder's last reading at every epoch end; list it after the recorder.

    Args:
        log_dir: the run's TensorBoard folder; events go to ``<log_dir>/weight_changes``.
        recorder: the run's weight-change recorder, whose epoch-end reading is written.
    """

    def __init__(self, log_dir: str | os.PathLike, recorder: WeightChangeRecorder):
        """Keep where to write; the writer opens when training begins."""
        super().__init__()
        self.log_dir = Path(log_dir) / "weight_changes"
        self.recorder = recorder
        self._writer = None

    def on_train_begin(self, logs=None):
        """Open the event writer."""
        self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch, logs=None):
        """Scalars and histograms of the reading the recorder took at this epoch's end."""
        reading = self.recorder.last_reading
        if reading is None:
            return
        with self._writer.as_default():
            for i, layer in enumerate(reading["layers"]):
                norm = reading["summaries"]["weight_l1"][i] or np.nan
                for mode in ("accumulated", "net"):
                    value = reading["summaries"][mode][i] / norm
                    tf.summary.scalar(f"weight_change_{mode}/{layer.name}", value, step=epoch)
                per_weight = reading["units"][i] / (layer.n_params / layer.n_units)
                tf.summary.histogram(f"unit_change_per_weight/{layer.name}", per_weight, step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        """Close the writer, so every event is on disk."""
        self._writer.close()


def tensorboard_callbacks(log_dir: str | os.PathLike, recorder: WeightChangeRecorder) -> list[keras.callbacks.Callback]:
    """Keras' TensorBoard callback (epoch scalars, no graph, no profiler) and the weight-change summaries."""
    return [
        keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0, update_freq="epoch"),
        WeightChangeSummaries(log_dir, recorder),
    ]
