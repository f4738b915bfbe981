"""3D figures of weight change with Mayavi, offscreen (study C, Yang and Park 2023).

Layers stand one after another along x, each on a unit square whose units form a
``ceil(sqrt(n_units))`` grid; a bar per unit rises with its change and is coloured by it.
Units that never changed (frozen layers) are flat grey tiles. Two modes (our reading of
study C): ``accumulated``, the sum over readings every ``period`` steps of |W_t - W_prev|,
which depends on the period; ``net``, |W_T - W_0|, which does not. By default a unit's
value is its mean change per parameter (the unit's L1 sum over its kernel slice and bias,
divided by its parameter count), so layers of very different fan-in are comparable;
``per_param=False`` draws the plain sum.

Mayavi is imported lazily, after :func:`prepare_offscreen` has found an OpenGL that works
without a display: VTK segfaults instead of raising when there is none. In a process that
has imported TensorFlow the figures are drawn in a fresh interpreter instead: TensorFlow
exports its own LLVM symbols, and Mesa's software renderer (llvmpipe) binds to them and
crashes (segfault while rendering, abort at exit).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from layerscope.core.atomic import atomic_path
from layerscope.core.errors import LayerscopeError
from layerscope.weights.store import MODES, WeightChangeStore
from layerscope.weights.summary import open_readable

log = logging.getLogger(__name__)

_EGL_LIBS = ("libEGL.so.1", "libEGL_mesa.so.0")
_OSMESA_LIBS = ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")
_EGL_WINDOW, _OSMESA_WINDOW = "vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow"
_PACKAGES = "Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri (Mesa EGL) or libosmesa6 (OSMesa)"

PLATE_GAP, BLOCK_GAP, ROW_GAP = 0.25, 0.9, 0.9
HEIGHT = 3.0
"""Bar height of the largest value, in plate widths."""
LOG_DECADES = 4
"""With ``log_scale``, values below ``max / 10**LOG_DECADES`` are drawn flat."""
ZOOM, ZOOM_ROWS = 1.4, 1.25
"""Camera zoom after fitting the scene, which leaves wide margins."""
UNCHANGED_GREY = (0.72, 0.72, 0.72)
FONT_WIDTH = 1400
"""Figure width (pixels) the font sizes are chosen for; narrower figures (the GIF) scale them down."""
_COLORMAP = "viridis"


def _loadable(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def prepare_offscreen() -> str:
    """Select an offscreen OpenGL for VTK (EGL, else OSMesa) before Mayavi is imported.

    A window class already chosen in ``VTK_DEFAULT_OPENGL_WINDOW`` is kept when its
    library is there.

    Returns:
        The VTK render-window class chosen.

    Raises:
        LayerscopeError: naming the packages to install, when neither library is present
            (or the requested one is missing).
    """
    os.environ["ETS_TOOLKIT"] = "null"
    available = {
        _EGL_WINDOW: all(_loadable(lib) for lib in _EGL_LIBS),
        _OSMESA_WINDOW: any(_loadable(lib) for lib in _OSMESA_LIBS),
    }
    requested = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")
    if requested in available:
        if not available[requested]:
            raise LayerscopeError(
                f"VTK_DEFAULT_OPENGL_WINDOW={requested} but its OpenGL library is missing; install the {_PACKAGES}"
            )
        return requested
    for window, present in available.items():
        if present:
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = window
            return window
    raise LayerscopeError(f"no offscreen OpenGL for Mayavi (no EGL, no OSMesa library found); install the {_PACKAGES}")


def _mlab():
    prepare_offscreen()
    from mayavi import mlab

    mlab.options.offscreen = True
    return mlab


@dataclass(frozen=True)
class Scale:
    """Maps values to bar heights and colour scalars, shared by every panel of a figure."""

    vmax: float
    log: bool

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray], log: bool) -> Scale:
        """The scale whose top is the largest value in ``arrays``."""
        vmax = max((float(a.max()) for a in arrays if a.size), default=0.0)
        return cls(vmax if vmax > 0 else 1.0, log)

    @property
    def range(self) -> tuple[float, float]:
        """(low, high) of the colour scalars: ``LOG_DECADES`` decades below the top on a log scale."""
        if self.log:
            top = math.log10(self.vmax)
            return top - LOG_DECADES, top
        return 0.0, self.vmax

    def colours(self, values: np.ndarray) -> np.ndarray:
        """Colour scalars; unchanged units fall below the range and draw grey."""
        low, high = self.range
        scaled = np.log10(np.maximum(values, 10.0**low)) if self.log else values.astype(np.float64)
        return np.where(values > 0, scaled, low - (high - low))

    def heights(self, values: np.ndarray) -> np.ndarray:
        """Bar heights, 0 for unchanged units up to ``HEIGHT`` for the top of the scale."""
        low, high = self.range
        scaled = self.colours(values)
        return np.clip((scaled - low) / (high - low), 0.0, 1.0) * HEIGHT


def unit_values(
    store: WeightChangeStore, reading: int = -1, per_param: bool = True, mode: str = "accumulated"
) -> list[np.ndarray]:
    """What the bars show: per layer, each unit's change at ``reading``.

    Args:
        store: the run's weight-change store.
        reading: a reading index, negative from the end.
        per_param: divide by the unit's parameter count (kernel slice plus bias:
            n_params / n_units of the layer), so layers of different fan-in compare.
        mode: ``accumulated`` or ``net``.

    Returns:
        float64 (units,) values, one array per layer in store order.
    """
    values = []
    for row in store.layers.itertuples():
        units = store.unit_changes(row.name, reading, mode).astype(np.float64)
        values.append(units / (row.n_params / row.n_units) if per_param else units)
    return values


_values = unit_values


def describe(mode: str, period: int | str) -> str:
    """What a figure in ``mode`` shows, with the recording period, for its title.

    VTK's text drops "|", so absolute values are written abs().
    """
    if mode not in MODES:
        raise LayerscopeError(f"weight-change mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "net":
        return "net change abs(W_t - W_0) per weight"
    return f"accumulated change: sum of abs(W_t - W_prev) over readings every {period} steps, per weight"


def x_offsets(blocks: Sequence[str]) -> np.ndarray:
    """Left edge of each layer's plate: small gaps inside a block, wide ones between blocks."""
    offsets, x = [], 0.0
    for i, block in enumerate(blocks):
        if i:
            x += 1.0 + (PLATE_GAP if block == blocks[i - 1] else BLOCK_GAP)
        offsets.append(x)
    return np.array(offsets)


