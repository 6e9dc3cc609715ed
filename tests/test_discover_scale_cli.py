"""`nnlab discover` (several targets, the front, bad input) and `nnlab discover-many` (issue 12)."""
import csv
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nnlab.cli import app

torch.set_num_threads(1)


def _csv(path, cols, n=120, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(1, 3, n), rng.uniform(1, 3, n)
    data = {"a": a, "b": b, "y1": a * b, "y2": 2 * a / b, "y": a * b ** 2}
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in range(n):
            w.writerow([repr(float(data[c][i])) for c in cols])
    return path


def test_discover_several_targets_prints_the_front_and_writes_equations(tmp_path):
    p = _csv(tmp_path / "d.csv", ["a", "b", "y1", "y2"])
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["discover", str(p), "--target", "y1,y2", "--time-limit", "20", "--out", str(out),
                                   "--show-equations", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "y1 = a*b" in res.output and "y2 = 2*a/b" in res.output
    assert "features a, b" in res.output  # the other target is not a feature
    assert "equations for y1" in res.output and "complexity" in res.output
    for t in ("y1", "y2"):
        rows = list(csv.DictReader((out / t / "equations.csv").open()))
        assert rows and rows[0]["chosen"] in ("True", "False")
        assert sum(r["chosen"] == "True" for r in rows) == 1
        assert (out / t / "result.json").is_file()
    hidden = CliRunner().invoke(app, ["discover", str(p), "--target", "y1", "--time-limit", "20", "--out",
                                      str(tmp_path / "r2"), "--hide-equations"])
    assert hidden.exit_code == 0 and "complexity" not in hidden.output
    assert (tmp_path / "r2" / "equations.csv").is_file()


@pytest.mark.parametrize("args,match", [
    (["--target", "y1,y1"], "'y1' more than once"),
    (["--target", "y1,zz"], "target column 'zz' is not in d.csv"),
    (["--target", "y1,"], "has an empty name"),
    (["--target", "y1", "--n-jobs", "0"], "n_jobs must be a nonzero int"),
    (["--target", "y1", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
])
def test_discover_bad_input_is_one_line_and_writes_nothing(tmp_path, args, match):
    p = _csv(tmp_path / "d.csv", ["a", "b", "y1", "y2"])
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["discover", str(p), *args, "--out", str(tmp_path / "rep")])
    assert res.exit_code == 2, res.output
    assert match in res.output and res.output.count("\n") == 1 and res.output.startswith("Error:")
    assert not (tmp_path / "rep").exists()
    assert time.monotonic() - t0 < 20


def test_discover_many_runs_each_file_and_resumes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _csv(data / "one.csv", ["a", "b", "y"], seed=1)
    _csv(data / "two.csv", ["a", "b", "y"], seed=2)
    out = tmp_path / "out"
    args = ["discover-many", str(data), "--target", "y", "--time-limit", "10", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert all(r["formula"] == "a*b**2" for r in rows)
    for stem in ("one", "two"):
        assert (out / stem / "equations.csv").is_file() and (out / stem / "result.json").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert "one.csv" in res.output and "a*b**2" in res.output
    # interrupted batch: one report is missing; a rerun searches only that file
    import shutil

    shutil.rmtree(out / "two")
    stamp = (out / "one" / "result.json").stat().st_mtime_ns
    res = CliRunner().invoke(app, args + ["--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "1 file(s) already done" in res.output and "searching 1 file(s)" in res.output
    assert (out / "one" / "result.json").stat().st_mtime_ns == stamp
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["skipped (done)", "done"]


@pytest.mark.parametrize("kind,match", [
    ("empty", "holds no .csv files"),
    ("missing_target", "target column 'y' is not in"),
    ("no_path", "no file or folder at"),
    ("jobs0", "n_jobs must be a nonzero int"),
])
def test_discover_many_bad_input(tmp_path, kind, match):
    data = tmp_path / "data"
    data.mkdir()
    if kind == "missing_target":
        _csv(data / "one.csv", ["a", "b", "y"])
        _csv(data / "two.csv", ["a", "b", "y1"])
    elif kind == "jobs0":
        _csv(data / "one.csv", ["a", "b", "y"])
    target = data if kind != "no_path" else tmp_path / "nope"
    extra = ["--jobs", "0"] if kind == "jobs0" else []
    res = CliRunner().invoke(app, ["discover-many", str(target), "--target", "y", "--out", str(tmp_path / "out"),
                                   *extra])
    assert res.exit_code == 2, res.output
    assert match in res.output and res.output.startswith("Error:") and res.output.count("\n") == 1
    assert not (tmp_path / "out").exists()
