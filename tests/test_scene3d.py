"""The interactive weight-change scene: the figure data inside the written page, checked by value."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from helpers.stores import VGG_SMALL, hand_store, synthetic_store

from layerscope.core.errors import LayerscopeError
from layerscope.weights import scene3d
from layerscope.weights.store import LayerInfo
from layerscope.weights.store_writer import WeightStoreWriter

FROZEN = {"block1_conv1", "block1_conv2"}


def array(value):
    """A plotly array: a list, or a base64 typed array ({"dtype", "bdata"})."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def figure_of(page: str) -> tuple[list[dict], dict]:
    match = re.search(
        r'Plotly\.newPlot\(\s*"weight-change-scene",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"responsive"', page, re.S
    )
    assert match, "no plotly figure in the page"
    return json.loads(match.group(1)), json.loads(match.group(2))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene")
    store = synthetic_store(root / "f1.h5", VGG_SMALL, frozen=FROZEN, run_id="vgg-freeze1")
    return store, scene3d.write_scene(store, root / "scene.html", log_scale=True).read_text()


def test_decimate_bins_consecutive_units_into_means():
    values, edges = scene3d.decimate(np.arange(1.0, 7.0), 3)
    assert values.tolist() == [1.5, 3.5, 5.5] and edges.tolist() == [0, 2, 4, 6]
    values, edges = scene3d.decimate(np.array([2.0, 4.0]), 256)
    assert values.tolist() == [2.0, 4.0] and edges.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="max_units"):
        scene3d.decimate(np.ones(3), 0)


def test_page_is_offline_and_holds_both_modes(page):
    _, text = page
    assert not re.search(r"<script[^>]*\ssrc=", text)  # nothing fetched: plotly.js is inlined
    assert len(text) > 3_000_000  # plotly.js itself is inlined
    data, layout = figure_of(text)
    names = [trace["name"] for trace in data]
    for mode in ("accumulated", "net"):
        assert f"{mode}: changed units" in names and f"{mode}: unchanged (frozen)" in names
    buttons = layout["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == ["accumulated", "net"]
    for button in buttons:
        shown = [name for name, on in zip(names, button["args"][0]["visible"]) if on]
        assert shown and all(name.startswith(button["label"]) for name in shown)
    assert [t.get("visible") for t in data] == [name.startswith("accumulated") for name in names]
    assert [a["text"] for a in layout["scene"]["annotations"]] == ["block1", "block2", "head"]


ONE_READING = [
    {
        "step": 2,
        "epoch": 1,
        "epoch_end": True,
        # accumulated change per unit; every unit has 2 parameters, so the bars show half of it
        "units": [[0, 0], [0.2, 2.0, 0.0002], [20, 0.02]],
        "accumulated": [0, 2.2002, 20.02],
        "period_change": [0, 2.2002, 20.02],
        "weight_l1": [4, 6, 4],
    }
]
# per parameter: block1 frozen (0, 0); block2 0.1, 1, 1e-4; logits 10, 0.01. The top is 10.
CHANGED = np.array([0.1, 1.0, 1e-4, 10.0, 0.01])  # the changed units, in layer order


@pytest.mark.parametrize(
    ("log_scale", "colours", "heights", "range_"),
    [
        # log10, four decades below the top: [-3, 1]; 1e-4 sits at the floor; height = 3 * (log10 v + 3) / 4
        (True, [-1.0, 0.0, -3.0, 1.0, -2.0], [1.5, 2.25, 0.0, 3.0, 0.75], [-3.0, 1.0]),
        # linear from 0 to the top: colour = value, height = 3 * v / 10
        (False, CHANGED, [0.03, 0.3, 3e-5, 3.0, 0.003], [0.0, 10.0]),
    ],
)
def test_bars_show_each_units_change_per_parameter_worked_by_hand(tmp_path, log_scale, colours, heights, range_):
    store = hand_store(tmp_path / "hand.h5", ONE_READING)
    data, _ = figure_of(scene3d.write_scene(store, tmp_path / "scene.html", log_scale=log_scale).read_text())
    traces = {trace["name"]: trace for trace in data}
    bars, tiles = traces["accumulated: changed units"], traces["accumulated: unchanged (frozen)"]
    # eight corners per bar, each carrying its bar's colour value; the top four at its height
    assert array(bars["intensity"]).reshape(-1, 8)[:, 0] == pytest.approx(colours, abs=1e-5)
    slabs = np.maximum(heights, 0.02)  # a bar is drawn at least as a thin slab
    assert array(bars["z"]).reshape(-1, 8).max(axis=1) == pytest.approx(slabs, abs=1e-5)
    assert [bars["cmin"], bars["cmax"]] == pytest.approx(range_)
    assert array(tiles["z"]).reshape(-1, 8).max(axis=1) == pytest.approx([0.02, 0.02])  # the two frozen units
    assert tiles["color"] == "rgb(184,184,184)"
    hover = traces["accumulated: values"]
    assert hover["text"] == [
        "block1_conv1 unit 0: 0",
        "block1_conv1 unit 1: 0",
        "block2_conv1 unit 0: 0.1",
        "block2_conv1 unit 1: 1",
        "block2_conv1 unit 2: 0.0001",
        "logits unit 0: 10",
        "logits unit 1: 0.01",
    ]
    assert array(hover["z"]) == pytest.approx([0.0, 0.0, *heights], abs=1e-6)  # at the true height


def test_frozen_units_of_a_larger_store_are_tiles(page):
    _, text = page
    data, _ = figure_of(text)
    traces = {trace["name"]: trace for trace in data}
    tiles = traces["accumulated: unchanged (frozen)"]
    frozen_units = sum(info.n_units for info in VGG_SMALL if info.name in FROZEN)
    assert array(tiles["x"]).size == 8 * frozen_units
    assert len(traces["accumulated: values"]["text"]) == sum(info.n_units for info in VGG_SMALL)


def test_wide_layer_is_decimated_to_group_means(tmp_path):
    layers = [LayerInfo("fc1", (8, 600), True), LayerInfo("logits", (600, 3), True)]
    writer = WeightStoreWriter.create(tmp_path / "wide.h5", layers, run_id="wide", period=1)
    units = [np.arange(600, dtype=float) + 1, np.ones(3)]
    writer.append(
        step=1,
        epoch=1,
        epoch_end=True,
        units=units,
        net_units=units,
        summaries={name: np.ones(2) for name in ("accumulated", "period_change", "weight_l1")},
    )
    writer.finish()
    data, _ = figure_of(scene3d.write_scene(tmp_path / "wide.h5", tmp_path / "wide.html", max_units=100).read_text())
    hover = next(t for t in data if t["name"] == "accumulated: values")["text"]
    assert len(hover) == 100 + 3
    assert hover[0] == f"fc1 unit 0-5 (mean): {np.mean(np.arange(1, 7)) / 9:.3g}"  # 9 parameters per fc1 unit
    assert hover[-1].startswith("logits unit 2: ")


def test_empty_store_is_refused(tmp_path):
    WeightStoreWriter.create(tmp_path / "e.h5", VGG_SMALL[:1], run_id="e", period=1).finish()
    with pytest.raises(LayerscopeError, match="no readings"):
        scene3d.write_scene(tmp_path / "e.h5", tmp_path / "e.html")
