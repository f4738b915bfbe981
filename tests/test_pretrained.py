"""Weight sources: bundled HED (bit-exact), ImageNet (cached / offline), files, none."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from layerscope.core.errors import LayerscopeError
from layerscope.train import pretrained
from layerscope.train.models import vgg16
from layerscope.train.pretrained import load_vgg16_weights

VGG_CONVS = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]


def _tiny(stem: bool = False, seed: int = 0) -> keras.Model:
    """block1_conv1 -> GAP -> logits; with ``stem`` an extra conv first (shifts positions)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(3, 1, name="stem")(inputs) if stem else inputs
    x = keras.layers.Conv2D(64, 3, name="block1_conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def _write_legacy(path: Path, layers: dict[str, list[np.ndarray]]) -> None:
    """A weights-only Keras 2 .h5, the layout of Keras' ImageNet VGG-16 files."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name, arrays in layers.items():
            group = f.create_group(name)
            names = [f"{name}_W_{i}:0".encode() for i in range(len(arrays))]
            group.attrs["weight_names"] = names
            for wname, array in zip(names, arrays):
                group[wname.decode()] = array


def _conv_weights(rng: np.random.Generator) -> list[np.ndarray]:
    return [
        rng.normal(size=(3, 3, 3, 64)).astype("float32"),
        rng.normal(size=64).astype("float32"),
    ]


def test_hed_bsds500_is_the_default_and_copies_bit_for_bit():
    model = vgg16((32, 32, 3), 4)
    path = pretrained.hed_weights_path()
    with h5py.File(path, "r") as f:
        for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
            for i, suffix in enumerate(["", "_1", "_2"][:convs], start=1):
                vars_ = f[f"block{block}/layers/conv2d{suffix}/vars"]
                assert vars_.attrs["name"] == f"block{block}_conv{i}"  # the file agrees
                kernel, bias = model.get_layer(f"block{block}_conv{i}").get_weights()
                assert np.array_equal(kernel, vars_["0"][()])
                assert np.array_equal(bias, vars_["1"][()])


def test_hed_source_reports_the_13_conv_layers():
    assert load_vgg16_weights(vgg16((32, 32, 3), 2, weights="none"), "hed-bsds500") == VGG_CONVS


def test_imagenet_offline_fails_fast_naming_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # .invalid never resolves (RFC 2606): the offline failure, even on a networked host.
    monkeypatch.setattr(pretrained, "IMAGENET_NOTOP_URL", "https://weights.invalid/vgg16_notop.h5")
    model = _tiny()
    with pytest.raises(LayerscopeError) as err:
        load_vgg16_weights(model, "imagenet")
    message = str(err.value)
    assert "hed-bsds500" in message
    assert str(tmp_path / "models" / pretrained.IMAGENET_NOTOP_FILE) in message
    assert "weights file" in message


def test_imagenet_download_times_out_and_restores_socket_timeout(tmp_path, monkeypatch):
    """The download waits DOWNLOAD_TIMEOUT_S for a silent server, then restores the default:
    the timeouts set are read back, not timed (speed is the benchmarks' business)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    timeouts = []
    set_timeout = socket.setdefaulttimeout
    monkeypatch.setattr(socket, "setdefaulttimeout", lambda value: timeouts.append(value) or set_timeout(value))
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        monkeypatch.setattr(pretrained, "IMAGENET_NOTOP_URL", f"http://127.0.0.1:{port}/w.h5")
        monkeypatch.setattr(pretrained, "DOWNLOAD_TIMEOUT_S", 0.5)
        with pytest.raises(LayerscopeError, match="cannot download"):
            load_vgg16_weights(_tiny(), "imagenet")
    assert timeouts == [0.5, None] and socket.getdefaulttimeout() is None
    assert not (tmp_path / "models" / pretrained.IMAGENET_NOTOP_FILE).exists()


def _cache_fake_imagenet(tmp_path: Path, monkeypatch, weights) -> Path:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / pretrained.IMAGENET_NOTOP_FILE
    _write_legacy(path, {"block1_conv1": weights})
    return path


def test_imagenet_uses_the_keras_cache(tmp_path, monkeypatch):
    weights = _conv_weights(np.random.default_rng(0))
    path = _cache_fake_imagenet(tmp_path, monkeypatch, weights)
    monkeypatch.setattr(pretrained, "IMAGENET_NOTOP_MD5", hashlib.md5(path.read_bytes()).hexdigest())
    model = _tiny()
    assert load_vgg16_weights(model, "imagenet") == ["block1_conv1"]
    for got, want in zip(model.get_layer("block1_conv1").get_weights(), weights):
        assert np.array_equal(got, want)


def test_imagenet_corrupt_cache_is_named(tmp_path, monkeypatch):
    path = _cache_fake_imagenet(tmp_path, monkeypatch, _conv_weights(np.random.default_rng(0)))
    with pytest.raises(LayerscopeError, match="corrupt") as err:
        load_vgg16_weights(_tiny(), "imagenet")
    assert str(path) in str(err.value)


def _save_keras3_weights(model, path):
    model.save_weights(path)


def _save_model(model, path):
    model.save(path)  # .keras archive, or the legacy full-model .h5


def _save_legacy_weights_only(model, path):
    _write_legacy(
        path,
        {layer.name: layer.get_weights() for layer in model.layers if layer.weights},
    )


@pytest.mark.parametrize(
    ("filename", "save"),
    [
        ("w.weights.h5", _save_keras3_weights),
        ("m.keras", _save_model),
        ("m.h5", _save_model),
        ("w.h5", _save_legacy_weights_only),
    ],
)
def test_weight_file_is_matched_by_name_not_position(tmp_path, filename, save):
    source, target = _tiny(seed=1), _tiny(stem=True, seed=2)
    path = tmp_path / filename
    save(source, path)
    stem_before = target.get_layer("stem").get_weights()
    assert sorted(load_vgg16_weights(target, str(path))) == ["block1_conv1", "logits"]
    for name in ("block1_conv1", "logits"):
        for got, want in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            assert np.array_equal(got, want)
    for got, want in zip(target.get_layer("stem").get_weights(), stem_before):
        assert np.array_equal(got, want)


def test_shape_mismatch_names_file_and_layer_and_assigns_nothing(tmp_path):
    rng = np.random.default_rng(0)
    model = _tiny()
    logits = [rng.normal(size=(64, 3)).astype("float32"), np.zeros(3, "float32")]
    wrong = [rng.normal(size=(5, 5, 3, 64)).astype("float32"), np.zeros(64, "float32")]
    path = tmp_path / "bad.h5"
    _write_legacy(path, {"logits": logits, "block1_conv1": wrong})
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(LayerscopeError, match="'block1_conv1'") as err:
        load_vgg16_weights(model, str(path))
    assert str(path) in str(err.value) and "(5, 5, 3, 64)" in str(err.value)
    for got, want in zip(model.get_weights(), before):
        assert np.array_equal(got, want)


def test_unknown_layer_name_is_named(tmp_path):
    path = tmp_path / "other.h5"
    _write_legacy(path, {"block9_conv1": _conv_weights(np.random.default_rng(0))})
    with pytest.raises(LayerscopeError, match="'block9_conv1'") as err:
        load_vgg16_weights(_tiny(), str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("missing.weights.h5", None, "not found"),
        ("text.h5", b"not hdf5", "not a readable HDF5"),
        ("text.keras", b"not a zip", "not a Keras model archive"),
    ],
)
def test_unreadable_weight_files_are_named(tmp_path, filename, content, expected):
    path = tmp_path / filename
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LayerscopeError, match=expected) as err:
        load_vgg16_weights(_tiny(), str(path))
    assert str(path) in str(err.value)


def test_empty_weight_file_is_rejected(tmp_path):
    path = tmp_path / "empty.h5"
    _write_legacy(path, {})
    with pytest.raises(LayerscopeError, match="no layer weights"):
        load_vgg16_weights(_tiny(), str(path))


def test_unknown_source_lists_choices():
    with pytest.raises(LayerscopeError, match="'imagenet21k'") as err:
        load_vgg16_weights(_tiny(), "imagenet21k")
    for choice in ("hed-bsds500", "imagenet", "none"):
        assert choice in str(err.value)


def test_none_keeps_random_init():
    model = _tiny()
    before = [w.copy() for w in model.get_weights()]
    assert load_vgg16_weights(model, "none") == []
    for got, want in zip(model.get_weights(), before):
        assert np.array_equal(got, want)
