"""The command line through typer's CliRunner: train/plot/bench, run folders, bad input -> exit 2."""
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


def train(tmp_path, *extra, plots=False):
    return invoke("train", "--data", "xor", "--samples", 120, "--hidden", "8", "--epochs", 3, "--batch-size", 32,
                  "--runs-dir", tmp_path, "--no-progress", "--plots" if plots else "--no-plots", *extra)


def test_help_everywhere():
    for cmd in ([], ["train"], ["prune"], ["lora"], ["lora", "inject"], ["lora", "train"], ["lora", "merge"],
                ["plot"], ["plot", "loss"], ["plot", "boundary"], ["plot", "activations"], ["plot", "kan"],
                ["bench"]):
        r = invoke(*cmd, "--help")
        assert r.exit_code == 0, (cmd, r.output)
        assert "Usage" in r.output


def test_train_writes_run_folder(tmp_path):
    r = train(tmp_path, "--name", "a", plots=True)
    assert r.exit_code == 0, r.output
    run = tmp_path / "a"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"] == "xor" and cfg["epochs"] == 3 and cfg["hidden"] == [8]
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in lines] == [1, 2, 3]
    for rec in lines:
        for key in ("train_risk", "val_risk", "accuracy", "grad_norm", "lr", "time_s"):
            assert rec[key] is not None, key
        assert rec["lr"] == pytest.approx(0.01)
        assert 0.0 <= rec["accuracy"] <= 1.0 and rec["grad_norm"] > 0
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "boundary.png").stat().st_size > 1000
    assert (run / "model" / "model.json").is_file() and (run / "model" / "model.safetensors").is_file()
    assert any((run / "checkpoints").iterdir())
    model, spec = nl.models_io.load_model(run)
    assert spec["kwargs"]["sizes"] == [2, 8, 2]
    assert model(torch.zeros(4, 2)).shape == (4, 2)


def test_existing_run_folder_refused_then_overwrite_and_resume(tmp_path):
    assert train(tmp_path, "--name", "a").exit_code == 0
    r = train(tmp_path, "--name", "a")
    assert r.exit_code == 2 and "already exists" in r.output and "Traceback" not in r.output
    assert train(tmp_path, "--name", "a", "--overwrite").exit_code == 0
    r = invoke("train", "--name", "a", "--runs-dir", tmp_path, "--resume", "--epochs", 5, "--no-progress", "--no-plots",
               "--hidden", "8", "--data", "xor")  # repeating unchanged options is fine
    assert r.exit_code == 0, r.output
    lines = [json.loads(s) for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in lines] == [1, 2, 3, 4, 5]
    assert json.loads((tmp_path / "a" / "config.json").read_text())["epochs"] == 5
    r = invoke("train", "--name", "a", "--runs-dir", tmp_path, "--resume", "--hidden", "4", "--epochs", 6)
    assert r.exit_code == 2 and "differ from its config.json: hidden" in r.output


