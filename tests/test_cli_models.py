"""CLI on saved models: prune (every method), lora inject/train/merge, KAN runs, save/load round trips."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small residual MLP run on circles, shared by the tests below."""
    root = tmp_path_factory.mktemp("runs")
    r = invoke("train", "--data", "circles", "--samples", 160, "--model", "resnet", "--hidden", "16,16,16",
               "--epochs", 4, "--runs-dir", root, "--name", "base", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    r = invoke("train", "--data", "circles", "--samples", 160, "--hidden", "16,16", "--epochs", 2,
               "--runs-dir", root, "--name", "plain", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    return root


@pytest.mark.parametrize("method,extra", [
    ("magnitude", ["--sparsity", "0.8", "--finetune-epochs", "1"]),
    ("random", ["--sparsity", "0.5", "--scope", "layer"]),
    ("obd", ["--sparsity", "0.5"]),
    ("obs", ["--sparsity", "0.5"]),
    ("neurons", ["--sparsity", "0.5"]),
    ("residual_blocks", ["--tolerance", "10"]),
])
def test_prune_methods(trained, method, extra):
    source = trained / ("plain" if method == "neurons" else "base")  # neurons: widths not tied by skips
    r = invoke("prune", source, "--method", method, *extra, "--runs-dir", trained, "--name", method)
    assert r.exit_code == 0, r.output
    run = trained / method
    report = json.loads((run / "report.json").read_text())
    model, spec = nl.load_model(run)
    assert model(torch.zeros(3, 2)).shape == (3, 2)
    if method in ("magnitude", "random", "obd", "obs"):
        target = float(extra[1])
        assert report["pruned"]["sparsity"] == pytest.approx(target, abs=0.02)
        assert nl.prune.sparsity(model).overall == pytest.approx(target, abs=0.02)
    if method == "magnitude":
        assert "finetuned" in report and (run / "metrics.jsonl").is_file()
        assert report["finetuned"]["sparsity"] == pytest.approx(0.8, abs=0.02)  # masks held while fine-tuning
    if method == "neurons":
        assert spec["kwargs"]["sizes"] == [2, 8, 8, 2]
        assert report["pruned"]["params"] < report["before"]["params"]
    if method == "residual_blocks":  # a huge tolerance removes every block; the model reloads
        assert spec["kwargs"]["removed_blocks"] == [0, 1, 2]
        assert report["pruned"]["params"] < report["before"]["params"]


def test_lora_inject_train_merge(trained, tmp_path):
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    base, _ = nl.load_model(trained / "base")
    r = invoke("lora", "inject", trained / "base", "--out", tmp_path / "inj", "--rank", 2, "--alpha", 4)
    assert r.exit_code == 0, r.output
    inj, spec = nl.load_model(tmp_path / "inj")
    assert spec["lora"]["rank"] == 2
    with torch.no_grad():
        assert torch.allclose(inj(x), base(x), atol=1e-6)  # B = 0: the injected model equals the base
    r = invoke("lora", "train", tmp_path / "inj", "--epochs", 2, "--runs-dir", tmp_path, "--name", "lt", "--train-head",
               "--no-progress")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "lt" / "adapter.safetensors").stat().st_size < 8000
    trained_lora, spec = nl.load_model(tmp_path / "lt")
    r = invoke("lora", "merge", tmp_path / "lt", "--out", tmp_path / "merged")
    assert r.exit_code == 0, r.output
    merged, mspec = nl.load_model(tmp_path / "merged")
    assert mspec["lora"] is None
    with torch.no_grad():
        assert torch.allclose(merged(x), trained_lora(x), atol=1e-5)
        assert not torch.allclose(merged(x), base(x), atol=1e-4)  # training changed ΔW
    # bad input: merging a model without adapters, a rank that fits no layer
    r = invoke("lora", "merge", trained / "base", "--out", tmp_path / "m2")
    assert r.exit_code == 2 and "no LoRA adapters" in r.output
    r = invoke("lora", "inject", trained / "base", "--out", tmp_path / "i2", "--rank", 50)
    assert r.exit_code == 2 and "rank" in r.output and "Traceback" not in r.output


def test_kan_run_and_plot(tmp_path):
    r = invoke("train", "--model", "kan", "--data", "xor", "--samples", 64, "--hidden", "3", "--epochs", 2,
               "--runs-dir", tmp_path, "--name", "k", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    model, spec = nl.load_model(tmp_path / "k")
    assert isinstance(model, nl.KAN) and model.width[0] == 2
    r = invoke("plot", "kan", tmp_path / "k", "--out", tmp_path / "k.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "k.png").stat().st_size > 3000
    r = invoke("prune", tmp_path / "k", "--sparsity", "0.5", "--runs-dir", tmp_path)
    assert r.exit_code == 2 and "KAN" in r.output


def test_prune_bad_input(trained):
    r = invoke("prune", trained / "plain", "--method", "residual_blocks", "--runs-dir", trained)
    assert r.exit_code == 2 and "needs a residual model" in r.output
    r = invoke("prune", trained / "plain", "--sparsity", "1.5", "--runs-dir", trained)
    assert r.exit_code == 2 and "--sparsity must be in [0, 1)" in r.output
    r = invoke("prune", trained / "plain", "--method", "lottery", "--runs-dir", trained)
    assert r.exit_code == 2 and "unknown method 'lottery'" in r.output


def test_plot_activations(tmp_path):
    r = invoke("plot", "activations", "relu", "tanh", "--out", tmp_path / "a.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.png").stat().st_size > 3000
    r = invoke("plot", "activations", "relu", "nope", "--out", tmp_path / "b.png")
    assert r.exit_code == 2 and "unknown activation(s) nope" in r.output
