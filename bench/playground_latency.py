"""How quickly the playground obeys pause/delete and serves a new tab while heavy sessions train.

    PYTHONPATH=src python bench/playground_latency.py [--repeats 3] [--heavy 6] [--batch-size 2000]

Drives the app in-process (FastAPI's TestClient, torch threads = 1 as the server sets them) with
the slowest setup the limits allow (a KAN [2, 16, 16, 2], grid 30, k 5, on 2,000 points in one
full batch). Measured, API-agnostic (from the model's weights, so it also runs against older
versions of the playground):

* pause / delete: from sending the request to the last change of the weights (training stopped);
* new tab: the time of ``POST /api/sessions`` (a small setup) while ``--heavy`` heavy sessions play.

Prints medians over ``--repeats``.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

from fastapi.testclient import TestClient

from nnlab.playground.server import create_app
from nnlab.playground.sessions import SessionManager

HEAVY = {"model": "kan", "kan_hidden": "16,16", "grid": 30, "k": 5, "n_samples": 2000,
         "batch_size": 2000, "dataset": "spiral"}
SMALL = {"n_samples": 100, "batch_size": 25}


def weight_sum(s) -> float:
    return float(sum(p.detach().double().sum() for p in s.trainer.model.parameters()))


def stop_latency(c: TestClient, mgr: SessionManager, how: str) -> float:
    sid = c.post("/api/sessions", json=HEAVY).json()["id"]
    s = mgr.sessions[sid]
    c.post(f"/api/sessions/{sid}/play")
    w0 = weight_sum(s)
    while weight_sum(s) == w0:
        time.sleep(0.01)
    time.sleep(0.5)
    t0 = time.monotonic()
    if how == "pause":
        c.post(f"/api/sessions/{sid}/pause")
    else:
        c.delete(f"/api/sessions/{sid}")
    last, w, quiet = time.monotonic(), weight_sum(s), time.monotonic()
    while time.monotonic() - quiet < 1.5:  # stopped: no change for 1.5 s
        time.sleep(0.01)
        w2 = weight_sum(s)
        if w2 != w:
            w, last, quiet = w2, time.monotonic(), time.monotonic()
    if how == "pause":
        c.delete(f"/api/sessions/{sid}")
    return max(last - t0, 0.0)


def new_tab_latency(c: TestClient, mgr: SessionManager, heavy: int) -> float:
    ids = [c.post("/api/sessions", json=HEAVY).json()["id"] for _ in range(heavy)]
    for sid in ids:
        c.post(f"/api/sessions/{sid}/play")
    time.sleep(2.0)
    t0 = time.monotonic()
    r = c.post("/api/sessions", json=SMALL)
    dt = time.monotonic() - t0
    assert r.status_code == 201, r.text
    for sid in [*ids, r.json()["id"]]:
        c.delete(f"/api/sessions/{sid}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--heavy", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=2000,
                    help="2000: one slow full batch per epoch; 1: 1,000 minibatches per epoch")
    ap.add_argument("--skip-new-tab", action="store_true")
    args = ap.parse_args()
    HEAVY["batch_size"] = args.batch_size
    warnings.simplefilter("ignore")
    mgr = SessionManager(max_sessions=args.heavy + 2, orphan_timeout=600, idle_timeout=600)
    res: dict[str, list[float]] = {"pause": [], "delete": [], "new tab": []}
    with TestClient(create_app(mgr, sweep_interval=3600, warm_up=False), base_url="http://127.0.0.1:8765") as c:
        for _ in range(args.repeats):
            res["pause"].append(stop_latency(c, mgr, "pause"))
            res["delete"].append(stop_latency(c, mgr, "delete"))
            if not args.skip_new_tab:
                res["new tab"].append(new_tab_latency(c, mgr, args.heavy))
    print("| what | median s | all runs (s) |")
    print("|---|---|---|")
    for k, v in res.items():
        if not v:
            continue
        print(f"| {k} | {statistics.median(v):.3f} | {', '.join(f'{x:.3f}' for x in v)} |")


if __name__ == "__main__":
    main()
