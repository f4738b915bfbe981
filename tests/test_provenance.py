import importlib.metadata
import json

import pytest

import layerscope
from layerscope.core.atomic import atomic_path
from layerscope.core.provenance import config_digest, read_provenance, sha256_file, write_provenance


def test_config_digest_ignores_key_order_but_not_values():
    assert config_digest({"a": 1, "b": [1, 2]}) == config_digest({"b": [1, 2], "a": 1})
    assert config_digest({"a": 1}) != config_digest({"a": 2})


def test_record_traces_inputs_outputs_and_versions(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("hello")
    out = tmp_path / "out.txt"
    out.write_text("world")
    record = write_provenance(
        tmp_path / "prov.json",
        rule="r",
        experiment="e",
        config={"seed": 1},
        seed=1,
        inputs=[src],
        outputs=[out],
    )
    assert read_provenance(tmp_path / "prov.json") == record
    assert record["inputs"] == {str(src): "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}
    assert record["outputs"][str(out)] == sha256_file(out)
    assert record["libraries"]["numpy"] and record["libraries"]["python"]
    assert record["code_version"]
    assert record["layerscope_version"] == layerscope.__version__ == importlib.metadata.version("layerscope")
    assert record["config_digest"] == config_digest({"seed": 1})


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"half": "written"}))
        raise RuntimeError("job died")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_suffix_and_moves_into_place(tmp_path):
    target = tmp_path / "sub" / "a.npy"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == target.parent
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x" and len(list(target.parent.iterdir())) == 1


def test_atomic_path_keeps_double_suffixes(tmp_path):
    with atomic_path(tmp_path / "step_10.weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5")
        tmp.write_bytes(b"w")
    assert (tmp_path / "step_10.weights.h5").read_bytes() == b"w"
