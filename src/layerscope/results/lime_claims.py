"""Study A's judgement of LIME as claim rows: stability across seeds and agreement with CAM, old fill beside new.

The lime_checks rule measures, per explained run and image, LIME's seed-to-seed rank
correlation and its agreement with CAM and Grad-CAM, under black (study A's and lime's
tutorial setting) and the chosen fill (:mod:`layerscope.explain.lime_checks`). Here the
images of every explained run are pooled and each judgement tested over them, one row
per fill.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from layerscope.core.errors import LayerscopeError
from layerscope.core.spread import mean_interval
from layerscope.results.comparisons import Claim, verdict

STABLE_RHO = 0.7
"""The seed-to-seed rank correlation from which LIME counts as stable: where a correlation
is commonly read as strong (about half the rank variance shared)."""
STABILITY_TEST = f"t-test over images against rho = {STABLE_RHO}"
AGREEMENT_TEST = "paired t-test over images"


def read_lime_checks(paths: Sequence[str | os.PathLike]) -> pd.DataFrame | None:
    """The lime_checks rule's tables stacked, or None for none; one line naming a damaged file."""
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_csv(path))
        except (OSError, ValueError) as err:
            message = f"{path}: unreadable LIME checks ({type(err).__name__}: {err}); rerun the lime_checks rule"
            raise LayerscopeError(message) from None
    return pd.concat(frames, ignore_index=True) if frames else None


def lime_claims(checks: pd.DataFrame | None) -> list[Claim]:
    """Study A's two judgements of LIME, checked with black and with each run's chosen fill.

    "LIME is unstable" holds when the seed-to-seed Spearman is significantly below
    :data:`STABLE_RHO`; "LIME is far from how inspectors see defects" holds when LIME
    agrees with CAM significantly less than Grad-CAM does (CAM and Grad-CAM stand in for
    the inspectors' reading, which study A found them close to). The chosen fill may
    differ between runs (each run's own measurement); runs whose chosen fill is black
    count under black only.

    Args:
        checks: the stacked lime_checks tables (:func:`read_lime_checks`), or None.

    Returns:
        Two claims for black, two for the chosen fills if any run chose another; none without checks.
    """
    if checks is None or checks.empty:
        return []
    from layerscope.explain.fills import FILL_LABELS  # lazily: the Snakefile imports the claims' module

    black = checks[checks["fill"] == "black"]
    claims = [
        _stability(black, "black fill, study A's and lime's tutorial setting", None),
        _agreement(black, "black fill, study A's and lime's tutorial setting"),
    ]
    chosen = checks[checks["fill"] != "black"]
    if not chosen.empty:
        per_run = chosen.drop_duplicates("run")
        label = "the fill measured per run: " + ", ".join(
            f"{FILL_LABELS[fill]} ({run})" for run, fill in zip(per_run["run"], per_run["fill"])
        )
        claims += [_stability(chosen, label, black.set_index(["run", "image"])), _agreement(chosen, label)]
    return claims


def _where(rows: pd.DataFrame) -> str:
    return (
        f"{rows['image'].count()} images of {rows['run'].nunique()} runs, {int(rows['seeds'].iloc[0])} seeds of "
        f"{int(rows['samples'].iloc[0])} samples"
    )


def _text(values) -> str:
    mean, low, high, n = mean_interval(values)
    if n == 0:
        return "not measured"
    return f"{mean:.2f}" + (f" [{low:.2f}, {high:.2f}]" if not np.isnan(low) else "")


def _t_test(values, mean: float) -> float:
    """Two-sided p of a one-sample t-test; NaN without spread (no scale to test on)."""
    from scipy import stats  # lazily: the Snakefile imports the claims' module

    values = np.asarray(values, dtype=np.float64)
    return float(stats.ttest_1samp(values, mean).pvalue) if np.ptp(values) > 0 else float("nan")


def _stability(rows: pd.DataFrame, label: str, black: pd.DataFrame | None) -> Claim:
    claim = f"LIME is unstable: superpixel weights under another seed rank-correlate below {STABLE_RHO} ({label})"
    paper = "unstable (judged by eye)"
    values = rows["stability"].dropna().to_numpy()
    if len(values) < 2:
        return Claim(claim, paper, f"{len(values)} image(s) measured", np.nan, "not measured", STABILITY_TEST)
    ours = f"Spearman between seeds {_text(values)} over {_where(rows)}"
    if black is not None:
        paired = rows.set_index(["run", "image"])["stability"] - black["stability"]
        ours += f"; minus black {_text(paired.dropna())} (paired p = {_t_test(paired.dropna(), 0.0):.2g})"
    p_value = _t_test(values, STABLE_RHO)
    return Claim(claim, paper, ours, p_value, verdict(STABLE_RHO - values.mean(), p_value), STABILITY_TEST)


def _agreement(rows: pd.DataFrame, label: str) -> Claim:
    claim = f"LIME is far from how inspectors see defects: it agrees with CAM less than Grad-CAM does ({label})"
    paper = "far from the inspectors' reading, where CAM and Grad-CAM came close (judged by eye)"
    layers = ", ".join(dict.fromkeys(rows["layer"]))
    difference = (rows["gradcam_cam"] - rows["lime_cam"]).dropna().to_numpy()
    ours = (
        f"Spearman over superpixels: LIME vs CAM {_text(rows['lime_cam'])}, LIME vs Grad-CAM ({layers}) "
        f"{_text(rows['lime_gradcam'])}, Grad-CAM vs CAM {_text(rows['gradcam_cam'])}; {_where(rows)}"
    )
    if len(difference) < 2:
        return Claim(claim, paper, ours + "; CAM not measured", np.nan, "not measured", AGREEMENT_TEST)
    p_value = _t_test(difference, 0.0)
    ours += f"; Grad-CAM minus LIME {_text(difference)}"
    return Claim(claim, paper, ours, p_value, verdict(difference.mean(), p_value), AGREEMENT_TEST)
