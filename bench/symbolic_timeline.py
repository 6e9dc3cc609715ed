"""Where the wall time of one ``fit(n_jobs=2)`` goes (issue 12): a timeline of every job (which
process, start, end, CPU seconds), of the merges and inline jobs in the main process, and of the
parts of ``fit`` before and after the candidates (``run_jobs``), beside the same fit at ``n_jobs=1``.

Per equation it prints the fit's wall time in both modes, the serial parts outside ``run_jobs``
(relevance, validation split before; verdict, front after), the span of ``run_jobs``, each worker's
busy seconds and idle seconds inside that span, and the main process's own work (inline jobs,
merges) inside it. ``--jobs`` lists every job. (``bench/symbolic_spans.py`` shows what happens inside
the jobs: the surrogate and power-factor fits, the leaves, the joins.)

    python bench/symbolic_timeline.py --ids I.15.3t,I.30.3,I.13.4 --jobs
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import PUBLIC, load_equations, sample  # noqa: E402


TRACE = os.path.join(tempfile.gettempdir(), f"nnlab-timeline-{os.getpid()}.txt")


def traced_call(pos, j, job, trace=TRACE):  # runs in the worker (pickled by value from __main__)
    import os as _os
    import time as _time

    t, c = _time.time(), _time.process_time()
    r = job()
    name = job.candidate.name + (f"/{job.candidate.seed}" if job.candidate.seed else "") + \
        ("" if job.shard is None else f"[{job.shard[0]}]") + ("+join" if getattr(r, "joined", False) else "") + \
        ("+helper" if job.helper else "")
    with open(trace, "a") as f:
        f.write(f"{name} {_os.getpid()} {t:.4f} {_time.time():.4f} {_time.process_time() - c:.4f}\n")
    return pos, j, r


def main() -> None:
    import warnings

    import torch

    import nnlab.symbolic.parallel as parallel
    import nnlab.symbolic.regressor as regressor
    from nnlab.symbolic import SymbolicRegressor

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=str(PUBLIC))
    ap.add_argument("--ids", default="I.15.3t,I.30.3,I.13.4")
    ap.add_argument("--jobs", action="store_true", help="list every job")
    ap.add_argument("--no-serial", action="store_true", help="skip the n_jobs=1 fit")
    ap.add_argument("--dask", action="store_true", help="n_jobs=2 through a 2-worker Dask LocalCluster")
    args = ap.parse_args()
    backend = contextlib.nullcontext
    if args.dask:
        import joblib
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)  # noqa: F841
        backend = lambda: joblib.parallel_config(backend="dask")  # noqa: E731
    eqs = {e["id"]: e for e in load_equations(Path(args.csv))}
    events: list[tuple] = []
    merge0, here0, jobs0, call0 = parallel.CandidateJob.merge, parallel._run_here, regressor.run_jobs, parallel._call

    def merge(self, parts):
        t, c = time.time(), time.process_time()
        r = merge0(self, parts)
        events.append(("merge", self.candidate.name, os.getpid(), t, time.time(), time.process_time() - c))
        return r

    def here(jobs, n, *a, **k):
        t, c = time.time(), time.process_time()
        r = here0(jobs, n, *a, **k)
        if n:
            events.append(("inline", ",".join(j.candidate.name for j in jobs[:len(r)]), os.getpid(), t, time.time(),
                           time.process_time() - c))
        return r

    def jobs(*a, **k):
        t = time.time()
        r = jobs0(*a, **k)
        events.append(("run_jobs", "", os.getpid(), t, time.time(), 0.0))
        return r

    parallel.CandidateJob.merge, parallel._run_here, regressor.run_jobs = merge, here, jobs
    parallel._call = traced_call
    from nnlab.symbolic.search import run_candidate  # noqa: F401  (warm imports)

    Xw, yw = sample(next(iter(eqs.values())), 100, 0)
    with backend():
        SymbolicRegressor(time_limit=5, n_jobs=2, search=["rational", "raw", "decompose"], steps=20).fit(Xw, yw)
    for i in args.ids.split(","):
        eq = eqs[i]
        X, y = sample(eq, 500, 0)
        w1 = None
        if not args.no_serial:
            t = time.perf_counter()
            e1 = SymbolicRegressor(time_limit=3600, variables=eq["variables"], n_jobs=1).fit(X, y)
            w1 = time.perf_counter() - t
        events.clear()
        open(TRACE, "w").close()
        t0 = time.time()
        with backend():
            e2 = SymbolicRegressor(time_limit=3600, variables=eq["variables"], n_jobs=2).fit(X, y)
        t1 = time.time()
        rj = next(e for e in events if e[0] == "run_jobs")
        rows = []
        with open(TRACE) as f:
            for ln in f:
                name, pid, a, b, c = ln.split()
                rows.append(("job", name, int(pid), float(a), float(b), float(c)))
        busy: dict[int, float] = {}
        main_pid = os.getpid()
        for e in rows:
            busy[e[2]] = busy.get(e[2], 0.0) + e[4] - e[3]
        own = sum(e[4] - e[3] for e in events if e[0] in ("merge", "inline"))
        span = rj[4] - rj[3]
        same = str(e1.formula_) == str(e2.formula_) if w1 is not None else None
        print(f"{i:9s} n_jobs=1 {w1 or 0:6.2f}s  n_jobs=2 {t1 - t0:6.2f}s  before {rj[3] - t0:5.2f} "
              f"run_jobs {span:6.2f} after {t1 - rj[4]:5.2f}  main-own {own:5.2f}  "
              + "  ".join(f"w{p % 1000}:{b:5.2f}" for p, b in busy.items()) + f"  same={same}", flush=True)
        if args.jobs:
            for e in sorted(rows + [x for x in events if x[0] != "run_jobs"], key=lambda e: e[3]):
                who = "main" if e[2] == main_pid else f"w{e[2] % 1000}"
                print(f"    {e[0]:6s} {e[1]:22s} {who:5s} {e[3] - rj[3]:6.2f} -> {e[4] - rj[3]:6.2f}  cpu {e[5]:5.2f}")


if __name__ == "__main__":
    main()
