import os
import subprocess
import sys

from layerscope.core.devices import claim_gpu

CLAIM = (
    "import sys; from layerscope.core.devices import claim_gpu; "
    "print(claim_gpu(2, sys.argv[1])); sys.stdout.flush(); sys.stdin.read()"
)


def test_concurrent_jobs_get_distinct_gpus(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    claimed = [job.stdout.readline().strip() for job in jobs]
    for job in jobs:
        job.communicate("")
    assert sorted(claimed) == ["0", "1"]


def test_user_choice_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpu(4, tmp_path) is None


def test_single_gpu_needs_no_claim(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert claim_gpu(1, tmp_path) is None
    assert claim_gpu(0, tmp_path) is None
