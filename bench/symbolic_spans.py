"""What the two workers of a parallel symbolic search do inside each job (issue 12): one line per
span (a candidate, a surrogate or power-factor fit, a leaf, a join), per process, in start order.
(``bench/symbolic_timeline.py`` gives the jobs themselves: each worker's busy and idle seconds.)

Each equation is fitted once with ``n_jobs=1`` and once with ``n_jobs=2`` (or through a 2-worker
Dask ``LocalCluster``: ``--dask``), 500 rows, seed 0, as ``bench/symbolic_scale.py``. The spans come
from wrappers that ``bench/spans/`` installs in every process at start-up (its
``sitecustomize.py``, put on the workers' PYTHONPATH); nnlab itself is not changed. Read with the
code of ``nnlab/symbolic/parallel.py`` and ``exchange.py``: a surrogate fit shown in a process is
made there; a fit another job made (taken from the exchange) is not shown.

    python bench/symbolic_spans.py I.29.16,I.13.4
    python bench/symbolic_spans.py I.13.4 --dask --min 0.05
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def show(path: str, min_seconds: float) -> None:
    rows = [json.loads(line) for line in open(path)]
    marks = [r for r in rows if "mark" in r]
    spans = [r for r in rows if "label" in r]
    for begin, end in zip(marks[::2], marks[1::2]):
        inside = [s for s in spans if begin["t"] <= s["t0"] <= end["t"]]
        pids = sorted({s["pid"] for s in inside} | {begin["pid"]}, key=lambda p: (p != begin["pid"], p))
        print(f"=== {begin['mark']}: {end['t'] - begin['t']:.2f} s  ([0]: the search's own process, "
              f"[1], [2]: workers)")
        for s in sorted(inside, key=lambda s: s["t0"]):
            if s["t1"] - s["t0"] < min_seconds or s.get("made here") is False:
                continue
            col = pids.index(s["pid"])
            extra = {k: v for k, v in s.items() if k not in ("pid", "label", "t0", "t1", "made here")}
            print(f"  {'      ' * col}[{col}] {s['t0'] - begin['t']:6.2f}–{s['t1'] - begin['t']:6.2f} "
                  f"({s['t1'] - s['t0']:5.2f}) {s['label']} {extra if extra else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ids", help="comma-separated equation ids of the public Feynman set")
    ap.add_argument("--dask", action="store_true", help="the parallel run on a 2-worker Dask LocalCluster")
    ap.add_argument("--min", type=float, default=0.1, help="hide spans shorter than this (s)")
    args = ap.parse_args()
    out = tempfile.NamedTemporaryFile(prefix="nnlab-spans-", suffix=".jsonl", delete=False).name
    os.environ["NNLAB_SPANS"] = out  # before any worker starts: they inherit it
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE / "spans"), str(ROOT / "src"),
                                                os.environ.get("PYTHONPATH", "")])
    sys.path[:0] = [str(HERE / "spans"), str(ROOT / "src"), str(HERE)]
    import warnings

    warnings.simplefilter("ignore")
    import joblib
    import numpy as np
    import job_spans
    import torch

    from feynman import load_equations, sample
    from symbolic_scale import DEFAULT_CSV, fit

    torch.set_num_threads(1)
    job_spans.install()
    want = args.ids.split(",")
    eqs = [e for e in load_equations(Path(DEFAULT_CSV)) if e["id"] in want]
    if len(eqs) != len(want):
        raise SystemExit(f"unknown equation id(s): {sorted(set(want) - {e['id'] for e in eqs})}")
    client = None
    if args.dask:
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))
    backend = joblib.parallel_config(backend="dask") if args.dask else joblib.parallel_config()
    # warm-up as bench/symbolic_scale.py: every candidate kind once in every process (first runs import)
    w = next(e for e in load_equations(Path(DEFAULT_CSV)) if len(e["variables"]) >= 3)
    Xw, _ = sample(w, 100, 0)
    yw = np.random.default_rng(0).uniform(4.0, 5.0, len(Xw)) + np.sin(3 * Xw[:, 0]) * Xw[:, 1] + np.exp(-Xw[:, 2] ** 2)
    fit(w, Xw, yw, 60, 1, steps=10)
    for _ in range(2):
        with backend:
            fit(w, Xw, yw, 60, 2, steps=10)
    parallel = "dask 2 workers" if args.dask else "n_jobs=2"
    for eq in eqs:
        X, y = sample(eq, 500, 0)
        for mode in ("n_jobs=1", parallel):
            with (backend if mode != "n_jobs=1" else joblib.parallel_config()):
                job_spans._log({"mark": f"{eq['id']} {mode}", "pid": os.getpid(), "t": time.time()})
                _, est = fit(eq, X, y, 3600, 1 if mode == "n_jobs=1" else 2)
                job_spans._log({"mark": "end", "pid": os.getpid(), "t": time.time()})
            print(f"{eq['id']} {mode}: {est.formula_}", file=sys.stderr)
    if client is not None:
        client.close()
    show(out, args.min)
    os.unlink(out)


if __name__ == "__main__":
    main()
