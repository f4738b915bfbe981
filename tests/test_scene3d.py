"""The interactive weight-change scene: the figure data inside the written page, checked by value."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from helpers.stores import VGG_SMALL, synthetic_store

from layerscope.core.errors import LayerscopeError
from layerscope.weights import render3d, scene3d
from layerscope.weights.store import LayerInfo, WeightChangeStore
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


def test_bars_are_the_pngs_values_on_its_scale(page):
    store_path, text = page
    data, _ = figure_of(text)
    store = WeightChangeStore(store_path)
    values = render3d.unit_values(store, -1, True, "accumulated")
    scale = render3d.Scale.of(values, True)
    traces = {trace["name"]: trace for trace in data}
    bars, tiles = traces["accumulated: changed units"], traces["accumulated: unchanged (frozen)"]
    changed = np.concatenate([v[v > 0] for v in values])
    # eight corners per bar, each carrying its bar's colour value
    assert array(bars["intensity"]).reshape(-1, 8)[:, 0] == pytest.approx(scale.colours(changed), abs=1e-4)
    assert [bars["cmin"], bars["cmax"]] == pytest.approx(list(scale.range))
    assert array(bars["z"]).max() == pytest.approx(render3d.HEIGHT, abs=1e-3)
    frozen_units = sum(info.n_units for info in VGG_SMALL if info.name in FROZEN)
    assert array(tiles["x"]).size == 8 * frozen_units and tiles["color"] == "rgb(184,184,184)"
    assert array(tiles["z"]).max() == pytest.approx(0.02)
    hover = traces["accumulated: values"]
    assert len(hover["text"]) == sum(info.n_units for info in VGG_SMALL)
    assert hover["text"][0].startswith("block1_conv1 unit 0: 0")


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
