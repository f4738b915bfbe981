"""The weight-change scene as an interactive 3D page you can turn (plotly, JavaScript inlined).

The Mayavi PNG (:mod:`layerscope.weights.render3d`) is one camera angle; study C's point is
seeing the layer structure and where the weights change at a glance, from any side. This
page draws the same scene with the same encoding: layers along x (small gaps inside a
block, wide ones between blocks), each layer's units on a square grid, a bar per unit whose
height and colour are its change per weight (:func:`render3d.unit_values`), on the same
scale (log over :data:`render3d.LOG_DECADES` decades with ``log_scale``), unchanged (frozen)
units as flat grey tiles. Buttons switch between the accumulated and the net change. The
plotly.js library is inlined, so the page works offline and inside Snakemake's report.

Layers wider than ``max_units`` are decimated for file size: consecutive units are binned
into ``max_units`` groups and each bar shows its group's mean (the hover text says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from layerscope.core.atomic import write_text
from layerscope.weights import render3d
from layerscope.weights.store import MODES, WeightChangeStore
from layerscope.weights.summary import open_readable

MAX_UNITS = 256
"""Bars per layer at most; wider layers show group means (VGG-16's 4096-unit fc layers)."""
_GREY = "rgb({:.0f},{:.0f},{:.0f})".format(*(255 * c for c in render3d.UNCHANGED_GREY))
# 8 corners of a unit box (x, y, z in 0/1) and its 12 triangles, as plotly's Mesh3d wants them
_CORNERS = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], dtype=float)
_TRIANGLES = np.array(
    [
        [0, 1, 3], [0, 3, 2], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 3, 7], [1, 7, 5],
    ]
)  # fmt: skip


