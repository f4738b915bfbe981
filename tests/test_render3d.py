"""Weight-change figures: real offscreen renders of small synthetic stores, checked not blank."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
from helpers.stores import LENET, VGG_SMALL, hand_store, synthetic_store
from PIL import Image, ImageSequence

from layerscope.core.errors import LayerscopeError
from layerscope.weights import plots, render3d
from layerscope.weights.plots import plot_block_lines, plot_period_heatmap
from layerscope.weights.store import LayerInfo, WeightChangeStore
from layerscope.weights.store_writer import WeightStoreWriter
from layerscope.weights.summary import block_summary

SIZE = (640, 400)


def assert_picture(path, size):
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert pixels.shape == (size[1], size[0], 3)
    assert pixels.std() > 10, f"{path} looks blank"
    return pixels


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    return {
        "lenet": synthetic_store(root / "lenet.h5", LENET, run_id="lenet5-tanh-sgd"),
        "freeze1": synthetic_store(
            root / "f1.h5", VGG_SMALL, frozen={"block1_conv1", "block1_conv2"}, run_id="vgg-freeze1"
        ),
        "freeze2": synthetic_store(
            root / "f2.h5", VGG_SMALL, frozen={layer.name for layer in VGG_SMALL[:4]}, run_id="vgg-freeze2", seed=1
        ),
        "interrupted": synthetic_store(root / "cut.h5", VGG_SMALL, readings=3, finish=False, run_id="vgg-cut"),
    }


def test_render_run(stores, tmp_path):
    out = render3d.render_run(stores["lenet"], tmp_path / "lenet.png", size=SIZE)
    assert_picture(out, SIZE)
    out = render3d.render_run(stores["freeze2"], tmp_path / "f2.png", size=SIZE, log_scale=True, reading=1)
    assert_picture(out, SIZE)
    net = render3d.render_run(stores["freeze2"], tmp_path / "net.png", size=SIZE, log_scale=True, mode="net")
    assert_picture(net, SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "f2.png",
        "lenet.png",
        "net.png",
    ]  # no temp files left


def test_rendered_values_are_per_unit_means_by_hand(tmp_path):
    """A dense layer 2 -> 3 with bias (3 parameters per unit) and a conv 2x2x1 -> 2 with bias
    (5 per unit): the bars show each unit's L1 change divided by its parameter count."""
    layers = [LayerInfo("fc", (2, 3), True), LayerInfo("block1_conv1", (2, 2, 1, 2), True)]
    writer = WeightStoreWriter.create(tmp_path / "hand.h5", layers, run_id="hand", period=7)
    units, net = (
        [np.array([3.0, 6.0, 0.0]), np.array([1.0, 10.0])],
        [np.array([1.5, 0.0, 0.0]), np.array([1.0, 2.5])],
    )
    writer.append(
        step=7,
        epoch=1,
        epoch_end=True,
        units=units,
        net_units=net,
        summaries={
            "accumulated": np.array([9.0, 11.0]),
            "period_change": np.array([9.0, 11.0]),
            "weight_l1": np.array([9.0, 10.0]),
            "net": np.array([1.5, 3.5]),
        },
    )
    store = WeightChangeStore(writer.finish())
    per_param = render3d.unit_values(store)
    np.testing.assert_allclose(per_param[0], [1.0, 2.0, 0.0])
    np.testing.assert_allclose(per_param[1], [0.2, 2.0])
    net_values = render3d.unit_values(store, mode="net")
    np.testing.assert_allclose(net_values[0], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(net_values[1], [0.2, 0.5])
    np.testing.assert_allclose(render3d.unit_values(store, per_param=False)[1], [1.0, 10.0])
    assert render3d.describe("accumulated", store.period) == (
        "accumulated change: sum of abs(W_t - W_prev) over readings every 7 steps, per weight"
    )
    assert render3d.describe("net", store.period) == "net change abs(W_t - W_0) per weight"
    with pytest.raises(LayerscopeError, match="mode must be one of"):
        render3d.unit_values(store, mode="total")


def test_store_without_net_change_names_the_rerun(tmp_path):
    path = synthetic_store(tmp_path / "runs" / "old" / "weight_changes.h5", LENET[:2], net=False)
    store = WeightChangeStore(path)
    assert store.unit_changes("c1").shape == (6,)
    with pytest.raises(LayerscopeError, match="no net change.*forcerun"):
        store.unit_changes("c1", mode="net")
    assert store.layer_summary()["net"].isna().all()


def test_interrupted_store_renders_and_warns(stores, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="layerscope.weights"):
        out = render3d.render_run(stores["interrupted"], tmp_path / "cut.png", size=SIZE)
    assert_picture(out, SIZE)
    assert "interrupted run" in caplog.text
    store = WeightChangeStore(stores["interrupted"])
    assert render3d.reading_caption(store, -1) == "reading 3/3 (step 15, epoch 2) (incomplete)"


def test_render_comparison_and_animation(stores, tmp_path):
    size = (640, 480)
    out = render3d.render_comparison([stores["freeze1"], stores["freeze2"]], tmp_path / "cmp.png", size=size)
    assert_picture(out, size)
    net = render3d.render_comparison(
        [stores["freeze1"], stores["freeze2"]], tmp_path / "net.png", size=size, mode="net"
    )
    assert np.abs(assert_picture(net, size) - assert_picture(out, size)).mean() > 0.5
    with pytest.raises(LayerscopeError, match="lenet.h5 records other layers"):
        render3d.render_comparison([stores["freeze1"], stores["lenet"]], tmp_path / "bad.png")

    gif = render3d.render_animation(stores["freeze1"], tmp_path / "anim.gif", size=SIZE, max_frames=3)
    frames = [np.asarray(f.convert("RGB"), dtype=np.float64) for f in ImageSequence.Iterator(Image.open(gif))]
    assert len(frames) == 3 and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert all(f.std() > 10 for f in frames)
    assert np.abs(frames[0] - frames[-1]).mean() > 0.5  # bars grow between readings
    title = frames[0][: SIZE[1] // 5]  # the two title lines, fonts scaled to the frame's width
    assert (title[:, :4] == 255).all() and (title[:, -4:] == 255).all(), "the title runs off the frame"


def test_scale_draws_unchanged_units_flat_and_below_the_colour_range():
    values = np.array([0.0, 1e-6, 0.5, 2.0])
    for log in (False, True):
        scale = render3d.Scale.of([values], log)
        heights, colours = scale.heights(values), scale.colours(values)
        assert heights[0] == 0 and colours[0] < scale.range[0]
        assert heights[-1] == pytest.approx(render3d.HEIGHT)
        assert np.all(np.diff(heights) >= 0)
    assert render3d.Scale.of([values], True).heights(values)[1] == 0  # below the log floor


def test_layout_separates_blocks():
    offsets = render3d.x_offsets(["block1", "block1", "block2", "head"])
    assert np.allclose(np.diff(offsets), [1 + render3d.PLATE_GAP, 1 + render3d.BLOCK_GAP, 1 + render3d.BLOCK_GAP])
    gx, gy, cell = render3d.unit_grid(10)
    assert cell == pytest.approx(0.25) and gx.max() < 1 and gy.max() < 1


def test_missing_offscreen_opengl_names_the_packages(monkeypatch):
    monkeypatch.setattr(render3d, "_loadable", lambda name: False)
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    with pytest.raises(LayerscopeError, match="libegl1 libegl-mesa0 libgl1-mesa-dri.*libosmesa6"):
        render3d.prepare_offscreen()
    monkeypatch.setattr(render3d, "_loadable", lambda name: "EGL" in name)
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    with pytest.raises(LayerscopeError, match="vtkOSOpenGLRenderWindow.*libosmesa6"):
        render3d.prepare_offscreen()
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW")
    assert render3d.prepare_offscreen() == "vtkEGLRenderWindow"


def test_empty_store_is_refused(tmp_path):
    path = synthetic_store(tmp_path / "empty.h5", LENET, readings=0)
    with pytest.raises(LayerscopeError, match="empty.h5 has no readings"):
        render3d.render_run(path, tmp_path / "x.png")
    with pytest.raises(LayerscopeError, match="empty.h5 has no readings"):
        plot_block_lines(path, tmp_path / "x.png")


TWO_READINGS = [  # block1 frozen; every layer's weight L1 norm 4, 10 and 20
    {
        "step": 2,
        "epoch": 1,
        "epoch_end": False,
        "units": [[0, 0], [0.5, 0.5, 0], [2, 2]],
        "accumulated": [0, 1, 4],
        "period_change": [0, 1, 4],
        "net": [0, 0.5, 3],
        "weight_l1": [4, 10, 20],
    },
    {
        "step": 4,
        "epoch": 1,
        "epoch_end": True,
        "units": [[0, 0], [2, 2, 0], [3, 3]],
        "accumulated": [0, 4, 6],
        "period_change": [0, 3, 2],
        "net": [0, 2, 4],
        "weight_l1": [4, 10, 20],
    },
]


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the 2D plots save, kept for reading back what they draw."""
    figures = []
    original = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or original(fig, path))
    return figures


def test_period_heatmap_draws_each_layers_period_change_over_its_norm(tmp_path, drawn):
    store = hand_store(tmp_path / "hand.h5", TWO_READINGS)
    plot_period_heatmap(store, tmp_path / "heat.png")
    (ax, _colorbar) = drawn[0].axes
    mesh = ax.collections[0].get_array().reshape(3, 2)  # layers x readings
    assert mesh.mask[0].all() and not mesh.mask[1:].any()  # the frozen layer is grey, not a colour
    np.testing.assert_allclose(mesh[1:].data, [[1 / 10, 3 / 10], [4 / 20, 2 / 20]])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["block1_conv1", "block2_conv1", "logits"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4"]
    assert ax.get_title() == "hand: weight change per period"


def test_block_lines_draw_each_blocks_change_over_its_norm(tmp_path, drawn):
    incomplete = hand_store(tmp_path / "hand.h5", TWO_READINGS, finish=False)
    plot_block_lines(incomplete, tmp_path / "lines.png")
    period, accumulated = drawn[0].axes

    def lines(ax):
        return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}

    # block sums over the block's weight L1 norm (one layer a block): 1/10, 3/10; 4/20, 2/20; ...
    for ax, expected in (
        (period, {"block2": [0.1, 0.3], "head": [0.2, 0.1]}),
        (accumulated, {"block2": [0.1, 0.4], "head": [0.2, 0.3]}),
    ):
        drawn_lines = lines(ax)
        assert set(drawn_lines) == {"block1 (unchanged)", *expected}
        for block, values in expected.items():
            np.testing.assert_allclose(drawn_lines[block].get_xdata(), [2, 4])
            np.testing.assert_allclose(drawn_lines[block].get_ydata(), values)
        assert ax.get_yscale() == "log"
    nets = [line for line in accumulated.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata())]
    np.testing.assert_allclose(sorted(tuple(line.get_ydata()) for line in nets), [(0.05, 0.2), (0.15, 0.2)])
    assert drawn[0]._suptitle.get_text().splitlines()[0].endswith("(dotted: epoch ends)")
    assert "(incomplete)" in drawn[0]._suptitle.get_text()


def test_block_summary_is_relative_to_block_norm(stores):
    store = WeightChangeStore(stores["freeze1"])
    sums = block_summary(store).set_index(["reading", "block"])
    layers = store.layer_summary().query("reading == 0 and block == 'block2'")
    expected = layers["period_change"].sum() / layers["weight_l1"].sum()
    assert sums.loc[(0, "block2"), "period_change_rel"] == pytest.approx(expected)
    assert sums.loc[(0, "block1"), "accumulated_rel"] == 0


def test_block_summary_keeps_a_diverged_layer_not_finite(tmp_path):
    """A NaN in one layer makes its block NaN (drawn as diverged), not the sum of its other layers."""
    writer = WeightStoreWriter.create(tmp_path / "nan.h5", VGG_SMALL, run_id="nan", period=5)
    units = [np.full(info.n_units, 0.1) for info in VGG_SMALL]
    accumulated = np.array([1.0, np.nan, 2.0, 2.0, 1.0, 1.0])
    writer.append(
        step=5,
        epoch=1,
        epoch_end=True,
        units=units,
        summaries={"accumulated": accumulated, "period_change": accumulated, "weight_l1": np.full(6, 10.0)},
    )
    writer.finish()
    sums = block_summary(WeightChangeStore(tmp_path / "nan.h5")).set_index("block")
    assert np.isnan(sums.loc["block1", "accumulated_rel"]) and np.isnan(sums.loc["block1", "period_change_rel"])
    assert sums.loc["block2", "accumulated_rel"] == pytest.approx(4.0 / 20.0)


def test_draws_in_a_child_process_once_tensorflow_is_loaded(stores, tmp_path, caplog, monkeypatch):
    """TensorFlow's LLVM symbols crash Mesa's renderer in the same process, so a process that
    has loaded TensorFlow draws in a child. TensorFlow is only marked as loaded here: importing
    it into a process that has drawn with VTK segfaults (as this test did when its file ran
    alone); under ``make test`` the workers have imported it while collecting other modules."""
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", types.ModuleType("tensorflow")))
    drawn_here = []
    monkeypatch.setattr(render3d, "_Scene", lambda *a, **k: drawn_here.append(1))  # must not draw in this process

    with caplog.at_level(logging.WARNING, logger="layerscope.weights"):
        out = render3d.render_run(WeightChangeStore(stores["interrupted"]), tmp_path / "child.png", size=SIZE)
    assert out == tmp_path / "child.png"
    assert_picture(out, SIZE)
    assert "interrupted run" in caplog.text
    with pytest.raises(LayerscopeError, match="lenet.h5 records other layers"):
        render3d.render_comparison([stores["freeze1"], stores["lenet"]], tmp_path / "bad.png")
    assert not drawn_here
