"""Lengths of time in words, one wording wherever a reader meets them (console, estimate, README)."""

from __future__ import annotations


def rough(seconds: float) -> str:
    """Seconds up to 90 s, minutes up to 90 min, then hours to a tenth: a pace or an estimate."""
    minutes = round(seconds / 60)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def hours_minutes(seconds: float) -> str:
    """Whole hours and minutes, as a reader reads a run's length ("1 h 5 min", "42 min")."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
