"""Fault injection: a training job killed at each boundary reruns, in one rerun, to the
result of an uninterrupted run.

Each case kills a real process (``os._exit``: no cleanup, no flushing, like SIGKILL) at
one point of ``train_run`` on the smoke configuration with tiny data, then does what
``snakemake --rerun-incomplete`` does (remove the job's outputs) and reruns. Attempts are
forked from one driver that imported TensorFlow once, which keeps the module near a minute. Counted:
cases tried, reruns identical to a clean run, half-written outputs found after a kill
(an output file that exists but differs from the clean run's: goal none).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from snakemake.utils import validate

from layerscope.data.prepare import DataSettings, prepare

pytestmark = pytest.mark.pipeline(minutes=2)  # conftest schedules the longest first

RUN = "lenet5-tanh-sgd"
OUTPUTS = [
    "model.keras",
    "history.csv",
    "metrics.json",
    "predictions.csv",
    "training_curves.png",
    "weight_changes.h5",
    "checkpoints",
]

DRIVER = textwrap.dedent(
    """
    import json, os, shutil, sys
    from pathlib import Path

    plan = json.loads(Path(sys.argv[1]).read_text())
    from layerscope.train import fit, run
    from layerscope.weights import recorder, store_writer
    from layerscope.train.runs import job_settings, parse_run_id

    def die():
        os._exit(137)

    def after(owner, name, when):
        original = getattr(owner, name)
        def wrapped(*args, **kwargs):
            result = original(*args, **kwargs)
            if when(*args, **kwargs):
                die()
            return result
        setattr(owner, name, wrapped)

    def before(owner, name, when):
        original = getattr(owner, name)
        def wrapped(*args, **kwargs):
            if when(*args, **kwargs):
                die()
            return original(*args, **kwargs)
        setattr(owner, name, wrapped)

    def inject(fault, epochs):
        R, W = fit.ResumableEpochs, recorder.WeightChangeRecorder
        if fault == "mid-epoch":  # a few steps into epoch 2, after a reading past the last epoch end
            after(W, "on_train_batch_end", lambda self, batch, logs=None: self._epoch == 2 and batch == 1)
        elif fault == "epoch-end-before-commit":  # epoch 2's store resume point saved, state not committed
            before(R, "on_epoch_end", lambda self, epoch, logs=None: epoch == 1)
        elif fault == "after-last-epoch":  # last epoch committed, store not yet finished
            after(R, "on_epoch_end", lambda self, epoch, logs=None: epoch == epochs - 1)
        elif fault == "after-store":  # store finished
            after(store_writer.WeightStoreWriter, "finish", lambda self: True)
        elif fault == "during-outputs":  # predictions, history and curves written; model not
            after(run, "plot_history", lambda *a, **k: True)
        elif fault == "inside-model-save":  # model written to its temporary name, not yet renamed
            import keras
            after(keras.Model, "save", lambda *a, **k: True)
        elif fault == "before-clear":  # every output written, resume state not yet removed
            before(run, "clear_state", lambda *a, **k: True)
        elif fault is not None:
            raise ValueError(fault)

    def attempt(step):
        # A forked child is a fresh process as far as TensorFlow goes: this parent only
        # imported it, and never ran an op.
        pid = os.fork()
        if pid == 0:
            log = os.open(step["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 2)
            os.dup2(log, 1)
            try:
                fit.set_threads(1)
                config = step["config"]
                inject(step["fault"], config["training"]["epochs"]["lenet5"])
                spec = parse_run_id(step["run"], config["training"])
                run.train_run(
                    spec, Path(step["data"]), run.RunFiles(Path(step["root"])), **job_settings(step["run"], config)
                )
            except BaseException:
                import traceback
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    codes = []
    for step in plan:
        if step.get("move_outputs_to"):  # what --rerun-incomplete does: the killed job's outputs go
            aside = Path(step["move_outputs_to"])
            aside.mkdir(parents=True)
            for name in step["outputs"]:
                if (Path(step["root"]) / name).exists():
                    shutil.move(Path(step["root"]) / name, aside / name)
        codes.append(attempt(step))
    print(json.dumps(codes))
    """
)


def drive(tmp_path, plan):
    """Run the plan's attempts (each a forked process) in one driver; their exit codes."""
    for i, step in enumerate(plan):
        step.setdefault("fault", None)
        step.update(run=RUN, outputs=OUTPUTS, log=str(tmp_path / f"attempt{i}.log"))
    (tmp_path / "plan.json").write_text(json.dumps(plan, default=str))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "plan.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def smoke_config(**training):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["training"].update(checkpoint_ratio=1.5, mixed_precision=False, **training)
    config["training"]["epochs"]["lenet5"] = 3
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The smoke config's data (elpv, 40 x 40), 8 images per class."""
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    out = tmp_path_factory.mktemp("data")
    prepare(DataSettings.from_config({**config["data"], "max_per_class": 8}, config["seed"]), out)
    return out


def results(root):
    """Everything a run publishes, in a comparable form (timings left out)."""
    metrics = json.loads((root / "metrics.json").read_text())
    for timing in ("train_seconds", "evaluation_seconds"):
        metrics.pop(timing)
    out = {
        "history": pd.read_csv(root / "history.csv").drop(columns="seconds").to_dict("list"),
        "metrics": metrics,
        "predictions": (root / "predictions.csv").read_bytes(),
        "model": h5_contents_of_keras(root / "model.keras"),
        "store": h5_contents(root / "weight_changes.h5", skip_attrs=("provenance",)),
        "checkpoints": {p.name: h5_contents(p) for p in sorted((root / "checkpoints").iterdir())},
    }
    return out


def h5_contents_of_keras(path):
    import zipfile

    with zipfile.ZipFile(path) as archive:
        weights = archive.extract("model.weights.h5", path.parent / ".extracted")
    contents = h5_contents(weights)
    os.remove(weights)
    return contents


def h5_contents(path, skip_attrs=()):
    found = {}
    with h5py.File(path, "r") as handle:
        found["attrs"] = {k: str(v) for k, v in handle.attrs.items() if k not in skip_attrs}
        handle.visititems(
            lambda name, obj: found.__setitem__(name, _value(obj[()])) if isinstance(obj, h5py.Dataset) else None
        )
    return found


def _value(array):
    """Comparable bytes of a dataset (strings by value, not by pointer)."""
    array = np.asarray(array)
    return repr(array.tolist()) if array.dtype == object else (str(array.dtype), array.shape, array.tobytes())


def matches_clean_run(name, path, clean) -> bool:
    """Whether one output reads the same as the clean run's (outputs not compared: True)."""
    if name == "history.csv":
        return pd.read_csv(path).drop(columns="seconds").to_dict("list") == clean["history"]
    if name == "predictions.csv":
        return path.read_bytes() == clean["predictions"]
    if name == "model.keras":
        return h5_contents_of_keras(path) == clean["model"]
    if name == "weight_changes.h5":
        return h5_contents(path, ("provenance",)) == clean["store"]
    return True


def half_written(root, clean):
    """Outputs a kill left that differ from the clean run's (atomic writes: expect none)."""
    found = []
    for name in OUTPUTS:
        path = root / name
        if not path.exists() or name == "checkpoints":
            continue
        try:
            same = matches_clean_run(name, path, clean)
        except Exception:  # noqa: BLE001 (unreadable counts as half-written)
            same = False
        if not same:
            found.append(name)
    return found


FAULTS = [
    "mid-epoch",
    "epoch-end-before-commit",
    "after-last-epoch",
    "after-store",
    "during-outputs",
    "inside-model-save",
    "before-clear",
]


def test_a_killed_run_reruns_to_the_clean_result(tmp_path, data):
    """Every boundary, plus a kill, change the learning rate, rerun."""
    config, old = smoke_config(), smoke_config(learning_rate={"sgd": 0.01})
    cases = [(fault, config) for fault in FAULTS] + [("mid-epoch, then lr changed", old)]
    plan = [{"config": config, "data": data, "root": tmp_path / "clean"}]
    for i, (name, kill_config) in enumerate(cases):
        root = tmp_path / f"case{i}"
        plan.append({"config": kill_config, "data": data, "root": root, "fault": name.split(",")[0]})
        plan.append({"config": config, "data": data, "root": root, "move_outputs_to": tmp_path / f"case{i}-killed"})
    codes = drive(tmp_path, plan)
    assert codes[0] == 0, (tmp_path / "attempt0.log").read_text()[-3000:]
    clean = results(tmp_path / "clean")
    assert len(clean["history"]["epoch"]) == 3 and "step_000000.weights.h5" in clean["checkpoints"]
    assert sum(name.startswith("final_") for name in clean["checkpoints"]) == 1
    np.testing.assert_allclose(clean["history"]["learning_rate"], [0.003] * 3, rtol=1e-6)

    tally = {"cases": 0, "identical": 0, "half_written": [], "reruns_failed": []}
    for i, (name, _) in enumerate(cases):
        kill_code, rerun_code = codes[1 + 2 * i], codes[2 + 2 * i]
        kill_log = (tmp_path / f"attempt{1 + 2 * i}.log").read_text()
        assert kill_code == 137, f"{name}: the fault did not fire\n{kill_log[-3000:]}"
        tally["cases"] += 1
        tally["half_written"] += [f"{name}: {out}" for out in half_written(tmp_path / f"case{i}-killed", clean)]
        log = (tmp_path / f"attempt{2 + 2 * i}.log").read_text()
        if rerun_code != 0:
            tally["reruns_failed"].append(f"{name}: {log[-2000:]}")
            continue
        assert not (tmp_path / f"case{i}" / "resume").exists(), name
        assert not list((tmp_path / f"case{i}").glob(".*tmp*")), f"{name}: temporaries left behind"
        assert ("discarding the resume state" in log) == ("lr changed" in name), name
        try:
            same = results(tmp_path / f"case{i}") == clean
        except (OSError, KeyError) as err:  # an output missing or unreadable after the rerun
            same = f"{err}"
        if same is not True:
            tally["reruns_failed"].append(f"{name}: {same or 'differs from the clean run'}")
            continue
        tally["identical"] += 1
    print(
        f"\nfault injection: {tally['cases']} cases, {tally['identical']} identical to a clean run, "
        f"{len(tally['half_written'])} half-written outputs, {len(tally['reruns_failed'])} reruns failed"
    )
    assert tally == {"cases": len(cases), "identical": len(cases), "half_written": [], "reruns_failed": []}
