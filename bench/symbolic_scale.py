"""Symbolic search at scale (issue 12): wall time of the Feynman equations with ``n_jobs=1``,
``n_jobs=2`` (joblib processes) and a 2-worker Dask ``LocalCluster``, whether the formulas are
identical, and the cost of the progress display and of the ``equations_`` bookkeeping.

Per equation: 500 training rows (seed 0, as ``bench/feynman.py``), ``SymbolicRegressor(
time_limit=--time-limit, random_state=0)``. The default time limit (3600 s) never binds, so every
mode runs the same candidates and the fronts can be compared bit for bit (a binding limit would
let two workers finish more candidates than one: more work, another formula). The modes run one
after the other for each equation, in a rotating order (interleaved), ``--repeats`` times; the
table gives medians, and the 1-minute load average (``os.getloadavg``) is recorded around every
fit. Pools are started (and warmed with one small fit) before timing: process start-up is not
counted.

Overhead: a separate pass fits each equation with ``verbose=True`` (progress written to
/dev/null) and times, inside the same fit, every call of the progress display and of
``build_front`` / ``Front.to_dicts``; the share of the fit's wall time is reported.

    python bench/symbolic_scale.py                      # the default subset, all three modes
    python bench/symbolic_scale.py --ids all --repeats 1  # every public equation
    python bench/symbolic_scale.py --ids I.13.4 --modes n_jobs=1,n_jobs=2 --no-overhead
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import load_equations, sample  # noqa: E402

# the shared data folder lies next to the checkout (/work/main -> /work/shared) or above a worktree
DEFAULT_CSV = next((str(d / "shared" / "feynman" / "public.csv") for d in ROOT.parents
                    if (d / "shared" / "feynman" / "public.csv").exists()), "public.csv")
DEFAULT_IDS = "I.12.1,I.14.4,II.34.29b,I.39.11,II.37.1,I.34.1,III.8.54,I.26.2,I.37.4,I.50.26"


MODES = ["n_jobs=1", "n_jobs=2", "dask 2 workers"]


def front_key(est):
    """Everything the comparison of modes looks at: every row of the front and the chosen formula."""
    return (tuple((r.candidate, str(r.formula), r.val_error) for r in est.equations_), str(est.formula_))


def fit(eq, X, y, time_limit, n_jobs, verbose=False, **kw):
    from nnlab.symbolic import SymbolicRegressor

    est = SymbolicRegressor(time_limit=time_limit, variables=eq["variables"], n_jobs=n_jobs, verbose=verbose, **kw)
    t0 = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t0, est


def overhead(eqs, time_limit):
    """Seconds spent in progress calls and front bookkeeping, against the fit's wall time."""
    import nnlab.symbolic.front as front
    import nnlab.symbolic.progress as progress
    import nnlab.symbolic.regressor as regressor

    spent = {"progress": 0.0, "front": 0.0}

    def timed(fn, bucket):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[bucket] += time.perf_counter() - t
        return wrapper

    P = progress.SearchProgress
    for name in ("__init__", "not_applicable", "start", "end", "close"):
        setattr(P, name, timed(getattr(P, name), "progress"))
    regressor.build_front = timed(front.build_front, "front")
    front.Front.to_dicts = timed(front.Front.to_dicts, "front")
    devnull = open(os.devnull, "w")
    sys_stderr, sys.stderr = sys.stderr, devnull  # the display renders (to /dev/null) as at a terminal
    total = 0.0
    try:
        for eq in eqs:
            X, y = sample(eq, 500, 0)
            dt, _ = fit(eq, X, y, time_limit, 1, verbose=True)
            total += dt
    finally:
        sys.stderr = sys_stderr
    return total, spent


