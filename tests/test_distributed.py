"""Multi-process training through torchrun (DistributedDataParallel), on the CPU with gloo.

The same code path runs on several GPUs with NCCL (``ssae.training.init_distributed``); here two
CPU processes train the smoke profile together on a tiny MVTec-layout data set.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"       # two processes on a small machine: one thread each
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


@pytest.mark.slow
def test_torchrun_two_processes_train_one_run(mvtec_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ssae.cli", "train", "--data", str(mvtec_dir), "--out", str(run),
           "--profile", "smoke", "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    for name in ("config.json", "checkpoint.pt", "history.json", "calibration.json", "done"):
        assert (run / name).is_file(), f"{name} missing\n{log[-2000:]}"
    assert not list(run.glob("*.tmp*"))
    # every process read the data and trained (each prints these lines itself)
    assert proc.stdout.count("data widget:") == 2, log[-2000:]
    assert proc.stdout.count("trained 4 steps") == 2, log[-2000:]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 4
    assert summary["world_size"] == 2
