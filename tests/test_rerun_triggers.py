"""What Snakemake schedules after a change (``snakemake -n``; nothing is trained): each
rule depends on exactly the config and data it reads.

The workflow (copied, with the library) has its outputs faked once (empty files, then ``--touch --forceall`` records
Snakemake's metadata as if every job had run); each test changes one thing and reads
the dry run's plan.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import REPO
from helpers.images import write_png
from helpers.workflow import cpu_env, run_snakemake

pytestmark = pytest.mark.pipeline(minutes=3)  # conftest schedules the longest first


def snakemake(workdir: Path, config: dict, *args: str, sort_keys: bool = True) -> str:
    """Snakemake on the copy of the workflow and library in ``workdir/repo``."""
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=sort_keys))
    repo = workdir / "repo"
    run = run_snakemake(
        workdir, "--configfile", str(path), *args, cores=1, repo=repo, env=cpu_env(PYTHONPATH=str(repo / "src"))
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def pending(workdir: Path, config: dict, sort_keys: bool = True) -> dict[str, set[str]]:
    """Jobs a plain ``snakemake`` would run: rule -> the run ids (or output files) involved."""
    jobs: dict[str, set[str]] = {}
    for line in snakemake(workdir, config, "-n", "--summary", sort_keys=sort_keys).splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) == 6 and fields[5] == "update pending":
            parts = Path(fields[0]).parts
            jobs.setdefault(fields[2], set()).add(parts[3] if parts[2] in ("runs", "explain") else fields[0])
    return jobs


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A workdir whose every output looks up to date, on a folder source of 3 x 10 images."""
    root = tmp_path_factory.mktemp("workflow")
    # A copy of the workflow and library: the code digests in the params then stay put
    # while the tests run, whatever happens to the working tree meanwhile.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    (root / "repo").mkdir()
    for part in ("workflow", "config", "src"):
        source, target = REPO / part, root / "repo" / part
        shutil.copytree(source, target, ignore=ignore) if source.is_dir() else shutil.copy(source, target)
    images = root / "images"
    for c, label in enumerate(["crack", "inclusion", "scratch"]):
        for i in range(10):
            write_png(images / label / f"{label}_{i:02d}.png", seed=100 * c + i)
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["data"].update(source="folder", path=str(images))
    for line in snakemake(root, config, "-n", "--summary").splitlines()[1:]:
        output = root / line.split("\t")[0]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.mkdir() if output.name == "checkpoints" else output.touch()
    snakemake(root, config, "--touch", "--forceall")
    assert pending(root, config) == {}
    return root, config, images


def copy(config: dict) -> dict:
    return yaml.safe_load(yaml.safe_dump(config))


def test_adding_a_run_schedules_only_that_run(done):
    root, config, _ = done
    grown = copy(config)
    grown["runs"]["lenet5"] = ["tanh-sgd", "relu-adam"]
    jobs = pending(root, grown)
    assert jobs["train"] == {"lenet5-relu-adam"}
    assert jobs["render_weight_changes"] == {"lenet5-relu-adam"} and "prepare_data" not in jobs
    # the tables, the report's landing page and the cost tables read every run
    follow = {"tables", "landing_page", "cost_tables", "all"}
    assert set(jobs) <= {"train", "render_weight_changes", "animate_weight_changes", *follow}


def test_lenet_epochs_schedule_no_vgg_run(done):
    root, config, _ = done
    changed = copy(config)
    changed["training"]["epochs"]["lenet5"] = 2
    jobs = pending(root, changed)
    assert jobs["train"] == {"lenet5-tanh-sgd"}
    assert not any(run.startswith("vgg16") for run in jobs["render_weight_changes"])


def test_a_vgg_learning_rate_schedules_only_its_optimizer(done):
    root, config, _ = done
    changed = copy(config)
    changed["training"]["learning_rate"] = {"momentum": 0.01}
    jobs = pending(root, changed)
    # the momentum runs (GAP runs use training.optimizer: momentum), and fine-tuning, which
    # starts from freeze3-momentum; not vgg16-scratch-sgd nor lenet5-tanh-sgd
    assert jobs["train"] == {
        "vgg16-freeze3-momentum",
        "vgg16-freeze5-momentum",
        "vgg16-gap-freeze3",
        "vgg16-finetune",
    }