def micro_overhead(reps: int = 20) -> tuple[float, float]:
    """Seconds per search of (front + JSON rows + table, live display with 6 candidates), measured in
    isolation on six typical formulas (a cheaper stand-in for :func:`overhead`)."""
    import sympy

    from nnlab.symbolic.front import build_front
    from nnlab.symbolic.progress import SearchProgress
    from nnlab.symbolic.search import Candidate, CandidateResult, complexity

    x0, x1 = sympy.symbols("x0 x1")
    exprs = [x0 * x1, sympy.Float(2.5) * sympy.exp(sympy.Float(0.3) * sympy.log(x0) ** 2) + x1,
             sympy.sin(x0) * x1 ** 2 + sympy.Float(1.2),
             (5040 * x1 + sympy.pi * (-sympy.E * (9 * sympy.sqrt(2) * x0 - 44) ** 2 + 1200)) / (720 * sympy.pi),
             sympy.sqrt(x0) / x1, sympy.Float(0.5) * x0 ** 3 - x1]
    names = ["loglog", "logy", "raw", "composite", "deep_raw", "deep_loglog"]
    res = [CandidateResult(Candidate(n), expr=e, val_error=0.1 / (i + 1), train_error=0.05, complexity=complexity(e),
                           complete=True, seconds=1.0) for i, (n, e) in enumerate(zip(names, exprs))]

    class Job:
        def __init__(self, c):
            self.candidate = c

    dev = open(os.devnull, "w")
    t = time.perf_counter()
    for _ in range(reps):
        f = build_front(res)
        f.chosen = 0
        f.to_dicts()
        f.table()
    front_s = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        p = SearchProgress(True, len(res), stream=dev)
        p.not_applicable(["loglog (log-log space): the target changes sign"])
        for r in res:
            p.start(Job(r.candidate))
            p.end(Job(r.candidate), r)
        p.close(res, [r.candidate for r in res])
    return front_s, (time.perf_counter() - t) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=DEFAULT_CSV, help=f"the Feynman CSV (default {DEFAULT_CSV})")
    ap.add_argument("--ids", default=DEFAULT_IDS, help="comma-separated equation ids, or 'all'")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {MODES}")
    ap.add_argument("--time-limit", type=float, default=3600.0, help="seconds per fit (default: never binds)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-overhead", action="store_true", help="skip the progress/front overhead pass")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "symbolic_scale.md"))
    ap.add_argument("--micro-overhead", action="store_true", help="only time the front and the display in isolation")
    args = ap.parse_args()
    if args.micro_overhead:
        front_s, prog_s = micro_overhead()
        print(f"front+table per search: {front_s * 1e3:.2f} ms; progress per search (6 candidates): "
              f"{prog_s * 1e3:.2f} ms")
        return
    import warnings

    warnings.simplefilter("ignore")
    import joblib
    import torch

    torch.set_num_threads(1)
    modes = [m.strip() for m in args.modes.split(",")]
    bad = [m for m in modes if m not in MODES]
    if bad or "n_jobs=1" not in modes:
        raise SystemExit(f"--modes must include n_jobs=1 and name only {MODES}; got {modes}")
    eqs = load_equations(Path(args.csv))
    if args.ids != "all":
        want = args.ids.split(",")
        eqs = [e for e in eqs if e["id"] in want]
        missing = sorted(set(want) - {e["id"] for e in eqs})
        if missing:
            raise SystemExit(f"unknown equation id(s): {', '.join(missing)}")
    client = cluster = None
    if "dask 2 workers" in modes:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    # warm-up: start the loky pool and the Dask workers and run every candidate kind once in each
    # process (this one included): a kind's first run imports modules (torch.optim's first step
    # imports torch._dynamo, ~1 s) that would otherwise be timed, once per process, in the first
    # equation that reaches it. The target (positive, noisy, no closed form) lets every kind run.
    w = next(e for e in load_equations(Path(args.csv)) if len(e["variables"]) >= 3)
    Xw, _ = sample(w, 100, 0)
    yw = np.random.default_rng(0).uniform(4.0, 5.0, len(Xw)) + np.sin(3 * Xw[:, 0]) * Xw[:, 1] + np.exp(-Xw[:, 2] ** 2)
    warm = dict(steps=10)
    fit(w, Xw, yw, 60, 1, **warm)
    for _ in range(2):  # twice: each worker gets most kinds at least once
        if "n_jobs=2" in modes:
            fit(w, Xw, yw, 60, 2, **warm)
        if client is not None:
            with joblib.parallel_config(backend="dask"):
                fit(w, Xw, yw, 60, 2, **warm)
    times = {(e["id"], m): [] for e in eqs for m in modes}
    fronts = {(e["id"], m): set() for e in eqs for m in modes}
    formulas = {}
    loads = []
    for rep in range(args.repeats):
        for k, eq in enumerate(eqs):
            X, y = sample(eq, 500, 0)
            r = (k + rep) % len(modes)
            for m in modes[r:] + modes[:r]:
                load0 = os.getloadavg()[0]
                if m == "dask 2 workers":
                    with joblib.parallel_config(backend="dask"):
                        dt, est = fit(eq, X, y, args.time_limit, 2)
                else:
                    dt, est = fit(eq, X, y, args.time_limit, 1 if m == "n_jobs=1" else 2)
                load = (load0 + os.getloadavg()[0]) / 2
                loads.append(load)
                times[(eq["id"], m)].append(dt)
                fronts[(eq["id"], m)].add(front_key(est))
                formulas[eq["id"]] = str(est.formula_)
                print(f"rep {rep} {eq['id']:10s} {m:15s} {dt:7.2f}s load {load:5.2f} {est.formula_}", flush=True)
    if client is not None:
        client.close()
        cluster.close()
    total_fit, spent = (None, None) if args.no_overhead else overhead(eqs, args.time_limit)

    med = {k: float(np.median(v)) for k, v in times.items()}
    tot = {m: sum(med[(e["id"], m)] for e in eqs) for m in modes}
    same = {m: all(fronts[(e["id"], m)] == fronts[(e["id"], "n_jobs=1")] and len(fronts[(e["id"], m)]) == 1
                   for e in eqs) for m in modes}
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    ncpu = os.cpu_count()
    load_med, load_max = float(np.median(loads)), float(max(loads))
    quiet = load_max < 0.5 * ncpu
    lines = [
        "# Symbolic search at scale: n_jobs, Dask, progress and front overhead (issue 12)", "",
        f"Machine: {model}, {ncpu} logical CPUs. 1-minute load average during the timed fits: median "
        f"{load_med:.2f}, max {load_max:.2f}" + ("." if quiet else
        f" (**the machine was shared**: more runnable processes than cores, so two worker processes competed with "
        f"other jobs and the parallel speed-ups below are depressed and noisy; rerun on a quiet machine)."), "",
        "Command (one command reruns everything and rewrites this file):", "",
        "    python bench/symbolic_scale.py " + " ".join(sys.argv[1:]), "",
        f"Equations: {len(eqs)} of the public Feynman set ({', '.join(e['id'] for e in eqs)}); 500 rows each, seed 0, "
        f"1 torch thread per job, time limit {args.time_limit:g} s (never binds, so every mode runs the same "
        f"candidates). Modes interleaved per equation (rotating order), {args.repeats} repeat(s), medians.", "",
        "Code paths: `n_jobs=1` runs the candidates one after the other in the process; `n_jobs=2` hands them to "
        "`joblib.Parallel(n_jobs=2, return_as='generator_unordered', pre_dispatch='n_jobs')` (loky processes), "
        "cheap candidates first, then the expensive ones longest first (`parallel.dispatch_order`); the Dask row "
        "runs the same call inside `joblib.parallel_config(backend='dask')` with a `dask.distributed.LocalCluster("
        "n_workers=2, threads_per_worker=1, processes=True)`. Pools started and warmed before timing (every candidate kind once in every process). "
        "\"Identical\" compares every row of the front (candidate, formula, validation error) bit for bit.", "",
        "## Wall time (median of repeats, seconds)", "",
        "| equation | " + " | ".join(modes) + " | formula (n_jobs=1) |", "|---|" + "---|" * len(modes) + "---|"]
    for e in eqs:
        f = formulas[e["id"]]
        f = f if len(f) < 70 else f[:67] + "..."
        lines.append(f"| {e['id']} | " + " | ".join(f"{med[(e['id'], m)]:.2f}" for m in modes) + f" | `{f}` |")
    lines.append("| **total** | " + " | ".join(f"**{tot[m]:.1f}**" for m in modes) + " | |")
    lines += ["", "| mode | total s | speed-up vs n_jobs=1 | goal | fronts identical to n_jobs=1 |",
              "|---|---|---|---|---|"]
    goals = {"n_jobs=1": "–", "n_jobs=2": "≥ 1.7×", "dask 2 workers": "≥ 1.5×"}
    for m in modes:
        sp = tot["n_jobs=1"] / tot[m]
        lines.append(f"| {m} | {tot[m]:.1f} | {sp:.2f}× | {goals[m]} | {'yes' if same[m] else 'NO'} |")
    if spent is not None:
        share = {k: 100 * v / total_fit for k, v in spent.items()}
        lines += ["", "## Overhead of the progress display and of the front", "",
                  f"One more pass over the same {len(eqs)} equations with `verbose=True` (tqdm bar and per-candidate "
                  "lines rendered to /dev/null), timing every call into `SearchProgress` and into `build_front` / "
                  "`Front.to_dicts` inside the fits:", "",
                  "| part | seconds | share of fit time | goal |", "|---|---|---|---|",
                  f"| progress display | {spent['progress']:.3f} | {share['progress']:.3f} % | ≤ 2 % |",
                  f"| equations_ bookkeeping | {spent['front']:.3f} | {share['front']:.3f} % | ≤ 2 % |",
                  f"| fits (wall) | {total_fit:.1f} | 100 % | |"]
    text = "\n".join(lines) + "\n"
    from nnlab._io import write_text

    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
