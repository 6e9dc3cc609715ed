"""Issue 13's findings, one test each: no silent wrong answer, no traceback, no lost work (CLI side)."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env={"NNLAB_DEBUG": "", **(env or {})})


def one_line_error(r, code=2):
    """Exit ``code``, no traceback, and exactly one ``Error:`` line."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.output
    return errors[0]


def scaled_csv(path, n=160, seed=0, sep=",", bom=False, target=True):
    """x1 in [0, 1], x2 in [0, 1000]: without standardisation a network sees nonsense scales."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0, 1, n), rng.uniform(0, 1000, n)
    y = 2 * x1 + 0.004 * x2
    cols = ["x1", "x2", "y"] if target else ["x1", "x2"]
    lines = [sep.join(cols)] + [sep.join(f"{v:.6f}" for v in ((a, b, c) if target else (a, b)))
                                for a, b, c in zip(x1, x2, y)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig" if bom else "utf-8")
    return path


def train_csv(tmp_path, csv, name="r", *extra):
    return invoke("train", "--data", csv, "--target", "y", "--hidden", "16", "--epochs", 60, "--lr", 0.01,
                  "--batch-size", 32, "--runs-dir", tmp_path / "runs", "--name", name, "--no-progress",
                  "--no-plots", *extra)


# ---- silent wrong answers -------------------------------------------------------------------------
def test_loaded_csv_model_takes_raw_features_and_predict_reports_metrics(tmp_path):
    csv = scaled_csv(tmp_path / "d.csv")
    assert train_csv(tmp_path, csv).exit_code == 0
    run = tmp_path / "runs" / "r"
    model, spec = nl.load_model(run)
    assert isinstance(model, nl.Standardized) and isinstance(model.standardize, nl.Standardize)
    bare, _ = nl.models_io.load_model(run, preprocess=False)
    X, y, _ = nl.data.read_csv(csv, "y")
    Xr = torch.from_numpy(X).float()
    mean, std = Xr.mean(0), Xr.std(0)
    with torch.no_grad():  # the oracle: the bare network on inputs standardised by hand
        assert torch.allclose(model(Xr), bare((Xr - mean) / std), atol=1e-5)
        pred = model(Xr)[:, 0].double().numpy()
    r2 = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 > 0.9  # raw features in, good answers out
    # the standardisation is in the state dict (buffers), so it travels with the weights
    assert {"standardize.mean", "standardize.std"} <= set(model.state_dict())
    # predict on new raw data, with the target: the predictions and the metrics
    new = scaled_csv(tmp_path / "new.csv", n=40, seed=1)
    r = invoke("predict", run, new, "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    assert "RMSE" in r.output and "R²" in r.output
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "x1,x2,y,predicted_y" and len(rows) == 41
    Xn, yn, _ = nl.data.read_csv(new, "y")
    with torch.no_grad():
        expect = model(torch.from_numpy(Xn).float())[:, 0].numpy()
    got = np.array([float(line.split(",")[3]) for line in rows[1:]])
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    # without the target column: predictions only, on stdout; separators are sniffed
    scaled_csv(tmp_path / "feat.csv", n=5, seed=2, sep=";", target=False)
    r = invoke("predict", run, tmp_path / "feat.csv")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "x1,x2,predicted_y"
    # columns missing: one line naming them; --out refuses to overwrite
    (tmp_path / "bad.csv").write_text("x1,z\n1,2\n")
    assert "x2" in one_line_error(invoke("predict", run, tmp_path / "bad.csv"))
    assert "already exists" in one_line_error(invoke("predict", run, new, "--out", tmp_path / "p.csv"))


def test_predict_a_classifier_gives_the_original_labels(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (120, 2)) * [1, 500]
    lab = np.where(X[:, 0] > 0, 7, 3)
    (tmp_path / "c.csv").write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(X, lab)))
    r = invoke("train", "--data", tmp_path / "c.csv", "--target", "label", "--epochs", 40, "--runs-dir",
               tmp_path, "--name", "c", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    r = invoke("predict", tmp_path / "c", tmp_path / "c.csv", "-o", tmp_path / "p.csv")
    assert r.exit_code == 0 and "accuracy" in r.output, r.output
    acc = float(r.output.split("accuracy ")[1].split(")")[0].split(",")[0])
    assert acc > 0.9
    head = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert head == ["a", "b", "label", "predicted_label", "p_3", "p_7"]


@pytest.mark.parametrize("lr", ["1e30", "inf"])
def test_divergence_is_an_error_and_metrics_stay_json(tmp_path, lr):
    r = invoke("train", "--data", "xor", "--samples", 80, "--epochs", 3, "--optimizer", "sgd", "--lr", lr,
               "--runs-dir", tmp_path, "--name", "d", "--no-progress", "--no-plots")
    line = one_line_error(r)
    assert ("diverged" in line) if lr != "inf" else ("lr must be a finite number" in line)
    assert not (tmp_path / "d" / "model").exists()  # no NaN model saved
    if lr != "inf":
        def no_nan(name):
            raise AssertionError(f"{name} in metrics.jsonl")

        recs = [json.loads(s, parse_constant=no_nan) for s in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
        assert recs and None in (recs[-1]["train_risk"], recs[-1]["val_risk"])  # null, not NaN


def test_csv_bom_separators_and_duplicate_names(tmp_path):
    for name, kw in [("bom.csv", dict(bom=True)), ("semi.csv", dict(sep=";")), ("tab.csv", dict(sep="\t"))]:
        X, y, names = nl.data.read_csv(scaled_csv(tmp_path / name, n=10, **kw), "y")
        assert names == ["x1", "x2"] and X.shape == (10, 2) and np.isfinite(y).all(), name
    X, _, _ = nl.data.read_csv(tmp_path / "semi.csv", "y", sep=";")
    assert X.shape == (10, 2)
    with pytest.raises(ValueError, match="sep must be one character"):
        nl.data.read_csv(tmp_path / "semi.csv", "y", sep=";;")
    assert train_csv(tmp_path, tmp_path / "bom.csv", "bom", "--epochs", 1).exit_code == 0
    assert train_csv(tmp_path, tmp_path / "tab.csv", "tab", "--epochs", 1, "--sep", "tab").exit_code == 0
    (tmp_path / "dup.csv").write_text("a,b,a,y\n1,2,3,4\n5,6,7,8\n9,1,2,3\n")
    with pytest.raises(ValueError, match=r"duplicate column names: 'a' \(2 times\)"):
        nl.data.read_csv(tmp_path / "dup.csv", "y")
    with pytest.raises(ValueError, match="features name a column twice"):
        nl.data.read_csv(tmp_path / "bom.csv", "y", features=["x1", "x1"])
    assert "twice" in one_line_error(invoke("discover", tmp_path / "bom.csv", "--features", "x1,x1",
                                            "--out", tmp_path / "o"))
    assert "'a' (2 times)" in one_line_error(invoke("discover", tmp_path / "dup.csv", "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="distinct; repeated: 'a'"):
        nl.SymbolicRegressor(variables=["a", "a"], time_limit=1).fit(np.random.rand(20, 2), np.random.rand(20))


# ---- tracebacks ------------------------------------------------------------------------------------
@pytest.fixture
def trained(tmp_path):
    r = invoke("train", "--data", "xor", "--samples", 80, "--hidden", 8, "--epochs", 2, "--runs-dir", tmp_path,
               "--name", "a", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    return tmp_path / "a"


def test_damaged_model_files_are_one_line_errors(trained, tmp_path):
    st = trained / "model" / "model.safetensors"
    st.write_bytes(st.read_bytes()[:100])  # truncated
    for args in (["prune", trained, "--runs-dir", tmp_path], ["plot", "boundary", trained],
                 ["lora", "inject", trained, "--out", tmp_path / "lo"]):
        line = one_line_error(invoke(*args))
        assert "model.safetensors" in line and "not a readable safetensors file" in line
    (trained / "model" / "model.json").write_text("[1, 2]")
    assert "must hold a JSON object" in one_line_error(invoke("prune", trained, "--runs-dir", tmp_path))
    (trained / "model" / "model.json").write_text('{"format": "nnlab-model", "arch": "mlp", "kwargs": {"x": 1}}')
    assert "cannot build" in one_line_error(invoke("plot", "boundary", trained))


@pytest.mark.parametrize("content,message", [("[]", "must hold a JSON object"),
                                             ('{"format": "nnlab.checkpoint/1"}', "lacks the key(s) epoch"),
                                             ("{not json", "not valid JSON")])
def test_damaged_checkpoint_on_resume_is_reported_before_any_work(trained, tmp_path, content, message):
    (trained / "checkpoints" / "checkpoint.json").write_text(content)
    r = invoke("train", "--runs-dir", tmp_path, "--name", "a", "--resume", "--epochs", 4, "--no-progress")
    assert message in one_line_error(r) and "training" not in r.output


def test_os_errors_name_the_file_and_debug_shows_the_traceback(trained, tmp_path, monkeypatch):
    import nnlab.models_io as mio

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(trained / "model" / "model.json"))

    monkeypatch.setattr(mio, "read_json_object", denied)
    line = one_line_error(invoke("plot", "boundary", trained))
    assert line == f"Error: {trained / 'model' / 'model.json'}: Permission denied"
    for r in (invoke("--debug", "plot", "boundary", trained), invoke("plot", "boundary", trained, "--debug"),
              invoke("plot", "boundary", trained, env={"NNLAB_DEBUG": "1"})):
        assert isinstance(r.exception, PermissionError)  # re-raised: the traceback shows
    monkeypatch.setattr(mio, "read_json_object", lambda *a, **k: 1 / 0)  # a bug, not the user's fault
    line = one_line_error(invoke("plot", "boundary", trained), code=1)
    assert "internal error (ZeroDivisionError" in line and "--debug" in line


def test_output_paths_are_checked_before_the_search(tmp_path):
    (tmp_path / "afile").write_text("x")
    csv = scaled_csv(tmp_path / "d.csv", n=30)
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        r = invoke("discover", csv, "--out", out, "--time-limit", 30)
        assert "is a file" in one_line_error(r) and "formula" not in r.output
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "result.json").write_text("{}")
    r = invoke("discover", csv, "--out", tmp_path / "rep", "--time-limit", 30)
    assert "--overwrite" in one_line_error(r) and "formula" not in r.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    r = invoke("discover", csv, "--out", tmp_path / "mine", "--overwrite", "--time-limit", 30)
    assert "does not look like an nnlab output" in one_line_error(r)
    r = invoke("train", "--runs-dir", tmp_path / "afile", "--epochs", 1)
    assert "--runs-dir" in one_line_error(r) and "is a file" in r.output


# ---- lost work -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--val-fraction", "1.5"], ["--hidden", "0"], ["--data", "missing.csv", "--target", "y"],
                                  ["--lr", "-1"], ["--dropout", "1"], ["--data", "{dup}", "--target", "y"]])
def test_argument_errors_leave_no_run_folder(tmp_path, args):
    (tmp_path / "dup.csv").write_text("y,y\n1,2\n")
    args = [a.replace("{dup}", str(tmp_path / "dup.csv")) for a in args]
    r = invoke("train", "--runs-dir", tmp_path / "runs", "--name", "x", "--epochs", 1, *args)
    one_line_error(r)
    assert not (tmp_path / "runs").exists()


def test_resume_rules_and_prune_advice(trained, tmp_path):
    r = invoke("train", "--runs-dir", tmp_path, "--name", "a", "--resume", "--overwrite")
    assert "not both" in one_line_error(r)
    r = invoke("prune", trained, "--runs-dir", tmp_path, "--name", "p")
    assert r.exit_code == 0, r.output
    line = one_line_error(invoke("prune", trained, "--runs-dir", tmp_path, "--name", "p"))
    assert "already exists" in line and "--overwrite" in line and "--resume" not in line
    import shutil

    shutil.rmtree(trained / "checkpoints")
    before = (trained / "model" / "model.safetensors").read_bytes()
    r = invoke("train", "--runs-dir", tmp_path, "--name", "a", "--resume", "--epochs", 4, "--no-progress")
    assert "nothing to resume" in one_line_error(r)
    assert (trained / "model" / "model.safetensors").read_bytes() == before  # the model was not replaced


def test_stale_temp_files_are_removed_and_files_honour_the_umask(trained, tmp_path):
    stale = [trained / ".metrics.jsonl.abc123.tmp", trained / "checkpoints" / ".checkpoint.json.xyz.tmp"]
    for p in stale:
        p.write_text("half")
    r = invoke("train", "--runs-dir", tmp_path, "--name", "a", "--resume", "--epochs", 3, "--no-progress",
               "--no-plots")
    assert r.exit_code == 0, r.output
    assert not any(p.exists() for p in stale)
    mask = os.umask(0)
    os.umask(mask)
    for p in (trained / "config.json", trained / "metrics.jsonl", trained / "model" / "model.json",
              trained / "checkpoints" / "checkpoint.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, p
