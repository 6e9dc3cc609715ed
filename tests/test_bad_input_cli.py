"""Bad input on the command line (audit): checked before any work, one line, nothing misleading."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"NNLAB_DEBUG": ""})


def one_line_error(r):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.output
    return errors[0]


def _csv(path, n=40, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(1, 3, n), rng.uniform(1, 3, n)
    path.write_text("a,b,y\n" + "".join(f"{u:.4f},{v:.4f},{u * v:.5f}\n" for u, v in zip(a, b)))
    return path


def _train(tmp_path, csv):
    r = invoke("train", "--data", csv, "--target", "y", "--hidden", "4", "--epochs", 1, "--runs-dir",
               tmp_path / "runs", "--name", "r", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    return tmp_path / "runs" / "r"


def test_export_refuses_a_folder_as_out_before_exporting(tmp_path):
    # the folder used to be found only after the export, in the message of a failed rename of a
    # temporary file ('.../.out.xyz.tmp' -> 'out')
    run = _train(tmp_path, _csv(tmp_path / "d.csv"))
    (tmp_path / "out").mkdir()
    err = one_line_error(invoke("export", run, "--format", "onnx", "--out", tmp_path / "out"))
    assert "is a folder; give a file name such as model.onnx" in err and ".tmp" not in err
    assert list((tmp_path / "out").iterdir()) == []
    (tmp_path / "f").write_text("x")
    err = one_line_error(invoke("export", run, "--format", "pt2", "--out", tmp_path / "f" / "m.pt2"))
    assert "is a file, not a folder" in err


def test_predict_says_how_many_rows_the_metrics_are_on(tmp_path):
    run = _train(tmp_path, _csv(tmp_path / "d.csv"))
    (tmp_path / "p.csv").write_text("a,b,y\n1,2,\n3,4,12\n2,2,4\n")
    r = invoke("predict", run, tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    assert "y: 3 rows (metrics on the 2 with a target value), RMSE" in r.output, r.output


def test_discover_negative_seed_names_the_option(tmp_path):
    # was "Error: expected non-negative integer" (numpy's words, no option named)
    r = invoke("discover", _csv(tmp_path / "d.csv"), "--target", "y", "--seed", -1, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "--seed" in r.output, r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, named", [
    (["--data", "spiral", "--features", "a"], "--features does not apply here: --data spiral is a built-in"),
    (["--data", "spiral", "--target", "y", "--task", "regression"], "--target, --task do not apply here"),
    (["--data", "digits", "--samples", "50"], "--samples does not apply here: --data digits"),
    (["--model", "kan", "--activation", "tanh"], "--activation does not apply to --model kan; it shapes MLP"),
    (["--model", "kan", "--batchnorm", "--dropout", "0.5"], "--batchnorm, --dropout do not apply to --model kan"),
    (["--model", "mlp", "--grid", "7"], "--grid does not apply to --model mlp; it shapes a KAN"),
])
def test_train_refuses_options_it_would_ignore(tmp_path, args, named):
    # they were dropped silently: a KAN trained without the asked-for activation, the spiral with
    # all its features although --features named one
    r = invoke("train", *args, "--epochs", 1, "--runs-dir", tmp_path / "runs", "--name", "r", "--no-progress",
               "--no-plots")
    assert named in one_line_error(r)
    assert not (tmp_path / "runs" / "r").exists()


def test_train_refuses_noise_for_a_csv(tmp_path):
    r = invoke("train", "--data", _csv(tmp_path / "d.csv"), "--target", "y", "--noise", 0.1, "--epochs", 1,
               "--runs-dir", tmp_path / "runs", "--name", "r", "--no-progress", "--no-plots")
    assert "--noise does not apply here" in one_line_error(r) and "is a CSV file" in one_line_error(r)
