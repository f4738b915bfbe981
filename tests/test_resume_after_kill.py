"""A training job killed mid-run (SIGKILL of Snakemake's process group) resumes through
Snakemake to the result of an uninterrupted run, by the README's recovery commands."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from helpers import REPO
from helpers.workflow import CPU_LINE, cpu_env, run_python

pytestmark = pytest.mark.pipeline(minutes=2)  # conftest schedules the longest first


def lenet_config(tmp_path, epochs):
    config = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    config["runs"] = {
        "lenet5": ["relu-sgd"],
        "scratch_optimizers": [],
        "freeze_blocks": [],
        "freeze_optimizers": [],
        "finetune_from": None,
        "gap_freeze_blocks": [],
    }
    config["training"]["epochs"]["lenet5"] = epochs
    config["explain"].update(runs=[], cam_run=None, onset={"runs": []})
    path = tmp_path / "lenet.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def readme_recovery_commands() -> list[list[str]]:
    """The commands of the docs' "After a kill" paragraph (docs/rerunning.md), as written."""
    text = (REPO / "docs" / "rerunning.md").read_text()
    section = text[text.index("After a kill") :]
    block = section[section.index("```bash\n") + len("```bash\n") : section.index("```\n", section.index("```bash"))]
    return [line.split() for line in block.splitlines() if line.strip()]


def test_a_killed_run_finishes_by_the_readme_recovery_steps_with_the_uninterrupted_result(tmp_path):
    """Kill a plain `snakemake` run mid-training (SIGKILL of its process group), run exactly
    the README's recovery commands with the killed run's config and target, and compare
    with the same `snakemake` run left alone."""
    commands = readme_recovery_commands()
    assert commands == [["snakemake", "--unlock"], ["snakemake"]]
    config = lenet_config(tmp_path, epochs=30)
    target = "results/smoke/runs/lenet5-relu-sgd/metrics.json"

    def same(workdir):  # targets before --configfile
        return [target, "--directory", str(workdir), "--configfile", str(config)]

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run = run_python("-m", "snakemake", *same(whole), cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]

    job = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *same(cut)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=cpu_env(),
    )
    state = cut / "results/smoke/runs/lenet5-relu-sgd/resume/state.json"
    deadline = time.time() + 600  # data stage and TensorFlow's start on a loaded machine
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert state.exists() and not (cut / target).exists(), "the run was not killed mid-training"
    for command in commands:
        assert command[0] == "snakemake"
        run = run_python("-m", *command, *same(cut), cwd=REPO)
        assert run.returncode == 0, f"{' '.join(command)}: {run.stderr[-3000:]}"
    log = (cut / "results/smoke/logs/train/lenet5-relu-sgd.log").read_text()
    assert "resuming from the end of epoch" in log and CPU_LINE in log  # every GPU hidden: the CPU path

    a, b = (json.loads((d / target).read_text()) for d in (whole, cut))
    for metrics in (a, b):
        for timing in ("train_seconds", "evaluation_seconds"):
            metrics.pop(timing)
    assert a == b and a["epochs_run"] == 30
    ha, hb = (pd.read_csv(d / "results/smoke/runs/lenet5-relu-sgd/history.csv") for d in (whole, cut))
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))