def decimate(values: np.ndarray, max_units: int = MAX_UNITS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_units`` values: consecutive units binned, each bin's mean.

    Returns:
        The (binned) values and each bin's first unit index (one more entry: the end).
    """
    if max_units < 1:
        raise ValueError(f"max_units must be positive, got {max_units}")
    edges = np.linspace(0, values.size, min(values.size, max_units) + 1).round().astype(int)
    return np.add.reduceat(values, edges[:-1]) / np.diff(edges), edges


def _boxes(x: np.ndarray, y: np.ndarray, width: float, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of one box per bar: centred at (x, y), ``width`` wide, from z=0 up."""
    size = np.stack([np.full_like(heights, width), np.full_like(heights, width), heights], axis=1)
    base = np.stack([x - width / 2, y - width / 2, np.zeros_like(x)], axis=1)
    vertices = base[:, None, :] + _CORNERS[None, :, :] * size[:, None, :]
    faces = _TRIANGLES[None, :, :] + 8 * np.arange(len(x))[:, None, None]
    return vertices.reshape(-1, 3), faces.reshape(-1, 3)


def _mode_traces(go, store: WeightChangeStore, mode: str, log_scale: bool, max_units: int) -> list:
    """The coloured bars, the grey tiles and the hover points of one mode."""
    values = render3d.unit_values(store, -1, True, mode)
    scale = render3d.Scale.of(values, log_scale)
    offsets = render3d.x_offsets(list(store.layers["block"]))
    parts = {"bars": [], "tiles": [], "hover": []}
    for (name, layer_values), x0 in zip(zip(store.layers["name"], values), offsets):
        shown, edges = decimate(layer_values, max_units)
        gx, gy, cell = render3d.unit_grid(shown.size)
        heights = scale.heights(shown)
        changed = shown > 0
        for key, keep in (("bars", changed), ("tiles", ~changed)):
            if keep.any():
                flat = np.where(keep, np.maximum(heights, 0.02), 0.02)[keep]  # a tile is a thin slab
                colour = np.repeat(scale.colours(shown)[keep], 8)
                parts[key].append((*_boxes(x0 + gx[keep], gy[keep], 0.9 * cell, flat), colour))
        units = [f"{a}" if b - a == 1 else f"{a}-{b - 1} (mean)" for a, b in zip(edges[:-1], edges[1:])]
        parts["hover"] += [
            (x0 + x, y, h, f"{name} unit {u}: {v:.3g}") for x, y, h, u, v in zip(gx, gy, heights, units, shown)
        ]
    low, high = scale.range
    unit = f"log10 {mode} / weight" if log_scale else f"{mode} / weight"
    traces = []
    for key in ("bars", "tiles"):
        if not parts[key]:
            continue
        vertices, faces, colour, start = [], [], [], 0
        for v, f, c in parts[key]:
            vertices.append(v)
            faces.append(f + start)
            colour.append(c)
            start += len(v)
        # float32 and 16-bit indices where they fit: plotly ships typed arrays, so this halves the page's data
        v = np.concatenate(vertices).astype(np.float32)
        f = np.concatenate(faces).astype(np.uint16 if start <= np.iinfo(np.uint16).max else np.uint32)
        common = {"x": v[:, 0], "y": v[:, 1], "z": v[:, 2], "i": f[:, 0], "j": f[:, 1], "k": f[:, 2]}
        if key == "bars":
            traces.append(
                go.Mesh3d(
                    **common,
                    intensity=np.concatenate(colour).astype(np.float32),
                    colorscale="Viridis",
                    cmin=low,
                    cmax=high,
                    colorbar={"title": {"text": unit}, "len": 0.6},
                    flatshading=True,
                    hoverinfo="skip",
                    name=f"{mode}: changed units",
                )
            )
        else:
            traces.append(go.Mesh3d(**common, color=_GREY, hoverinfo="skip", name=f"{mode}: unchanged (frozen)"))
    x, y, z, text = zip(*parts["hover"])
    traces.append(
        go.Scatter3d(
            x=np.array(x, dtype=np.float32),
            y=np.array(y, dtype=np.float32),
            z=np.array(z, dtype=np.float32),
            mode="markers",
            marker={"size": 2, "opacity": 0},
            text=text,
            hoverinfo="text",
            name=f"{mode}: values",
        )
    )
    return traces


def _block_labels(store: WeightChangeStore) -> list[dict]:
    """One label per block below its plates (a single-layer block shows its layer's name)."""
    blocks = list(store.layers["block"])
    offsets = render3d.x_offsets(blocks)
    labels = []
    for block in dict.fromkeys(blocks):
        members = [i for i, b in enumerate(blocks) if b == block]
        centre = (offsets[members[0]] + offsets[members[-1]] + 1.0) / 2
        labels.append({"x": centre, "y": -0.3, "z": 0, "text": block, "showarrow": False, "font": {"size": 12}})
    return labels


def write_scene(
    store: WeightChangeStore | str | os.PathLike,
    out_html: str | os.PathLike,
    *,
    log_scale: bool = False,
    max_units: int = MAX_UNITS,
) -> Path:
    """Write one run's weight change at its last reading as a standalone interactive HTML page.

    Args:
        store: the run's store, or its path.
        out_html: where to write the page.
        log_scale: bar heights and colours on a log scale, as in the PNG.
        max_units: the most bars per layer (see :func:`decimate`).

    Returns:
        ``out_html`` as a Path.

    Raises:
        LayerscopeError: an unreadable store or one with no readings.
    """
    import plotly.graph_objects as go

    store = open_readable(store)
    per_mode = {mode: _mode_traces(go, store, mode, log_scale, max_units) for mode in MODES}
    traces = [trace for mode in MODES for trace in per_mode[mode]]
    titles = {
        mode: f"{store.run_id}: {render3d.describe(mode, store.period)}<br>{render3d.reading_caption(store, -1)}"
        for mode in MODES
    }
    buttons = []
    for mode in MODES:
        visible = [m == mode for m in MODES for _ in per_mode[m]]
        buttons.append(
            {"label": mode, "method": "update", "args": [{"visible": visible}, {"title.text": titles[mode]}]}
        )
    first = MODES[0]
    for trace in traces:
        trace.visible = trace.name.startswith(first)
    figure = go.Figure(traces)
    figure.update_layout(
        title={"text": titles[first], "x": 0.5},
        showlegend=False,
        height=700,
        margin={"l": 0, "r": 0, "t": 70, "b": 0},
        updatemenus=[{"buttons": buttons, "type": "buttons", "direction": "right", "x": 0.02, "y": 1.0}],
        annotations=[
            {
                "text": "grey: unchanged (frozen)",
                "x": 0.98,
                "y": 0.02,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
            }
        ],
        scene={
            "aspectmode": "data",
            "xaxis": {"title": {"text": "layers (input to output)"}, "showticklabels": False},
            "yaxis": {"title": {"text": "units"}, "showticklabels": False},
            "zaxis": {"title": {"text": "change"}, "showticklabels": False},
            "annotations": _block_labels(store),
            "camera": {"eye": {"x": -1.1, "y": -2.3, "z": 1.5}},  # the whole scene, from the front left
        },
    )
    page = figure.to_html(include_plotlyjs=True, full_html=True, div_id="weight-change-scene")
    write_text(out_html, page)
    return Path(out_html)
