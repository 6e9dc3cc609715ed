"""The playground's HTTP API, through FastAPI's test client (issue 8)."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the playground extra (fastapi, uvicorn) is not installed")
try:  # starlette's TestClient runs on httpx2 (older releases: httpx)
    import httpx2  # noqa: F401
except ImportError:
    pytest.importorskip("httpx", reason="FastAPI's test client needs httpx2 (or httpx)")

from fastapi.testclient import TestClient  # noqa: E402

import nnlab as nl  # noqa: E402
from nnlab.playground import formula as formula_mod  # noqa: E402
from nnlab.playground.config import parse_config  # noqa: E402
from nnlab.playground.server import create_app, static_dir  # noqa: E402
from nnlab.playground.sessions import SessionManager  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*outside the grid range:UserWarning")
SMALL = {"n_samples": 100, "batch_size": 25}


@pytest.fixture
def client():
    mgr = SessionManager(max_sessions=3, orphan_timeout=60, idle_timeout=60)
    with TestClient(create_app(mgr, sweep_interval=3600, warm_up=False), base_url="http://127.0.0.1:8765") as c:
        c.manager = mgr
        yield c


def new(client, **cfg) -> str:
    r = client.post("/api/sessions", json={**SMALL, **cfg})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_page_and_static_files_served_without_external_urls(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/app.js" in r.text
    for name in ("app.js", "style.css", "index.html"):
        text = (Path(static_dir()) / name).read_text()
        assert "http://" not in text and "https://" not in text, f"{name} references the network"
        assert client.get(f"/static/{name}").status_code == 200


def test_options_offer_the_library_choices(client):
    o = client.get("/api/options").json()
    assert o["activations"] == nl.activations.names()
    assert set(o["datasets"]["classification"]) == {"xor", "circles", "gaussians", "spiral", "moons"}
    dims = {d["name"]: d["dim"] for d in o["datasets"]["regression"]}
    assert 1 in dims.values() and 2 in dims.values()
    assert o["defaults"] == parse_config({}).as_dict()


def test_config_round_trips_through_the_url():
    cfg = parse_config({"dataset": "saddle_2d", "model": "kan", "kan_hidden": "4,3", "grid": "7",
                        "batchnorm": "1", "lr": "0.003"})
    assert parse_config(dict(parse_qsl(cfg.as_query()))) == cfg
    assert cfg.kan_hidden == (4, 3) and cfg.batchnorm is True


@pytest.mark.parametrize("cfg", [{"layers": 3, "width": 7}, {"batchnorm": 1, "residual": 1},
                                 {"dataset": "sine_1d", "layers": 0},
                                 {"model": "kan", "kan_hidden": "4,3", "grid": 7, "k": 2},
                                 {"model": "kan", "kan_hidden": "", "dataset": "saddle_2d"}])
def test_parameter_bound_counts_the_real_model(cfg):
    from nnlab.playground.config import _param_count
    from nnlab.playground.trainer import build_model

    c = parse_config(cfg)
    assert _param_count(c) == sum(p.numel() for p in build_model(c).parameters())


def test_mlp_session_steps_and_reports_state(client):
    sid = new(client, dataset="exp_sin_2d", layers=2, width=8, activation="tanh", lr=0.02)
    r = client.post(f"/api/sessions/{sid}/step", params={"n": 15})
    assert r.status_code == 200 and r.json()["epoch"] == 15
    st = client.get(f"/api/sessions/{sid}/state").json()
    h = st["history"]
    assert h["epoch"][0] == 0 and h["epoch"][-1] == 15
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert len(st["grad_norms"]) == 3 and all(g >= 0 for g in st["grad_norms"])
    assert st["surface"]["dim"] == 2 and len(st["surface"]["value"]) == st["surface"]["res"] ** 2
    assert [layer["width"] for layer in st["neurons"]] == [8, 8]
    assert [len(layer["values"]) for layer in st["neurons"]] == [8, 8]
    sid = new(client, dataset="exp_sin_2d", layers=1, width=40)
    layer = client.get(f"/api/sessions/{sid}/state").json()["neurons"][0]
    assert layer["width"] == 40 and len(layer["values"]) == 16  # the page draws at most 16
    data = client.get(f"/api/sessions/{sid}/data").json()
    assert len(data["train"]["x"]) + len(data["test"]["x"]) == 100


def test_grad_norms_match_autograd():
    from nnlab.playground.trainer import Trainer

    torch.set_num_threads(1)
    tr = Trainer(parse_config({**SMALL, "dataset": "sine_1d", "batch_size": 100, "layers": 1,
                               "width": 4}))
    X, y = tr.split.X_train, tr.split.y_train
    tr.model.zero_grad()
    tr.loss_fn(tr.model(X), y).backward()
    expected = [float(torch.cat([p.grad.flatten() for p in m.parameters()]).norm())
                for m in tr.model.children()]
    tr.step()  # one full batch: the recorded norms are of exactly that gradient
    assert tr.grad_norms == pytest.approx(expected, rel=1e-5)


BAD = [
    ({"width": -1}, "width"),
    ({"activation": "nope"}, "activation"),
    ({"layers": 50}, "layers"),
    ({"grid": 1000}, "grid"),
    ({"n_samples": 10**7}, "n_samples"),
    ({"dataset": "mnist"}, "dataset"),
    ({"model": "cnn"}, "model"),
    ({"kan_hidden": "5,x"}, "kan_width"),
    ({"kan_hidden": "3,3,3,3,3"}, "kan_hidden"),
    ({"lr": "nan"}, "lr"),
    ({"init": "zeros?"}, "init"),
    ({"colour": "red"}, "colour"),
    ({"reg": "kan", "model": "mlp"}, "reg=kan"),
    ({"batch_size": 500, "n_samples": 100}, "batch_size"),
    ({"batchnorm": 1, "batch_size": 1}, "batch norm"),
    ({"layers": 8, "width": 64}, "parameters"),
    ({"model": "kan", "kan_hidden": "16,16,16", "grid": 30}, "parameters"),
]


@pytest.mark.parametrize("cfg, word", BAD, ids=[w for _, w in BAD])
def test_bad_setup_is_a_4xx_with_a_message(client, cfg, word):
    r = client.post("/api/sessions", json=cfg)
    assert r.status_code == 422
    assert word in r.json()["detail"]


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                        st.lists(st.integers(-3, 40), max_size=4))
FUZZ_KEYS = st.sampled_from(["dataset", "noise", "n_samples", "batch_size", "model", "layers",
                             "width", "activation", "kan_hidden", "grid", "k", "lr", "reg",
                             "batchnorm", "seed", "bogus"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(FUZZ_KEYS, JSON_VALUES, max_size=4))
def test_any_json_setup_gets_201_or_a_4xx_never_a_500(client, body):
    r = client.post("/api/sessions", json={**SMALL, **body})
    assert r.status_code in (201, 422), r.text
    if r.status_code == 201:
        assert client.delete(f"/api/sessions/{r.json()['id']}").status_code == 200
    else:
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_malformed_bodies_are_4xx(client):
    assert client.post("/api/sessions", json=[1, 2]).status_code == 422
    r = client.post("/api/sessions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    sid = new(client, dataset="sine_1d")
    assert client.post(f"/api/sessions/{sid}/step", params={"n": 10**6}).status_code == 422


def test_session_limit_unknown_session_and_close(client):
    ids = [new(client, dataset="sine_1d") for _ in range(3)]
    r = client.post("/api/sessions", json={"dataset": "sine_1d"})
    assert r.status_code == 429 and "close another tab" in r.json()["detail"]
    assert client.delete(f"/api/sessions/{ids[0]}").status_code == 200
    assert client.get(f"/api/sessions/{ids[0]}/state").status_code == 404
    assert client.post(f"/api/sessions/{ids[1]}/close").json() == {"closed": ids[1]}
    assert client.post("/api/sessions/nope/play").status_code == 404
    new(client, dataset="sine_1d")  # room again


def test_concurrent_creates_respect_the_session_limit(client):
    import asyncio

    from nnlab.playground.sessions import TooManySessions

    mgr = client.manager
    cfg = parse_config({**SMALL, "dataset": "sine_1d"})

    async def many():
        return await asyncio.gather(*(mgr.create(cfg) for _ in range(5)), return_exceptions=True)

    out = client.portal.call(many)
    assert sum(isinstance(o, TooManySessions) for o in out) == 2
    assert len(mgr.sessions) == mgr.max_sessions == 3


def test_orphaned_and_idle_sessions_are_swept(client):
    mgr = client.manager
    sid = new(client, dataset="sine_1d")
    assert client.portal.call(mgr.sweep) == []
    mgr.orphan_timeout = 0.0
    assert client.portal.call(mgr.sweep) == [sid]
    assert client.get(f"/api/sessions/{sid}").status_code == 404
    mgr.orphan_timeout, mgr.idle_timeout = 60.0, 0.0
    sid = new(client, dataset="sine_1d")
    mgr.sessions[sid].subscribers = 1  # an open tab, but paused and idle
    assert client.portal.call(mgr.sweep) == [sid]


def test_reset_with_new_setup_and_bad_reset_keeps_session(client):
    sid = new(client, dataset="sine_1d")
    client.post(f"/api/sessions/{sid}/step", params={"n": 3})
    r = client.post(f"/api/sessions/{sid}/reset", json={**SMALL, "dataset": "parabola_1d"})
    assert r.status_code == 200 and r.json()["epoch"] == 0
    assert r.json()["config"]["dataset"] == "parabola_1d"
    r = client.post(f"/api/sessions/{sid}/reset", json={"grid": 0})
    assert r.status_code == 422 and "grid" in r.json()["detail"]
    assert client.get(f"/api/sessions/{sid}").json()["config"]["dataset"] == "parabola_1d"


def test_diverging_session_is_reported_and_can_be_reset(client):
    sid = new(client, dataset="exp_sin_2d", optimizer="sgd", lr=10, activation="relu", init="he",
              layers=3, width=16)
    r = client.post(f"/api/sessions/{sid}/step", params={"n": 20})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "error" and "learning rate" in body["error"]
    assert client.post(f"/api/sessions/{sid}/play").status_code == 409
    r = client.post(f"/api/sessions/{sid}/reset", json={**SMALL, "dataset": "exp_sin_2d", "lr": 0.01})
    assert r.json()["status"] == "paused" and r.json()["error"] is None
    assert client.post(f"/api/sessions/{sid}/step").json()["status"] == "paused"


def test_play_trains_in_the_background_and_pause_stops(client):
    sid = new(client, dataset="sine_1d")
    assert client.post(f"/api/sessions/{sid}/play").json()["status"] == "playing"
    deadline = time.monotonic() + 10
    while client.get(f"/api/sessions/{sid}").json()["epoch"] < 3:
        assert time.monotonic() < deadline, "the background task did not train"
        time.sleep(0.02)
    assert client.post(f"/api/sessions/{sid}/pause").json()["status"] == "paused"
    e1 = client.get(f"/api/sessions/{sid}").json()["epoch"]
    time.sleep(0.3)
    assert client.get(f"/api/sessions/{sid}").json()["epoch"] <= e1 + 1  # a chunk may finish


def test_play_pauses_itself_at_the_epoch_limit(client):
    client.manager.max_epochs = 3
    sid = new(client, dataset="sine_1d")
    client.post(f"/api/sessions/{sid}/play")
    deadline = time.monotonic() + 10
    while client.get(f"/api/sessions/{sid}").json()["status"] == "playing":
        assert time.monotonic() < deadline, "the session did not pause at max_epochs"
        time.sleep(0.02)
    assert client.get(f"/api/sessions/{sid}").json()["epoch"] == 3
    r = client.post(f"/api/sessions/{sid}/play")
    assert r.status_code == 409 and "limit of 3 epochs" in r.json()["detail"]


def test_event_stream_sends_data_then_state(client):
    import json

    sid = new(client, dataset="sine_1d")
    with client.stream("GET", f"/api/sessions/{sid}/events", params={"limit": 1}) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        text = "".join(s.iter_text())
    events = [blk for blk in text.split("\n\n") if blk.strip()]
    kinds = [blk.split("\n")[0] for blk in events]
    assert kinds == ["event: data", "event: state"]
    state = json.loads(events[1].split("data: ", 1)[1])
    assert state["status"] == "paused" and state["epoch"] == 0
    assert client.manager.sessions[sid].subscribers == 0  # the stream ended: unsubscribed


def test_formula_needs_a_kan_on_regression(client):
    sid = new(client, dataset="sine_1d")
    r = client.post(f"/api/sessions/{sid}/formula")
    assert r.status_code == 409 and "KAN" in r.json()["detail"]


def test_kan_session_reports_edges_with_importance(client):
    sid = new(client, dataset="exp_sin_2d", model="kan", kan_hidden="3", grid=5, lr=0.02)
    client.post(f"/api/sessions/{sid}/step", params={"n": 5})
    st = client.get(f"/api/sessions/{sid}/state").json()
    assert [(e["in"], e["out"]) for e in st["edges"]] == [(2, 3), (3, 1)]
    e = st["edges"][0]
    assert len(e["y"]) == 3 and len(e["y"][0]) == 2 and len(e["x"]) == 2
    assert max(max(r) for r in e["importance"]) == pytest.approx(1.0)
    assert len(st["grad_norms"]) == 2
    if not formula_mod.available():
        r = client.post(f"/api/sessions/{sid}/formula")
        assert r.status_code == 501 and "symbolic" in r.json()["detail"]


def test_discover_formula_of_a_trained_kan(client):
    sid = new(client, dataset="sine_1d", model="kan", kan_hidden="1", noise=0, lr=0.03)
    client.post(f"/api/sessions/{sid}/step", params={"n": 30})
    r = client.post(f"/api/sessions/{sid}/formula")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["r2"] > 0.99 and out["unmatched"] == 0 and out["variables"] == ["x"]
    assert "<math" in out["mathml"] and "x" in out["latex"]
    assert client.get(f"/api/sessions/{sid}").json()["epoch"] == 30  # the session is untouched


def test_kan_sparsity_regularisation_runs(client):
    sid = new(client, dataset="saddle_2d", model="kan", kan_hidden="2", reg="kan", lam=0.01)
    assert client.post(f"/api/sessions/{sid}/step", params={"n": 2}).json()["status"] == "paused"


@pytest.mark.parametrize("name", ["xor", "circles", "gaussians", "spiral", "moons"])
def test_classification_sets_give_a_decision_boundary(client, name):
    sid = new(client, dataset=name, clip="norm", clip_value=1.0, reg="l2", lam=1e-4)
    client.post(f"/api/sessions/{sid}/step", params={"n": 2})
    st = client.get(f"/api/sessions/{sid}/state").json()
    s = st["surface"]
    assert len(s["label"]) == s["res"] ** 2 and all(0 <= p <= 1 for p in s["conf"])
    assert 0 <= st["history"]["test_acc"][-1] <= 1


def test_cli_has_the_playground_command():
    from typer.testing import CliRunner

    from nnlab.cli import app

    r = CliRunner().invoke(app, ["playground", "--help"])
    assert r.exit_code == 0 and "--port" in r.output and "127.0.0.1" in r.output
