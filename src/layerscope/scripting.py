"""The frame every workflow script runs in.

Output and progress bars go to the rule's ``log:`` file; a LayerscopeError is
reported as one clear line (on the terminal and in the log) instead of a
traceback, and the job fails so Snakemake removes its outputs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from layerscope.errors import LayerscopeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any script imports TensorFlow
log = logging.getLogger("layerscope")


def run_job(snakemake: Any, job: Callable[[Any], None]) -> None:
    """Run ``job(snakemake)`` with logging to ``snakemake.log[0]``; exit 1 on user errors."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    with contextlib.ExitStack() as stack:
        if log_path:
            stream = stack.enter_context(open(log_path, "a", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(stream))
            stack.enter_context(contextlib.redirect_stderr(stream))
        else:
            stream = sys.stderr
        logging.basicConfig(
            stream=stream,
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        try:
            job(snakemake)
        except LayerscopeError as err:
            log.error("%s", err)
            print(f"layerscope: rule {snakemake.rule} failed: {err}", file=sys.__stderr__)
            sys.exit(1)
        except Exception:
            log.exception("rule %s failed with an unexpected error", snakemake.rule)
            raise
