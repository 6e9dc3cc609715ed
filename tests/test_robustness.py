"""Robustness suite (issue 13): generated hostile-but-fair inputs never produce a traceback.

* CSV files with random headers (blank, duplicate, unicode, quotes, separators inside), encodings
  (UTF-8 with and without BOM, Latin-1, UTF-16), separators (comma, semicolon, tab), NaN / inf /
  empty / text cells, ragged rows, tiny and huge values go through ``nl.data.read_csv`` (a result
  or a ``ValueError``, nothing else), ``nnlab train`` and ``nnlab discover`` (exit 0, or exit 2
  with one ``Error:`` line; a refused run leaves no run folder behind);
* the playground API is fuzzed from its own OpenAPI schema: every operation, with generated path
  and query parameters and JSON (or garbage) bodies, never answers 5xx.
"""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
runner = CliRunner()
SEPS = (",", ";", "\t")

header_names = st.one_of(st.sampled_from(["x", "y", "a", "b", "x y", "ÿ", "é", "", " ", "1", "λ", "sin",
                                          'q"t', "a,b", "a;b", "pi", "E", "lambda", "x0"]),
                         st.text(min_size=0, max_size=5))
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e3, max_value=1e3).map(lambda v: f"{v:.6g}"),
    st.integers(-5, 5).map(str),
    st.sampled_from(["", "nan", "NA", "null", "inf", "-inf", "1e308", "-1e308", "1e-320", "5e-324",
                     " 3 ", "1,5", "abc", "0x10", "1_000", "∞", "True"]),
)


@st.composite
def csv_files(draw):
    """``(bytes, a target name)``: a CSV file as a user might hand it over. One in three is hostile
    throughout (odd headers, encodings, ragged rows, text cells); the others are plausible files
    with odd names (unicode, spaces, sympy words), odd numbers (NaN, inf, huge, tiny) and odd
    separators, so that most of them get past the parser and into training and the search."""
    hostile = draw(st.integers(0, 2)) == 0
    n_cols = draw(st.integers(1, 4))
    if hostile:
        header = [draw(header_names) for _ in range(n_cols)]
        if draw(st.booleans()):
            header[draw(st.integers(0, n_cols - 1))] = "y"
    else:
        names = ["a", "b", "x y", "λ", "sin", "E", "pi", "lambda", "x0", "Q", "1st", "é"]
        header = draw(st.lists(st.sampled_from(names), min_size=n_cols, max_size=n_cols, unique=True)) + ["y"]
    odd = draw(st.integers(0, 3)) == 0  # a few odd values in an otherwise numeric file
    cell = cells if hostile else (st.one_of(st.floats(-100, 100).map(lambda v: f"{v:.4g}"), cells) if odd
                                  else st.floats(-100, 100).map(lambda v: f"{v:.4g}"))
    width = len(header)
    rows = [[draw(cell) for _ in range(width + (hostile and draw(st.integers(0, 9)) == 0))]
            for _ in range(draw(st.integers(0, 14)))]
    sep = draw(st.sampled_from(SEPS))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    w.writerow(header)
    w.writerows(rows)
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"] if hostile else ["utf-8", "utf-8-sig"]))
    data = buf.getvalue().encode(enc, errors="replace")
    target = draw(st.one_of(st.just("y"), st.sampled_from(header)))
    return data, target


def write(folder: Path, data: bytes) -> Path:
    p = folder / "data.csv"
    p.write_bytes(data)
    return p


def assert_clean_exit(r, folder: Path | None = None):
    assert r.exit_code in (0, 2), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output, r.output
    if r.exit_code == 2:
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1, r.output
        if folder is not None and folder.exists():  # only a diverged run keeps its folder (and log)
            assert "diverged" in errors[0], r.output


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_read_csv_returns_arrays_or_one_value_error(f):
    data, target = f
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d), data)
        try:
            X, y, names = nl.data.read_csv(path, target)
        except ValueError as e:
            assert str(e) and "\n" not in str(e)
            return
    assert X.ndim == 2 and X.shape[1] == len(names) >= 1 and y.shape == (X.shape[0],)
    assert target not in names and len(set(names)) == len(names)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_nnlab_train_on_any_csv_exits_cleanly(f):
    data, target = f
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d), data)
        r = runner.invoke(app, ["train", "--data", str(path), "--target", target, "--hidden", "4",
                                "--epochs", "2", "--runs-dir", str(Path(d) / "runs"), "--name", "r",
                                "--no-progress", "--no-plots"], env={"NNLAB_DEBUG": ""})
        assert_clean_exit(r, Path(d) / "runs" / "r")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_nnlab_discover_on_any_csv_exits_cleanly(f):
    data, target = f
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d), data)
        r = runner.invoke(app, ["discover", str(path), "--target", target, "--time-limit", "0.01",
                                "--out", str(Path(d) / "rep")], env={"NNLAB_DEBUG": ""})
        assert_clean_exit(r)
        assert (r.exit_code == 0) == (Path(d) / "rep" / "result.json").is_file()


