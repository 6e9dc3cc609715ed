"""`torchrun --nproc_per_node=2 -m nnlab train ...`: 2 gloo processes follow the 1-process run.

100 samples -> 80 training rows, global batch 32: every batch splits evenly over the 2 ranks (with
an odd count DistributedSampler pads the epoch with a repeated sample, and the runs differ slightly).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

ARGS = ["train", "--data", "xor", "--samples", "100", "--hidden", "6", "--epochs", "2", "--batch-size", "32",
        "--no-plots", "--no-progress", "--name", "r"]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_torchrun_two_processes_match_one(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(nl.__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "nnlab", *ARGS, "--runs-dir", str(tmp_path / "ddp")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    r = CliRunner().invoke(app, [*ARGS, "--runs-dir", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    ddp, _ = nl.load_model(tmp_path / "ddp" / "r")
    one, _ = nl.load_model(tmp_path / "one" / "r")
    for (k, a), b in zip(ddp.state_dict().items(), one.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), (k, float((a - b).abs().max()))
    lines = (tmp_path / "ddp" / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2]  # rank 0 alone wrote the log
    assert json.loads((tmp_path / "ddp" / "r" / "config.json").read_text())["epochs"] == 2