def unit_grid(n_units: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit centres on a square grid in the unit square, and the cell width."""
    side = math.ceil(math.sqrt(n_units))
    cell = 1.0 / side
    index = np.arange(n_units)
    return (index % side + 0.5) * cell, (index // side + 0.5) * cell, cell


class _Scene:
    """One Mayavi figure: one row of layer plates per run, bars updatable for animation."""

    def __init__(
        self,
        mlab,
        layers,
        n_rows: int,
        scale: Scale,
        size: tuple[int, int],
        per_param: bool,
        mode: str = "accumulated",
    ):
        self.mlab, self.scale = mlab, scale
        self.font_scale = size[0] / FONT_WIDTH
        self.figure = mlab.figure(size=size, bgcolor=(1, 1, 1), fgcolor=(0, 0, 0))
        self.figure.scene.disable_render = True
        self.offsets = x_offsets(list(layers["block"]))
        grids = [unit_grid(int(n)) for n in layers["n_units"]]
        self.rows = [self._bars(r, grids) for r in range(n_rows)]
        self._block_labels(layers, n_rows)
        title = f"{mode} / weight" if per_param else f"{mode} / unit"
        title = f"log10 {title}" if scale.log else title
        bar = mlab.colorbar(self.rows[0], title=title, orientation="vertical", nb_labels=5, label_fmt="%.2g")
        bar.scalar_bar.unconstrained_font_size = True
        bar.title_text_property.font_size = self._font(16)
        bar.label_text_property.font_size = self._font(14)
        # bottom left stays empty: the camera looks along the layers from the left
        bar.scalar_bar_representation.position = (0.05, 0.04)
        bar.scalar_bar_representation.position2 = (0.07, 0.32)
        note = mlab.text(0.72, 0.03, "grey: unchanged (frozen)", color=(0.35, 0.35, 0.35))
        note.actor.text_scale_mode = "none"
        note.property.font_size = self._font(14)
        self.title = mlab.text(0.5, 0.88, "_", color=(0, 0, 0))  # two lines: what, and which reading
        self.title.actor.text_scale_mode = "none"
        self.title.property.font_size = self._font(22)
        self.title.property.justification = "centered"

    def _font(self, points: int) -> int:
        """A font size chosen for a figure :data:`FONT_WIDTH` pixels wide, scaled to this one's width."""
        return max(1, round(points * self.font_scale))

    def _row_y(self, row: int) -> float:
        return -row * (1.0 + ROW_GAP)

    def _bars(self, row: int, grids):
        """One glyph for a whole row of layers: a cube per unit, scaled by its vector.

        The vector is (0.9 cell, 0.9 cell, bar height), so one Mayavi pipeline draws every
        layer; a pipeline per layer cost seconds of set-up per figure.
        """
        x = np.concatenate([x0 + gx for x0, (gx, _, _) in zip(self.offsets, grids)])
        y = self._row_y(row) + np.concatenate([gy for _, gy, _ in grids])
        width = np.concatenate([np.full(gx.size, 0.9 * cell) for gx, _, cell in grids])
        n = x.size
        source = self.mlab.pipeline.vector_scatter(x, y, np.zeros(n), width, width, np.zeros(n), scalars=np.zeros(n))
        low, high = self.scale.range
        glyph = self.mlab.pipeline.glyph(source, mode="cube", colormap=_COLORMAP, vmin=low, vmax=high)
        glyph.glyph.glyph_source.glyph_position = "tail"
        glyph.glyph.glyph_source.glyph_source.center = (0.0, 0.0, 0.5)
        glyph.glyph.glyph.orient = False
        glyph.glyph.glyph.clamping = False
        glyph.glyph.glyph.scale_factor = 1.0
        glyph.glyph.color_mode = "color_by_scalar"
        glyph.glyph.scale_mode = "scale_by_vector_components"
        lut = glyph.module_manager.scalar_lut_manager.lut
        lut.use_below_range_color = True
        lut.below_range_color = (*UNCHANGED_GREY, 1.0)
        return glyph

    def _block_labels(self, layers, n_rows: int) -> None:
        """One label per block, under the front row; a single-layer block shows its layer name."""
        blocks = list(layers["block"])
        y = self._row_y(n_rows - 1) - 0.25
        for block in dict.fromkeys(blocks):
            members = [i for i, b in enumerate(blocks) if b == block]
            centre = (self.offsets[members[0]] + self.offsets[members[-1]] + 1.0) / 2
            text = self.mlab.text(centre, y, block, z=0.0, color=(0, 0, 0))
            text.actor.text_scale_mode = "none"
            text.property.font_size = self._font(15)
            text.property.justification = "centered"
            text.property.vertical_justification = "top"

    def row_label(self, row: int, label: str) -> None:
        """Name a row in the gap behind its first plate, where it stays inside the picture."""
        text = self.mlab.text(0.0, self._row_y(row) + 1.1, label, z=0.0, color=(0, 0, 0))
        text.actor.text_scale_mode = "none"
        text.property.font_size = self._font(14)

    def show(self, row: int, values: Sequence[np.ndarray]) -> None:
        self.figure.scene.disable_render = True
        row_values = np.concatenate(values)
        self.rows[row].mlab_source.trait_set(w=self.scale.heights(row_values), scalars=self.scale.colours(row_values))

    def frame(self, title: str) -> None:
        """Fit the camera to what is shown, then :meth:`redraw`."""
        single = len(self.rows) == 1
        elevation = 62 if single else 40  # steeper over several rows, so front rows hide less
        self.mlab.view(azimuth=-70, elevation=elevation, distance=10.0, focalpoint="auto", figure=self.figure)
        self.figure.scene.reset_zoom()  # fit the bounds along the chosen direction
        self.figure.scene.camera.zoom(ZOOM if single else ZOOM_ROWS)
        self.redraw(title)

    def redraw(self, title: str) -> None:
        """Set the title and render (needed before saving, or axes and text come out wrong)."""
        self.title.text = title
        self.figure.scene.disable_render = False
        self.figure.scene.render()

    def picture(self) -> Image.Image:
        """The frame last rendered, as an RGB image."""
        return Image.fromarray(self.mlab.screenshot(figure=self.figure, mode="rgb", antialiased=False))

    def save(self, out_png: str | os.PathLike) -> Path:
        """Write the frame last rendered as a PNG.

        The frame itself, not ``mlab.savefig``, which renders the scene again: about 1 s
        for a VGG-16 figure, and its picture differs from the frame in a few edge pixels.
        """
        with atomic_path(out_png) as tmp:
            self.picture().save(tmp, format="PNG")
        return Path(out_png)

    def close(self) -> None:
        self.mlab.close(self.figure)
        gc.collect()


def _isolated_from_tensorflow(function):
    """Run ``function`` in a fresh interpreter when TensorFlow is loaded in this one."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if "tensorflow" not in sys.modules:
            return function(*args, **kwargs)
        return _run_in_child(function.__name__, args, kwargs)

    return wrapper


def _plain(value):
    """Arguments as JSON: stores and paths become path strings."""
    if isinstance(value, WeightChangeStore):
        return str(value.path)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _run_in_child(name: str, args, kwargs) -> Path:
    """Call ``name`` in a child interpreter; relay its log records, result and user errors."""
    code = (  # the child starts Mayavi as a rule's job does, at the job's collector threshold
        "import sys; from layerscope.core.scripting import use_job_gc_threshold; use_job_gc_threshold(); "
        "from layerscope.weights import render3d; render3d._child_main(sys.argv[1])"
    )
    payload = json.dumps([name, _plain(list(args)), {k: _plain(v) for k, v in kwargs.items()}])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, env=env)
    result = None
    for line in done.stdout.splitlines():
        kind, _, message = line.partition("\t")
        if kind == "RESULT":
            result = Path(message)
        elif kind == "USER_ERROR":
            raise LayerscopeError(message)
        elif isinstance(logging.getLevelName(kind), int):
            log.log(logging.getLevelName(kind), "%s", message)
    if done.returncode or result is None:
        raise RuntimeError(f"drawing {name} in a child process failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return result


def _child_main(payload: str) -> None:
    """Entry point of the child: log records and the outcome go to stdout, one per line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s\t%(message)s"))
    logging.getLogger("layerscope").addHandler(handler)  # the store opener's warnings too
    name, args, kwargs = json.loads(payload)
    try:
        result = getattr(sys.modules[__name__], name).__wrapped__(*args, **kwargs)
    except LayerscopeError as err:
        print(f"USER_ERROR\t{err}")
        return
    print(f"RESULT\t{result}")


def reading_caption(store: WeightChangeStore, reading: int) -> str:
    """Which reading a figure shows ("reading 3/3 (step 15, epoch 2)"), and whether its run was interrupted."""
    index = store.reading_index(reading)
    row = store.readings.iloc[index]
    text = f"reading {index + 1}/{store.n_readings} (step {row.step}, epoch {row.epoch})"
    return text + ("" if store.complete else " (incomplete)")


@_isolated_from_tensorflow
def render_run(
    store: WeightChangeStore | str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    reading: int = -1,
    log_scale: bool = False,
    per_param: bool = True,
    size: tuple[int, int] = (1400, 800),
    mode: str = "accumulated",
) -> Path:
    """Draw one run's change at ``reading`` (default: the last) to a PNG.

    Args:
        store: the run's store, or its path.
        out_png: where to write the PNG.
        reading: a reading index, negative from the end.
        log_scale: bar heights and colours on a log scale (the top :data:`LOG_DECADES` decades).
        per_param: show the mean change per parameter of each unit, not its sum.
        size: the image size in pixels (width, height).
        mode: ``accumulated`` or ``net``.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: an unreadable store or one with no readings, an unknown ``mode``,
            no offscreen OpenGL, or a reading the store does not have.
    """
    store = open_readable(store)
    what = describe(mode, store.period)
    mlab = _mlab()
    values = _values(store, reading, per_param, mode)
    scene = _Scene(mlab, store.layers, 1, Scale.of(values, log_scale), size, per_param, mode)
    try:
        scene.show(0, values)
        scene.frame(f"{store.run_id}: {what}\n{reading_caption(store, reading)}")
        return scene.save(out_png)
    finally:
        scene.close()


@_isolated_from_tensorflow
def render_comparison(
    stores: Sequence[WeightChangeStore | str | os.PathLike],
    out_png: str | os.PathLike,
    *,
    reading: int = -1,
    log_scale: bool = False,
    per_param: bool = True,
    size: tuple[int, int] = (1400, 1000),
    mode: str = "accumulated",
) -> Path:
    """Draw several runs of the same architecture (e.g. freeze depths) as rows of one scene.

    All rows share one colour scale, so the runs compare directly.

    Args:
        stores: the runs' stores, or their paths; one row each, first at the back.
        out_png: where to write the PNG.
        reading: the reading index drawn of every run, negative from the end.
        log_scale: bar heights and colours on a log scale (the top :data:`LOG_DECADES` decades).
        per_param: show the mean change per parameter of each unit, not its sum.
        size: the image size in pixels (width, height).
        mode: ``accumulated`` or ``net``.

    Returns:
        ``out_png`` as a Path.

    Raises:
        LayerscopeError: no store, stores of different layers, or as :func:`render_run`.
    """
    opened = [open_readable(s) for s in stores]
    if not opened:
        raise LayerscopeError("render_comparison needs at least one weight-change store")
    names = opened[0].layer_names
    for store in opened[1:]:
        if store.layer_names != names:
            raise LayerscopeError(
                f"{store.path} records other layers than {opened[0].path}; only runs of one architecture compare"
            )
    periods = sorted({store.period for store in opened})
    what = describe(mode, "/".join(map(str, periods)))
    mlab = _mlab()
    values = [_values(store, reading, per_param, mode) for store in opened]
    scale = Scale.of([v for run in values for v in run], log_scale)
    scene = _Scene(mlab, opened[0].layers, len(opened), scale, size, per_param, mode)
    try:
        for row, (store, run_values) in enumerate(zip(opened, values)):
            scene.show(row, run_values)
            scene.row_label(row, store.run_id + ("" if store.complete else " (incomplete)"))
        which = "last reading" if reading == -1 else f"reading {reading}"
        scene.frame(f"{what}, {which} of each run")
        return scene.save(out_png)
    finally:
        scene.close()


@_isolated_from_tensorflow
def render_animation(
    store: WeightChangeStore | str | os.PathLike,
    out_gif: str | os.PathLike,
    *,
    log_scale: bool = False,
    per_param: bool = True,
    size: tuple[int, int] = (1000, 600),
    fps: float = 3.0,
    max_frames: int = 60,
    mode: str = "accumulated",
) -> Path:
    """Animate the change over readings as a looping GIF; the colour scale is the final one.

    Args:
        store: the run's store, or its path.
        out_gif: where to write the GIF.
        log_scale: bar heights and colours on a log scale (the top :data:`LOG_DECADES` decades).
        per_param: show the mean change per parameter of each unit, not its sum.
        size: the image size in pixels (width, height).
        fps: frames per second.
        max_frames: the most readings shown, evenly spaced, always ending on the last.
        mode: ``accumulated`` or ``net``.

    Returns:
        ``out_gif`` as a Path.

    Raises:
        LayerscopeError: an unreadable store or one with no readings, an unknown ``mode``,
            no offscreen OpenGL, or a reading the store does not have.
    """
    store = open_readable(store)
    mlab = _mlab()
    count = min(store.n_readings, max_frames)
    readings = np.unique(np.linspace(0, store.n_readings - 1, count).round().astype(int))
    what = describe(mode, store.period)
    final = _values(store, -1, per_param, mode)
    scene = _Scene(mlab, store.layers, 1, Scale.of(final, log_scale), size, per_param, mode)
    frames = []
    try:
        scene.show(0, final)
        scene.frame(reading_caption(store, -1))  # camera fitted once, to the tallest bars, so it stays put
        for index in readings:
            scene.show(0, _values(store, int(index), per_param, mode))
            scene.redraw(f"{store.run_id}: {what}\n{reading_caption(store, int(index))}")
            frames.append(scene.picture())
    finally:
        scene.close()
    with atomic_path(out_gif) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return Path(out_gif)
