"""Snakemake logger plugin ``layerscope``: Snakemake's own console, plus the progress of running training jobs.

Every ``interval`` seconds it prints, for each running job whose log shows Keras epochs,
which job, which epoch of how many, and when it should end (:mod:`layerscope.core.progress`,
read from the job's log file in this, Snakemake's main, process). A failed job's log is
shown as its path and last ``tail`` lines instead of the whole file. Quiet with
``--logger-layerscope-interval 0`` or Snakemake's ``--quiet progress``.

Selected by ``logger: [layerscope]`` in workflow/profiles/default (Snakemake finds logger
plugins by their module name, ``snakemake_logger_plugin_<name>``).
"""

import datetime as _dt
import sys
import threading
from dataclasses import dataclass, field

from snakemake.logging import ColorizingTextHandler, DefaultFormatter
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from layerscope.core.progress import failed_log_lines, progress_line, read_progress, tail


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    """The plugin's command-line settings (``--logger-layerscope-<name>``)."""

    interval: int = field(
        default=30,
        metadata={"help": "seconds between progress lines of running training jobs (0: none)"},
    )
    tail: int = field(
        default=25,
        metadata={"help": "lines of a failed job's log shown on the console"},
    )


class LogHandler(LogHandlerBase):
    """Snakemake's console output, with progress lines of running jobs and the end of failed jobs' logs."""

    def __post_init__(self) -> None:  # noqa: D105 (the interface's set-up hook)
        settings = self.settings or LogHandlerSettings()
        self.interval, self.tail_lines = settings.interval, settings.tail
        stream = sys.stdout if self.common_settings.stdout else sys.stderr
        self.console = ColorizingTextHandler(nocolor=self.common_settings.nocolor, stream=stream)
        # The job's full log is not repeated: its path and last lines follow the error block.
        self.console.setFormatter(DefaultFormatter(self.common_settings.quiet, show_failed_logs=False))
        self.running = {}  # job id -> (job name, log paths)
        self.jobs_lock = threading.Lock()
        self.stopped = threading.Event()
        quiet = {getattr(q, "name", str(q)).lower() for q in (self.common_settings.quiet or ())}
        self.reporter = None
        if self.interval > 0 and not self.common_settings.dryrun and not quiet & {"progress", "all"}:
            self.reporter = threading.Thread(target=self._report, name="layerscope-progress", daemon=True)
            self.reporter.start()

    def emit(self, record) -> None:
        """Track running jobs, then print the record as Snakemake's console would."""
        event = getattr(record, "event", None)
        with self.jobs_lock:
            if event == LogEvent.JOB_INFO and getattr(record, "log", None):
                name = _job_name(record.rule_name, getattr(record, "wildcards", None) or {})
                self.running[record.jobid] = (name, list(record.log))
            elif event == LogEvent.JOB_FINISHED:
                self.running.pop(getattr(record, "job_id", None), None)
            elif event == LogEvent.JOB_ERROR:
                self.running.pop(getattr(record, "jobid", None), None)
        self.console.handle(record)
        if event == LogEvent.JOB_ERROR and self.common_settings.show_failed_logs:
            for path in getattr(record, "log", None) or []:
                self._write(failed_log_lines(path, self.tail_lines))

    def progress_lines(self, now: _dt.datetime) -> list[str]:
        """One line per running job whose log shows epochs."""
        with self.jobs_lock:
            jobs = list(self.running.values())
        lines = []
        for name, logs in jobs:
            for path in logs:
                if progress := read_progress(tail(path)):
                    lines.append(progress_line(name, progress, now))
                    break
        return lines

    def _report(self) -> None:
        while not self.stopped.wait(self.interval):
            lines = self.progress_lines(_dt.datetime.now())
            if lines:
                self._write([f"[{_dt.datetime.now():%H:%M:%S}] progress: {line}" for line in lines])

    def _write(self, lines: list[str]) -> None:
        with self.console._output_lock:
            self.console.stream.write("\n".join(lines) + "\n")
            self.console.flush()

    def close(self) -> None:
        """Stop the progress thread."""
        self.stopped.set()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        """It replaces Snakemake's console handler."""
        return True

    @property
    def writes_to_file(self) -> bool:
        """No file of its own."""
        return False

    @property
    def has_filter(self) -> bool:
        """Snakemake's default filter decides what reaches the console."""
        return False

    @property
    def has_formatter(self) -> bool:
        """It formats with its own console handler."""
        return True

    @property
    def needs_rulegraph(self) -> bool:
        """Not needed."""
        return False


def _job_name(rule: str, wildcards: dict) -> str:
    """``train vgg16-freeze3-momentum``: the rule and its wildcards' values."""
    return " ".join([rule, *(str(value) for value in wildcards.values())])