# ---- the playground API, fuzzed from its OpenAPI schema -----------------------------------------
fastapi = pytest.importorskip("fastapi", reason="the playground extra is part of the test extra")
from fastapi.testclient import TestClient  # noqa: E402

from nnlab.playground.config import PlaygroundConfig  # noqa: E402
from nnlab.playground.server import create_app  # noqa: E402
from nnlab.playground.sessions import SessionManager  # noqa: E402

json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6)
                           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                      max_size=3),
                           max_leaves=8)
config_keys = list(PlaygroundConfig().as_dict())
config_values = st.one_of(st.integers(-3, 3000), st.floats(-1, 100, allow_nan=False), st.text(max_size=6),
                          st.sampled_from(["kan", "mlp", "xor", "spiral", "sine_1d", "2,3", "sgd", "norm", ""]),
                          st.booleans(), st.none())
bodies = st.one_of(st.none(), json_values,
                   st.dictionaries(st.sampled_from(config_keys), config_values, max_size=5))


def operations(app) -> list[tuple[str, str, dict]]:
    spec = app.openapi()
    return [(path, method.upper(), op) for path, item in spec["paths"].items()
            for method, op in item.items() if method in ("get", "post", "put", "delete", "patch")]


@pytest.fixture(scope="module")
def fuzz_client():
    mgr = SessionManager(max_sessions=3, orphan_timeout=60, idle_timeout=60, max_epochs=50)
    with TestClient(create_app(mgr, sweep_interval=3600, warm_up=False), base_url="http://127.0.0.1:8765",
                    raise_server_exceptions=False) as c:
        c.ops = operations(c.app)
        yield c


def test_schema_lists_every_route(fuzz_client):
    paths = {p for p, _, _ in fuzz_client.ops}
    assert {"/api/options", "/api/sessions", "/api/sessions/{sid}", "/api/sessions/{sid}/step",
            "/api/sessions/{sid}/events"} <= paths


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_api_calls_never_answer_5xx(fuzz_client, data):
    c = fuzz_client
    path, method, op = data.draw(st.sampled_from(c.ops))
    live = list(c.app.state.manager.sessions)
    params, url = {}, path
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        if p["in"] == "path":
            # draws that do not depend on the server's state (hypothesis replays them)
            use_live, idx = data.draw(st.booleans()), data.draw(st.integers(0, 7))
            sid = data.draw(st.text(min_size=1, max_size=12))
            if use_live and live:
                sid = live[idx % len(live)]
            url = url.replace("{" + p["name"] + "}", quote(sid, safe=""))
        elif p["in"] == "query":
            if path.endswith("/events"):
                params[p["name"]] = 1  # a stream that ends after one message
            elif data.draw(st.booleans()):
                lo, hi = schema.get("minimum", -5), min(schema.get("maximum", 200), 5)
                params[p["name"]] = data.draw(st.one_of(st.integers(lo - 2, hi + 2), st.text(max_size=4)))
    kwargs = {}
    if "requestBody" in op:
        if data.draw(st.integers(0, 5)) == 0:
            kwargs["content"] = data.draw(st.binary(max_size=40))
            kwargs["headers"] = {"Content-Type": data.draw(st.sampled_from(["application/json", "text/plain"]))}
        else:
            body = data.draw(bodies)
            if body is not None:
                kwargs["json"] = body
    r = c.request(method, url, params=params, **kwargs)
    assert r.status_code < 500, (method, url, params, kwargs, r.status_code, r.text[:300])
    if len(c.app.state.manager.sessions) >= 3:  # keep room for creates
        for sid in list(c.app.state.manager.sessions)[:2]:
            c.delete(f"/api/sessions/{sid}")
