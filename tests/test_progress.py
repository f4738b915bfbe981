"""Progress read from training logs, and the logger plugin that prints it (on files, no training)."""

import datetime as dt
import io
import logging
from types import SimpleNamespace

from snakemake.settings.enums import Quietness
from snakemake_interface_logger_plugins.common import LogEvent

from layerscope.core.progress import Progress, failed_log_lines, progress_line, read_progress, tail
from snakemake_logger_plugin_layerscope import LogHandler, LogHandlerSettings

LOG = """\
I0000 00:00:1796657012.296915    2577 cudart_stub.cc:31] Could not find cuda drivers on your machine
2026-12-07 15:23:35,218 INFO layerscope.core.devices: device: CPU (no GPU visible to TensorFlow)
Epoch 1/60
56/56 - 6s - 105ms/step - accuracy: 0.5763 - loss: 1.0557 - val_accuracy: 0.5736 - val_loss: 1.0400
Epoch 2/60
56/56 - 4s - 72ms/step - accuracy: 0.5842 - loss: 1.0208 - val_accuracy: 0.6041 - val_loss: 1.0235
Epoch 3/60
"""
NOW = dt.datetime(2026, 12, 7, 15, 0)


def test_a_running_epoch_and_the_pace_of_the_finished_ones():
    progress = read_progress(LOG.splitlines())  # epochs of 6 s (tracing the graph too) and 4 s
    assert progress == Progress(epoch=3, epochs=60, finished=2, seconds_per_epoch=4.0, current_done=False)
    assert progress.seconds_left() == 58 * 4.0
    assert progress_line("train lenet5-relu-adam", progress, NOW) == (
        "train lenet5-relu-adam: epoch 3/60 running, 4.0 s per epoch, ends by 15:03 at the latest "
        "(in 4 min; early stopping may end it sooner)"
    )


def test_a_run_without_early_stopping_ends_at_its_cap_without_a_hedge():
    lines = LOG.splitlines()
    said = "2026-12-07 15:23:36,001 INFO layerscope.train.fit: no early stopping: training runs every epoch up to 60"
    lines.insert(2, said)
    progress = read_progress(lines)
    assert not progress.may_stop_early and progress.seconds_left() == 58 * 4.0
    line = progress_line("train x", progress, NOW)
    assert line == "train x: epoch 3/60 running, 4.0 s per epoch, ends by 15:03 (in 4 min)"


def test_a_finished_epoch_in_milliseconds_and_a_log_without_epochs():
    lines = [*LOG.splitlines(), "56/56 - 800ms - 7ms/step - accuracy: 0.7 - loss: 0.8"]
    progress = read_progress(lines)
    assert (progress.finished, progress.current_done, progress.seconds_per_epoch) == (3, True, (4 + 0.8) / 2)
    assert progress.seconds_left() == 57 * 2.4
    stopped = [*lines, "2026-12-07 15:25:17,104 INFO layerscope.train.fit: early stopping after epoch 3: val_loss ..."]
    assert read_progress(stopped).epochs == 3 and read_progress(stopped).seconds_left() == 0
    capped = Progress(epoch=60, epochs=60, finished=60, seconds_per_epoch=2.0, current_done=True)
    assert progress_line("train x", capped, NOW) == (
        "train x: epoch 60/60 done, 2.0 s per epoch: training over, evaluating and writing"
    )
    assert read_progress(LOG.splitlines()[:2]) is None
    first = read_progress(LOG.splitlines()[:3])
    assert progress_line("train x", first, NOW) == "train x: epoch 1/60 running (first epoch: no pace yet)"


def test_tail_reads_only_the_end_of_a_long_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail(log, lines=3) == ["line 99997", "line 99998", "line 99999"]
    assert tail(log, lines=10**6, max_bytes=100)[0] == "line 99991"  # 100 bytes end inside line 99990: dropped
    assert tail(tmp_path / "missing.log") == []


def test_a_failed_jobs_log_path_and_last_lines(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("a\nb\nTraceback: boom\n")
    assert failed_log_lines(log, 2) == [f"last 2 lines of {log}:", "    b", "    Traceback: boom"]
    assert failed_log_lines(tmp_path / "none.log", 2) == [f"log {tmp_path / 'none.log'}: not written"]


def handler(interval=0, quiet=(), dryrun=False):
    common = SimpleNamespace(stdout=False, nocolor=True, quiet=set(quiet), dryrun=dryrun, show_failed_logs=True)
    plugin = LogHandler(common, LogHandlerSettings(interval=interval, tail=2))
    plugin.console.stream = io.StringIO()
    return plugin


def record(event, **fields):
    entry = logging.LogRecord("snakemake", logging.INFO, __file__, 1, "", None, None)
    entry.__dict__.update(event=event, **fields)
    return entry


def test_the_plugin_follows_running_jobs_through_their_logs(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    plugin = handler()
    plugin.emit(record(LogEvent.JOB_INFO, jobid=4, rule_name="train", rule_msg=None, log=[str(log)],
                       wildcards={"run": "vgg16-finetune"}, input=[], output=[], local=True, is_checkpoint=False,
                       benchmark=None, reason="", priority=0, threads=2, resources={}, indent=False))  # fmt: skip
    assert plugin.progress_lines(NOW) == [
        "train vgg16-finetune: epoch 3/60 running, 4.0 s per epoch, ends by 15:03 at the latest "
        "(in 4 min; early stopping may end it sooner)"
    ]
    assert "rule train:" in plugin.console.stream.getvalue()  # Snakemake's own job block still printed
    plugin.emit(record(LogEvent.JOB_FINISHED, job_id=4, msg="Finished jobid: 4"))
    assert plugin.progress_lines(NOW) == []


def test_a_failed_job_prints_its_log_path_and_last_lines(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG + "Traceback: boom\n")
    plugin = handler()
    plugin.emit(record(LogEvent.JOB_ERROR, jobid=4, rule_name="train", rule_msg=None, msg=None, log=[str(log)],
                       input=[], output=[], conda_env=None, shellcmd=None, aux={}, indent=False))  # fmt: skip
    printed = plugin.console.stream.getvalue()
    assert "Error in rule train:" in printed
    assert printed.endswith(f"last 2 lines of {log}:\n    Epoch 3/60\n    Traceback: boom\n")
    assert printed.count("Epoch 1/60") == 0  # not the whole log


def test_progress_is_quiet_with_interval_zero_or_quiet_progress_or_a_dry_run():
    assert handler(interval=0).reporter is None
    assert handler(interval=30, quiet=[Quietness.PROGRESS]).reporter is None
    assert handler(interval=30, dryrun=True).reporter is None
    plugin = handler(interval=30)
    assert plugin.reporter.is_alive()
    plugin.close()
    plugin.reporter.join(timeout=5)
    assert not plugin.reporter.is_alive()