def test_config_file_yaml_and_toml(tmp_path):
    (tmp_path / "c.yaml").write_text("data: circles\nsamples: 100\nepochs: 2\nhidden: [6]\nname: y\n")
    r = invoke("train", "-c", tmp_path / "c.yaml", "--runs-dir", tmp_path, "--epochs", 1, "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "y" / "config.json").read_text())
    assert cfg["data"] == "circles" and cfg["epochs"] == 1 and cfg["hidden"] == [6]  # flag beats file
    (tmp_path / "c.toml").write_text('data = "xor"\nsamples = 80\nepochs = 1\nname = "t"\nbatch-size = 16\n')
    r = invoke("train", "-c", tmp_path / "c.toml", "--runs-dir", tmp_path, "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "t" / "config.json").read_text())["batch_size"] == 16


def test_csv_regression_and_classification(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(80, 2, generator=g)
    rows = ["a,b,y,label"] + [f"{a:.4f},{b:.4f},{a * a + b:.4f},{int(a > b)}" for a, b in X.tolist()]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    r = invoke("train", "--data", tmp_path / "d.csv", "--target", "y", "--features", "a,b", "--epochs", 2,
               "--runs-dir", tmp_path, "--name", "reg", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    spec = json.loads((tmp_path / "reg" / "model" / "model.json").read_text())
    assert spec["meta"]["task"] == "regression" and spec["kwargs"]["sizes"][0] == 2
    r = invoke("train", "--data", tmp_path / "d.csv", "--target", "label", "--epochs", 2,
               "--runs-dir", tmp_path, "--name", "cls", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    spec = json.loads((tmp_path / "cls" / "model" / "model.json").read_text())
    assert spec["meta"]["task"] == "classification" and spec["kwargs"]["sizes"] == [3, 32, 32, 2]


BAD = [
    (["train", "--no-such-option", "1"], "No such option"),
    (["train", "--data", "{csv}"], "--target"),
    (["train", "--data", "{csv}", "--target", "nope"], "'nope' is not in"),
    (["train", "--config", "{bad_cfg}"], "unknown key(s) in"),
    (["train", "--data", "nosuchset"], "unknown dataset"),
    (["train", "--model", "transformer"], "unknown model"),
    (["train", "--clip", "max:3"], "clip must be"),
    (["train", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "--resume", "--name", "missing"], "cannot resume"),
    (["train", "--data", "{text_csv}", "--target", "b"], "column 'a' of t.csv is not numeric: line 2 holds 'x'"),
    (["train", "--config", "{list_cfg}"], "must hold a mapping"),
    (["train", "--data", "{huge_csv}", "--target", "b"], "column 'b' of h.csv holds values beyond ±3.4e38"),
    (["train", "--config", "{tmp}/c.json"], "must end in .yaml, .yml or .toml"),
    (["plot", "loss", "{tmp}/nothing"], "no metrics log"),
    (["prune", "{tmp}/nothing", "--sparsity", "0.5"], "not a saved nnlab model"),
    (["bench", "no_such_bench", "--dir", "{tmp}"], "no benchmark"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_input_exit_2_without_traceback(tmp_path, args, message):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "bad.yaml").write_text("epochs: 3\nlearning_rate: 0.1\nwidth: 4\n")
    (tmp_path / "t.csv").write_text("a,b\nx,1\n2,3\n")
    (tmp_path / "list.yaml").write_text("- epochs\n- 3\n")
    (tmp_path / "c.json").write_text("{}")
    (tmp_path / "h.csv").write_text("a,b\n1,1.5e308\n2,-1.5e308\n3,0.5\n4,2.5\n5,1.5\n")  # float32 overflow
    fmt = {"csv": tmp_path / "d.csv", "bad_cfg": tmp_path / "bad.yaml", "tmp": tmp_path,
           "text_csv": tmp_path / "t.csv", "list_cfg": tmp_path / "list.yaml", "huge_csv": tmp_path / "h.csv"}
    r = invoke(*[a.format(**fmt) for a in args], "--runs-dir", tmp_path) if args[0] == "train" else \
        invoke(*[a.format(**fmt) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output, r.output
    assert "Traceback" not in r.output
    if "unknown key" in message:
        assert "learning_rate, width" in r.output


def test_plot_commands(tmp_path):
    assert train(tmp_path, "--name", "a").exit_code == 0
    out = tmp_path / "l.png"
    r = invoke("plot", "loss", tmp_path / "a", "--out", out)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1000
    r = invoke("plot", "boundary", tmp_path / "a", "--out", tmp_path / "b.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_version_and_bench(tmp_path):
    assert invoke("--version").output.strip() == f"nnlab {nl.__version__}"
    (tmp_path / "speed.py").write_text('"""How fast: a test bench."""\nimport sys\n'
                                       'open(sys.argv[1], "w").write(" ".join(sys.argv[2:]))\n')
    r = invoke("bench", "--dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert "speed" in r.output and "How fast: a test bench." in r.output
    out = tmp_path / "o.txt"
    r = invoke("bench", "speed", "--dir", tmp_path, str(out), "--quick", "3")
    assert r.exit_code == 0, r.output
    assert out.read_text() == "--quick 3"
    r = invoke("bench", "speed", "--dir", tmp_path, "--", str(out), "--help")  # `--`: --help is the script's
    assert r.exit_code == 0, r.output
    assert out.read_text() == "--help"
