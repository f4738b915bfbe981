import importlib.metadata
import json
import os
import sys

import pytest

import layerscope
from layerscope.core.atomic import atomic_path
from layerscope.core.machine import cpu_description, machine_line, machines_of, onednn_on
from layerscope.core.provenance import config_digest, read_provenance, sha256_file, write_provenance
from layerscope.core.scripting import use_onednn


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
    machine = record["machine"]
    assert machine["cpu_model"] and machine["cpu_count"] >= 1
    assert set(machine) >= {"cpu_isa", "tf_enable_onednn_opts", "onednn_max_cpu_isa", "onednn"}


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16 avx512_vnni sha_ni

processor\t: 1
model name\t: something else
flags\t\t: fpu
"""


def test_cpu_description_names_model_generation_and_vector_isa(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    model, isa = cpu_description(tmp_path / "cpuinfo")
    assert model == "AMD EPYC 9R14 (family 25, model 17)"
    assert isa == ["avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]  # widest last, no AMX
    line = machine_line({"cpu_model": model, "cpu_isa": isa, "cpu_count": 2, "tf_enable_onednn_opts": "0"})
    assert line == (
        "AMD EPYC 9R14 (family 25, model 17), 2 cores, instruction sets AVX, AVX2, FMA, AVX512F, "
        "AVX512-VNNI, AVX512-BF16; oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)"
    )


@pytest.mark.parametrize(
    ("setting", "isa", "on"),
    [
        (None, ["avx", "avx2", "fma"], False),  # an AVX2 EPYC: TensorFlow keeps its own kernels
        (None, ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"], True),  # AVX512-BF16: oneDNN by default
        ("1", ["avx2"], True),
        ("0", ["avx512_bf16"], False),
    ],
)
def test_onednn_follows_the_variable_else_the_cpu(setting, isa, on):
    assert onednn_on(setting, isa) is on


def test_jobs_turn_onednn_on_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", object())  # loaded: too late to choose its kernels
    use_onednn()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    monkeypatch.delitem(sys.modules, "tensorflow")  # a job's process before TensorFlow loads
    use_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    use_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_cpu_description_without_proc_cpuinfo(tmp_path):
    model, isa = cpu_description(tmp_path / "absent")
    assert model and isa == []


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


def test_machines_of_lists_each_machine_once():
    a = {"cpu_model": "A", "cpu_isa": ["avx2"], "cpu_count": 2, "tf_enable_onednn_opts": None}
    b = {**a, "cpu_model": "B"}
    lines = machines_of([{"machine": a}, {"machine": b}, {"machine": a}, {"rule": "no machine"}])
    assert lines == [
        "A, 2 cores, instruction sets AVX2; oneDNN off (TensorFlow's default for this CPU)",
        "B, 2 cores, instruction sets AVX2; oneDNN off (TensorFlow's default for this CPU)",
    ]


def test_machines_of_names_the_precision_a_training_job_computed_in():
    amx = {"cpu_model": "X", "cpu_isa": ["avx512f", "amx_bf16"], "cpu_count": 2, "tf_enable_onednn_opts": "1"}
    records = [
        {"machine": amx, "extra": {"run": "vgg16-finetune", "precision": "mixed_bfloat16"}},
        {"machine": amx, "extra": {"run": "lenet5-tanh-sgd", "precision": "mixed_bfloat16"}},
        {"machine": amx, "extra": {"run": "vgg16-gap", "precision": "float32"}},
    ]
    base = "X, 2 cores, instruction sets AVX512F, AMX-BF16; oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)"
    assert machines_of(records) == [f"{base}; training in mixed_bfloat16", f"{base}; training in float32"]
