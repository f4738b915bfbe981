"""One exception type for problems a user can fix (bad config, bad data, bad file).

Scripts catch it and print its message alone, so users see the culprit named,
never a traceback from deep inside a library.
"""

from __future__ import annotations

import os
from pathlib import Path


class LayerscopeError(Exception):
    """A user-facing error whose message names the culprit (file, key, value)."""


def rerun_hint(path: str | os.PathLike) -> str:
    """How to rewrite a damaged output: a training run's (``runs/<run>/``) or any job's."""
    path = Path(path)
    if path.parent.parent.name == "runs":
        return (
            f"rerun the training of {path.parent.name}: snakemake --forcerun {path} "
            f"(or snakemake --forcerun train to retrain every run)"
        )
    return f"rerun the job that wrote it: snakemake --forcerun {path}"
