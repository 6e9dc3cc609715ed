"""`nnlab prune RUN --structured --speedup S` (issue 16)."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app
from nnlab.prune.speedup import speed_report

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


def test_structured_speedup_measured_by_cpu_time_prints_cpu_and_wall_latency_before_and_after(tmp_path):
    r = invoke("train", "--data", "digits", "--model", "mlp", "--hidden", "512,512", "--epochs", 1,
               "--runs-dir", tmp_path, "--name", "base", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    r = invoke("prune", tmp_path / "base", "--structured", "--speedup", 1.5, "--measure", "cpu",
               "--runs-dir", tmp_path, "--name", "fast")
    assert r.exit_code == 0, r.output
    lines = {line.split("  ")[0]: line for line in r.output.splitlines()}
    for row in ("parameters", "FLOPs per sample", "CPU time, 1 thread, batch 256", "wall latency, batch 256"):
        assert row in lines, r.output
        before, after, ratio = lines[row].split()[-3:]       # before, after and their ratio, all printed
        assert float(before.rstrip("us")) > 0 and float(after.rstrip("us")) > 0 and ratio.endswith("x")
    assert float(lines["parameters"].split()[-1].rstrip("x")) > 1.0
    assert "(cpu)" in r.output and "speed-up" in r.output     # the report of the CPU-time target


def test_speed_report_rows_and_bad_clock():
    torch.manual_seed(0)
    dense = nl.MLP([8, 32, 3])
    small, _ = nl.prune.neurons(dense, 0.5)
    x = torch.randn(16, 8)
    text = speed_report(dense, small, x, rounds=1, clocks=("cpu", "wall"))
    assert [line.split("  ")[0] for line in text.splitlines()[1:]] == [
        "parameters", "FLOPs per sample", "CPU time, 1 thread, batch 16", "wall latency, batch 16"]
    assert f"{nl.prune.flops(dense, x)}" in text and f"{nl.prune.flops(small, x)}" in text
    for bad in (("gpu",), ()):
        with pytest.raises(ValueError, match="clocks must name"):
            speed_report(dense, small, x, clocks=bad)