def test_adding_removing_or_replacing_an_image_reruns_the_data_stage(done):
    root, config, images = done
    added = write_png(images / "crack" / "crack_99.png", seed=999)
    assert "prepare_data" in pending(root, config)
    added.unlink()
    assert pending(root, config) == {}  # back as it was: the listing digest is the same again

    removed = images / "scratch" / "scratch_03.png"
    kept = removed.read_bytes(), removed.stat()
    removed.unlink()
    assert "prepare_data" in pending(root, config)
    removed.write_bytes(kept[0])
    os.utime(removed, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))
    assert pending(root, config) == {}

    replaced = images / "inclusion" / "inclusion_05.png"
    kept = replaced.read_bytes(), replaced.stat()
    write_png(replaced, seed=4242)
    jobs = pending(root, config)
    assert "prepare_data" in jobs and jobs["train"] >= {"lenet5-tanh-sgd", "vgg16-gap-freeze3"}
    replaced.write_bytes(kept[0])
    os.utime(replaced, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))
    assert pending(root, config) == {}


def test_adding_a_seed_schedules_only_its_replicates(done):
    root, config, _ = done
    grown = copy(config)
    grown["runs"]["seeds"] = [config["seed"], 8]  # the first seed keeps the plain run ids
    jobs = pending(root, grown)
    assert jobs["train"] and all(run.endswith("-seed8") for run in jobs["train"])
    changed = copy(config)
    changed["runs"]["seeds"] = [8]  # another seed for the plain runs: all of them retrain
    assert "lenet5-tanh-sgd" in pending(root, changed)["train"]


@contextlib.contextmanager
def edited(module: Path):
    """``module`` with one more comment line, restored afterwards."""
    original = module.read_bytes()
    module.write_bytes(original + b"\n# an edit\n")
    try:
        yield
    finally:
        module.write_bytes(original)


def test_editing_a_module_training_imports_reruns_training_and_nothing_unrelated(done):
    """``train/plots.py`` (training curves) is reached only through ``train/run.py``: the
    hand-kept module list the digest once used had missed it."""
    root, config, _ = done
    library = root / "repo" / "src" / "layerscope"
    with edited(library / "train" / "plots.py"):
        jobs = pending(root, config)
    runs = {"lenet5-tanh-sgd", "vgg16-scratch-sgd", "vgg16-freeze3-momentum", "vgg16-freeze5-momentum",
            "vgg16-finetune", "vgg16-gap-freeze3"}  # fmt: skip
    assert jobs["train"] == runs and "prepare_data" not in jobs and "frozen_features" not in jobs
    with edited(library / "weights" / "render3d.py"):
        jobs = pending(root, config)
    assert "render_weight_changes" in jobs and "train" not in jobs and "explain" not in jobs
    assert pending(root, config) == {}


