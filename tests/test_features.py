"""The shared frozen-feature cache: same training result as computing the features in the run."""

import keras
import numpy as np
import pytest
from test_training import config, data_dir  # noqa: F401 (fixture)

from layerscope.core.errors import LayerscopeError
from layerscope.train.features import extract_frozen_features, load_frozen_features
from layerscope.train.run import RunFiles, train_run
from layerscope.train.runs import job_settings, parse_run_id


def test_shared_cache_trains_the_same_model_as_a_private_one(tmp_path, data_dir):  # noqa: F811
    cache = tmp_path / "block4.npz"
    meta = extract_frozen_features(data_dir, 4, "hed-bsds500", cache)
    assert meta["input_shape"] == (32, 32, 3) and meta["frozen_blocks"] == 4
    features = load_frozen_features(cache, 4, "hed-bsds500")
    assert {name: x.shape for name, x in features.items()} == {
        "train": (18, 2, 2, 512),
        "val": (3, 2, 2, 512),
        "test": (9, 2, 2, 512),
    }
    cfg = config(weights="hed-bsds500")
    spec = parse_run_id("vgg16-freeze4-momentum", cfg["training"])
    models = []
    for name, shared in (("shared", cache), ("private", None)):
        files = RunFiles(tmp_path / name)
        train_run(spec, data_dir, files, **job_settings(spec.run_id, cfg), features=shared)
        models.append(keras.models.load_model(files.model))
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_cache_of_another_depth_or_precision_is_refused(tmp_path, data_dir):  # noqa: F811
    cache = tmp_path / "block5.npz"
    extract_frozen_features(data_dir, 5, "hed-bsds500", cache)
    with pytest.raises(LayerscopeError, match="frozen_blocks': 5.*this run needs.*frozen_blocks': 4"):
        load_frozen_features(cache, 4, "hed-bsds500")
    with pytest.raises(LayerscopeError, match="mixed_bfloat16"):
        load_frozen_features(cache, 5, "hed-bsds500", "mixed_bfloat16")
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.raises(LayerscopeError, match="unreadable frozen-feature cache.*--forcerun"):
        load_frozen_features(cache, 5, "hed-bsds500")
