"""The one way every stage writes a matplotlib figure: atomically, at one resolution.

A half-written PNG must never look complete (temp file, then rename), and figures that
sit side by side in the report should share one resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

from layerscope.core.atomic import atomic_path

FIGURE_DPI = 120


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` (a matplotlib Figure) to ``path`` atomically at :data:`FIGURE_DPI`; returns the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=FIGURE_DPI)
    return Path(path)