def reversed_keys(value):
    """The same settings with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_the_config_written_in_another_key_order_reruns_nothing(done):
    root, config, _ = done
    assert pending(root, reversed_keys(config), sort_keys=False) == {}


def test_editing_the_tables_statistics_retrains_nothing(done):
    root, config, _ = done
    library = root / "repo" / "src" / "layerscope"
    with edited(library / "core" / "statistics.py"):
        jobs = pending(root, config)
    assert "tables" in jobs and "freeze_recommendation" in jobs
    assert not {"train", "prepare_data", "frozen_features", "linear_probe", "explain"} & set(jobs)


def test_editing_the_bootstrap_retrains_nothing(done):
    """Each run's intervals are read from its predictions.csv by the results stage, so a
    change to how they are computed reruns the tables and the recommendation only."""
    root, config, _ = done
    with edited(root / "repo" / "src" / "layerscope" / "core" / "bootstrap.py"):
        jobs = pending(root, config)
    assert "tables" in jobs and "freeze_recommendation" in jobs
    assert not {"train", "prepare_data", "frozen_features", "linear_probe", "explain"} & set(jobs)


def test_editing_lime_reruns_only_the_rules_that_use_it(done):
    root, config, _ = done
    explained = set(config["explain"]["runs"])
    with edited(root / "repo" / "src" / "layerscope" / "explain" / "lime_method.py"):
        jobs = pending(root, config)
    assert jobs["explain"] == explained and jobs["explanation_quality"] == explained
    assert not {"feature_maps", "feature_onset", "train", "render_weight_changes"} & set(jobs)


@pytest.mark.parametrize(
    ("section", "key", "value", "rule"),
    [
        ("quality", "steps", 7, "explanation_quality"),
        ("onset", "threshold", 0.8, "feature_onset"),
        ("feature_maps", "count", 2, "feature_maps"),
    ],
)
def test_an_explain_setting_reruns_only_the_rule_that_reads_it(done, section, key, value, rule):
    root, config, _ = done
    changed = copy(config)
    changed["explain"][section][key] = value
    jobs = pending(root, changed)
    assert rule in jobs
    # what depends on the rule's outputs may follow (the recommendation reads quality.csv,
    # the claims table study B's feature-map tables, the landing page both, the cost tables every job)
    assert set(jobs) <= {rule, "freeze_recommendation", "tables", "landing_page", "cost_tables", "all"}


def test_explaining_another_run_explains_only_that_run(done):
    root, config, _ = done
    grown = copy(config)
    grown["explain"]["runs"] = [*config["explain"]["runs"], "vgg16-freeze5-momentum"]
    jobs = pending(root, grown)
    for rule in ("explain", "feature_maps", "explanation_quality"):
        assert jobs[rule] == {"vgg16-freeze5-momentum"}, rule
    assert not {"train", "feature_onset"} & set(jobs)


def test_a_job_reading_a_deleted_data_array_reruns_the_data_stage_first(done):
    """The arrays are declared inputs of the jobs that read them, not found beside the
    manifest: a job that must run and reads a deleted array is preceded by the data stage
    (before, it died on a missing file). Up-to-date outputs are left alone, as Snakemake
    does for any deleted intermediate file."""
    root, config, _ = done
    array = root / "results" / config["experiment"] / "data" / "test_images.npy"
    kept = array.stat()
    array.unlink()
    changed = copy(config)
    changed["training"]["epochs"]["lenet5"] = 2
    try:
        untouched, jobs = pending(root, config), pending(root, changed)
    finally:
        array.touch()
        os.utime(array, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert untouched == {}
    assert "prepare_data" in jobs and "lenet5-tanh-sgd" in jobs["train"]
    assert pending(root, config) == {}


def recorded_params(workdir: Path, output: str) -> list:
    """The params Snakemake recorded for the job that wrote ``output`` (its metadata record)."""
    metadata = workdir / ".snakemake" / "metadata"
    for record in metadata.rglob("*"):
        if record.is_file():
            name = "".join(part.lstrip("@") for part in record.relative_to(metadata).parts)
            if base64.urlsafe_b64decode(name).decode() == output:
                return json.loads(record.read_text())["params"]
    raise AssertionError(f"no metadata record for {output}")


def test_only_the_plain_onset_runs_save_step_checkpoints(done, tmp_path):
    """The ``-seed<s>`` replicates of an onset run save no checkpoints (nothing reads them)."""
    root, config, _ = done
    work = tmp_path / "work"
    shutil.copytree(root, work, symlinks=True)
    grown = copy(config)
    grown["runs"]["seeds"] = [config["seed"], 8]
    onset_run = grown["explain"]["onset"]["runs"][0]
    replicate = work / f"results/smoke/runs/{onset_run}-seed8"
    replicate.mkdir(parents=True)
    for name in OUTPUTS_OF_TRAIN:  # faked, then recorded as written by this config's job
        (replicate / name).mkdir() if name == "checkpoints" else (replicate / name).touch()
    snakemake(work, grown, "--touch", "--force", str(replicate.relative_to(work) / "model.keras"))
    plain = recorded_params(work, f"results/smoke/runs/{onset_run}/model.keras")
    seeded = recorded_params(work, f"results/smoke/runs/{onset_run}-seed8/model.keras")
    assert "True" in plain and "False" not in plain
    assert "False" in seeded and "True" not in seeded


OUTPUTS_OF_TRAIN = [
    "model.keras",
    "history.csv",
    "metrics.json",
    "predictions.csv",
    "training_curves.png",
    "weight_changes.h5",
    "checkpoints",
    "provenance.json",
]
