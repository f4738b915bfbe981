"""The shared frozen-feature cache: an array read memory-mapped, and the same trained model as
features computed in the run."""

import json

import keras
import numpy as np
import pytest
from helpers.training import config, model_only

from layerscope.core.errors import LayerscopeError
from layerscope.train.features import extract_frozen_features, load_frozen_features, meta_path
from layerscope.train.run import RunFiles, train_run
from layerscope.train.runs import job_settings, parse_run_id


def test_shared_cache_is_memory_mapped_and_trains_the_same_model_as_a_private_one(tmp_path, data_dir):
    cache = tmp_path / "block4.npy"
    meta = extract_frozen_features(data_dir, 4, "hed-bsds500", cache)
    assert meta["input_shape"] == (32, 32, 3) and meta["frozen_blocks"] == 4 and meta["dtype"] == "float32"
    assert json.loads(meta_path(cache).read_text())["splits"] == {"train": 18, "val": 3, "test": 9}
    assert cache.stat().st_size == 128 + 30 * 2 * 2 * 512 * 4  # npy header + float32 values, nothing else
    features = load_frozen_features(cache, 4, "hed-bsds500")
    assert {name: (x.shape, x.dtype) for name, x in features.items()} == {
        "train": ((18, 2, 2, 512), np.float32),
        "val": ((3, 2, 2, 512), np.float32),
        "test": ((9, 2, 2, 512), np.float32),
    }
    assert all(isinstance(x, np.memmap) and not x.flags.writeable for x in features.values())
    cfg = config(weights="hed-bsds500", mixed_precision=False)  # as the cache above was asked for
    spec = parse_run_id("vgg16-freeze4-momentum", cfg["training"])
    models = []
    for name, shared in (("shared", cache), ("private", None)):
        files = RunFiles(tmp_path / name)
        train_run(spec, data_dir, files, **model_only(job_settings(spec.run_id, cfg)), features=shared)
        models.append(keras.models.load_model(files.model))
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_cache_of_another_depth_or_precision_or_a_damaged_one_is_refused(tmp_path, data_dir):
    cache = tmp_path / "block5.npy"
    extract_frozen_features(data_dir, 5, "hed-bsds500", cache)
    chunked = tmp_path / "chunked" / "block5.npy"  # batches of 1, chunks of 16: the 18 train images in two
    extract_frozen_features(data_dir, 5, "hed-bsds500", chunked, batch_size=1)
    np.testing.assert_allclose(np.load(chunked), np.load(cache), rtol=1e-4, atol=1e-3)
    with pytest.raises(LayerscopeError, match="frozen_blocks': 5.*this run needs.*frozen_blocks': 4"):
        load_frozen_features(cache, 4, "hed-bsds500")
    with pytest.raises(LayerscopeError, match="mixed_bfloat16"):
        load_frozen_features(cache, 5, "hed-bsds500", "mixed_bfloat16")
    meta = json.loads(meta_path(cache).read_text())
    meta_path(cache).write_text(json.dumps({**meta, "splits": {"train": 18, "val": 3, "test": 10}}))
    with pytest.raises(LayerscopeError, match=r"block5.npy: \(30, 1, 1, 512\) features where its meta lists 31"):
        load_frozen_features(cache, 5, "hed-bsds500")
    cache.write_bytes(cache.read_bytes()[:1000])
    with pytest.raises(LayerscopeError, match="unreadable frozen-feature cache.*--forcerun"):
        load_frozen_features(cache, 5, "hed-bsds500")
    meta_path(cache).unlink()
    with pytest.raises(LayerscopeError, match="block5.npy: unreadable frozen-feature cache"):
        load_frozen_features(cache, 5, "hed-bsds500")
