"""Study B's claims (Kwak 2021) checked on the feature-map tables, as rows of the claims table.

Three claims, each read from the per-run tables the explain stage writes: each channel
shows its own feature (``feature_map_channels.csv``), last-stage maps are more alike
across images than first-stage maps (``invariance.csv``), and features appear later in
deeper stages (``onset.csv``). Each row is a dict with the fields of study A's claims
(``layerscope.results.comparisons.Claim``: claim, paper, ours, p_value, verdict, test), so
the results stage can add them to its table; the verdict is one of "holds",
"opposite", "not shown" (measured, but the runs or stages disagree or the difference
has no direction) and "not measured". These are descriptive measures on a few images
and channels, with no test of significance: the p-value is NaN.

This module reads CSV files only (no TensorFlow) and imports nothing from the results
stage, so the result tables can import it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from layerscope.core.render import read_checked_csv

DISTINCT = 0.5
"""Channels whose changes correlate below this on average (a quarter of the variance shared) show their own feature."""

OWN_FEATURE = "Study B: each channel shows its own feature"
OWN_FEATURE_PAPER = "5 representative channels per stage (first, middle, last), each showing its own feature"
OWN_FEATURE_TEST = (
    f"mean pairwise Pearson of x* - x of the shown channels over the shown images (first stage, whose change is "
    f"spatially flat: cosine of the mean colour change), beside as many random channels of the layer; own feature: "
    f"both below {DISTINCT}; opposite: the random channels at or above it (the layer's channels share one feature)"
)

INVARIANCE = "Study B: last-stage maps are more alike across images than first-stage maps"
INVARIANCE_PAPER = "the same object in different images gives varying early-stage maps but similar last-stage maps"
INVARIANCE_TEST = (
    "mean pairwise Pearson of x* over images of one class, first vs last conv layer, and Spearman rho over depth. "
    "Direction: a linear first layer's ascent adds the same change to every image (its x* - x correlate 1.0 across "
    "images), so its x* are as alike as the start images plus a shared pattern, while deeper layers add changes "
    "that depend on the image: on x*, correlation tends to fall with depth by construction, the reverse of the "
    "study's reading"
)

ONSET = "Study B: features appear later in deeper stages"
ONSET_PAPER = "features appear after about 20 / 100 / 200 training iterations at the first / middle / last stage"
ONSET_TEST = (
    "median onset over channels x images per stage: the first checkpoint from which x* - x correlates with the "
    "end-of-training map at or above the threshold ('never': not settled by the last checkpoint, counted as latest)"
)


@dataclass(frozen=True)
class StudyBFiles:
    """The per-run tables study B's claims are read from; each file's folder is named after its run.

    Attributes:
        channels: ``explain/<run>/feature_map_channels.csv`` of every explained run.
        invariance: ``explain/<run>/invariance.csv`` of every explained run.
        onset: ``explain/<run>/onset.csv`` of every onset run.
    """

    channels: Sequence[str | os.PathLike] = ()
    invariance: Sequence[str | os.PathLike] = ()
    onset: Sequence[str | os.PathLike] = ()


def study_b_claims(files: StudyBFiles | None) -> list[dict]:
    """Study B's three claims as claim rows, each with our numbers per run and a verdict ("not measured" without files).

    Raises:
        LayerscopeError: a table that cannot be read or lacks a column the claim needs.
    """
    files = files or StudyBFiles()
    return [own_feature_claim(files.channels), invariance_claim(files.invariance), onset_claim(files.onset)]


def own_feature_claim(paths: Sequence[str | os.PathLike]) -> dict:
    """Each channel shows its own feature: the shown channels' and random channels' change similarity per stage."""
    outcomes, parts = [], []
    for run, table in _tables(paths, ("stage", "change_measure", "change_corr_mean", "random_change_corr_mean")):
        stages = []
        for row in table.itertuples():
            chosen, random = row.change_corr_mean, row.random_change_corr_mean
            if not (np.isfinite(chosen) and np.isfinite(random)):
                stages.append(f"{row.stage} not measured ({row.change_measure})")
                continue
            if random >= DISTINCT:
                outcomes.append("opposite")
            else:
                outcomes.append("holds" if chosen < DISTINCT else "not shown")
            unit = " (colour cos)" if row.change_measure.startswith("cosine") else ""
            stages.append(f"{row.stage} {chosen:.2f} vs {random:.2f}{unit}")
        parts.append(f"{run}: {', '.join(stages)}")
    ours = "shown vs random channels, mean pairwise similarity of x* - x: " + "; ".join(parts)
    return _claim(OWN_FEATURE, OWN_FEATURE_PAPER, ours if parts else "no feature-map table", outcomes, OWN_FEATURE_TEST)


def invariance_direction(table: pd.DataFrame) -> tuple[str, float]:
    """Whether x* grow more alike with depth: ("holds" | "opposite" | "not shown", Spearman rho over depth).

    It holds when the last layer's x* correlate more than the first layer's and the
    correlation rises with depth overall (rho > 0); opposite when both say the reverse.
    With two layers, rho is the sign of the difference.
    """
    rows = table.sort_values("depth")
    first, last = rows["mean"].iloc[0], rows["mean"].iloc[-1]
    if len(rows) > 2 and rows["mean"].nunique() > 1:
        rho = float(rows["depth"].corr(rows["mean"], method="spearman"))
    else:
        rho = float(np.sign(last - first))
    if last > first and rho > 0:
        return "holds", rho
    if last < first and rho < 0:
        return "opposite", rho
    return "not shown", rho


def invariance_claim(paths: Sequence[str | os.PathLike]) -> dict:
    """Last-stage maps more alike across images than first-stage maps, per run (the invariance table)."""
    outcomes, parts = [], []
    for run, table in _tables(paths, ("layer", "depth", "mean", "change_mean")):
        outcome, rho = invariance_direction(table)
        outcomes.append(outcome)
        rows = table.sort_values("depth")
        first, last = rows.iloc[0], rows.iloc[-1]
        parts.append(
            f"{run}: x* correlate {first['mean']:.2f} at {first['layer']} and {last['mean']:.2f} at "
            f"{last['layer']} (rho {rho:.2f}); x* - x {first['change_mean']:.2f} and {last['change_mean']:.2f}"
        )
    ours = "; ".join(parts) if parts else "no invariance table"
    return _claim(INVARIANCE, INVARIANCE_PAPER, ours, outcomes, INVARIANCE_TEST)


def onset_claim(paths: Sequence[str | os.PathLike]) -> dict:
    """Features appear later in deeper stages: the median onset per stage ordered by depth, per run."""
    outcomes, parts = [], []
    for run, table in _tables(paths, ("stage", "depth", "onset_median", "last_step")):
        rows = table.sort_values("depth")
        onset = rows["onset_median"].fillna(math.inf).to_numpy(dtype=np.float64)
        later, earlier = onset[1:] >= onset[:-1], onset[1:] <= onset[:-1]
        if not np.isfinite(onset).any():
            outcomes.append("not shown")
        elif later.all() and onset[-1] > onset[0]:
            outcomes.append("holds")
        elif earlier.all() and onset[-1] < onset[0]:
            outcomes.append("opposite")
        else:
            outcomes.append("not shown")
        stages = ", ".join(f"{s} {_step(v)}" for s, v in zip(rows["stage"], onset))
        parts.append(f"{run}: median onset {stages} (last step {int(rows['last_step'].iloc[0])})")
    ours = "; ".join(parts) if parts else "no onset table"
    return _claim(ONSET, ONSET_PAPER, ours, outcomes, ONSET_TEST)


def _step(value: float) -> str:
    return "never" if value == math.inf else f"{value:g}"


def _claim(claim: str, paper: str, ours: str, outcomes: list[str], test: str) -> dict:
    """The claim row with the verdict over every run and stage: unanimous, else "not shown"."""
    if not outcomes:
        verdict = "not measured"
    elif len(set(outcomes)) == 1:
        verdict = outcomes[0]
    else:
        verdict = "not shown"
    return {"claim": claim, "paper": paper, "ours": ours, "p_value": math.nan, "verdict": verdict, "test": test}


def _tables(paths: Sequence[str | os.PathLike], columns: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(run, table) per file, the run being the file's folder name; each checked for ``columns``."""
    return [
        (Path(path).parent.name, read_checked_csv(Path(path), columns, "the table", "; rerun its explain rule"))
        for path in paths
    ]
