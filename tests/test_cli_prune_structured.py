"""`nnlab prune RUN --structured --speedup S` (issue 16)."""
from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_structured_speedup_prints_params_flops_latency_and_saves_a_smaller_model(tmp_path):
    r = invoke("train", "--data", "circles", "--samples", 160, "--model", "resnet", "--hidden", "32,32,32",
               "--epochs", 2, "--runs-dir", tmp_path, "--name", "base", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    r = invoke("prune", tmp_path / "base", "--structured", "--speedup", 2, "--measure", "flops", "--importance", "obs",
               "--runs-dir", tmp_path, "--name", "fast")
    assert r.exit_code == 0, r.output
    for word in ("parameters", "FLOPs per sample", "latency, batch"):
        assert word in r.output
    model, spec = nl.load_model(tmp_path / "fast")
    before, _ = nl.load_model(tmp_path / "base")
    x = torch.zeros(4, 2)
    assert 2.0 <= nl.prune.flops(before, x) / nl.prune.flops(model, x) <= 2.2
    assert spec["kwargs"]["sizes"][1] < 32 and model(x).shape == (4, 2)
    report = json.loads((tmp_path / "fast" / "report.json").read_text())
    assert report["pruned"]["params"] < report["before"]["params"]
    r = invoke("prune", tmp_path / "base", "--speedup", 2, "--runs-dir", tmp_path, "--name", "x")
    assert r.exit_code != 0 and "--structured" in r.output
    r = invoke("prune", tmp_path / "base", "--structured", "--speedup", 1, "--runs-dir", tmp_path, "--name", "y",
               "--overwrite")
    assert r.exit_code != 0 and "speedup must be a number > 1" in r.output and "Traceback" not in r.output
