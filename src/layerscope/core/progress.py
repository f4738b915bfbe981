"""Where a running training job is, read from its log: epoch, seconds per epoch, when it should end.

A training job logs Keras' epoch lines (``Epoch 12/60``, then ``56/56 - 23s - ...`` when the
epoch ends) into its log file. Snakemake's console says only how many jobs are done, so the
logger plugin (``snakemake_logger_plugin_layerscope``) reads the end of each running job's
log with :func:`tail` and prints :func:`progress_line` every so often: the jobs themselves
never write to the terminal behind Snakemake's back.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from layerscope.core.durations import rough

_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)\s*$")
# Keras' verbose=2 summary of a finished epoch: "56/56 - 23s - 410ms/step - accuracy: ..."
_EPOCH_END = re.compile(r"^\d+/\d+ - (\d+(?:\.\d+)?)(m?s) ")
# The fit loop's own lines when a run ends before its cap (layerscope.train.fit).
_STOPPED = re.compile(r"early stopping after epoch|training diverged in epoch")
_NO_EARLY_STOP = re.compile(r"no early stopping: training runs every epoch up to \d+")


@dataclass(frozen=True)
class Progress:
    """A training job's place in its epochs.

    Attributes:
        epoch: the last epoch begun, 1-based.
        epochs: the epoch cap (the last epoch, once the log says the run stopped early).
        finished: epochs finished in the lines read.
        seconds_per_epoch: mean seconds of those finished epochs, the first (which also
            traces the graph) left out once there are others (None: none finished yet).
        current_done: whether epoch ``epoch`` has finished.
        may_stop_early: False once the log says the run has no early stopping.
    """

    epoch: int
    epochs: int
    finished: int
    seconds_per_epoch: float | None
    current_done: bool
    may_stop_early: bool = True

    def seconds_left(self) -> float | None:
        """Seconds until the epoch cap at the mean epoch's pace (early stopping may end sooner)."""
        if self.seconds_per_epoch is None:
            return None
        done = self.epoch if self.current_done else self.epoch - 1
        return max(self.epochs - done, 0) * self.seconds_per_epoch


def read_progress(lines: list[str]) -> Progress | None:
    """The :class:`Progress` told by a training log's lines (None: no epoch begun yet).

    Args:
        lines: the end of the log, enough to hold the last epoch lines.
    """
    epoch = epochs = None
    seconds: list[float] = []
    current_done = stopped = False
    may_stop_early = True
    for line in lines:
        if match := _EPOCH.match(line.strip()):
            epoch, epochs, current_done = int(match.group(1)), int(match.group(2)), False
        elif (match := _EPOCH_END.match(line.strip())) and epoch is not None:
            value = float(match.group(1))
            seconds.append(value / 1000 if match.group(2) == "ms" else value)
            current_done = True
        elif _STOPPED.search(line):
            stopped = True
        elif _NO_EARLY_STOP.search(line):
            may_stop_early = False
    if epoch is None:
        return None
    timed = seconds[1:] or seconds  # the first epoch also traces the graph: left out once others are done
    mean = sum(timed) / len(timed) if timed else None
    return Progress(epoch, epoch if stopped else epochs, len(seconds), mean, current_done, may_stop_early)


def tail(path: str | os.PathLike, lines: int = 200, max_bytes: int = 1 << 16) -> list[str]:
    """The last ``lines`` lines of a text file, reading at most its last ``max_bytes`` (none if it is missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    found = text.splitlines()
    if size > max_bytes and found:
        found = found[1:]  # the first line read may be cut
    return found[-lines:]


def progress_line(job: str, progress: Progress, now: _dt.datetime) -> str:
    """One console line: the job, its epoch of how many, its pace and when it should end at the latest."""
    state = "done" if progress.current_done else "running"
    line = f"{job}: epoch {progress.epoch}/{progress.epochs} {state}"
    left = progress.seconds_left()
    if left is None:
        return line + " (first epoch: no pace yet)"
    if left == 0:
        return f"{line}, {_pace(progress.seconds_per_epoch)} per epoch: training over, evaluating and writing"
    end = (now + _dt.timedelta(seconds=left)).strftime("%H:%M")
    if not progress.may_stop_early:
        return f"{line}, {_pace(progress.seconds_per_epoch)} per epoch, ends by {end} (in {rough(left)})"
    return (
        f"{line}, {_pace(progress.seconds_per_epoch)} per epoch, ends by {end} at the latest "
        f"(in {rough(left)}; early stopping may end it sooner)"
    )


def failed_log_lines(path: str | os.PathLike, lines: int) -> list[str]:
    """A failed job's log path and its last ``lines`` lines, for the console."""
    if not Path(path).is_file():
        return [f"log {path}: not written"]
    return [f"last {lines} lines of {path}:", *("    " + line for line in tail(path, lines))]


def _pace(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
