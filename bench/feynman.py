"""Feynman benchmark: exact recovery, fresh-point error and wall time of nnlab's SymbolicRegressor
and of its peers (gplearn, pykan) on the AI Feynman equations (issue 11).

Per equation (see /work/shared/feynman/README.md): sample ``--n-train`` rows uniformly from the
ranges (seed 0), add SRBench's target noise of standard deviation γ·RMS(y) (``--noise``, seed 2),
fit, then score on 1,000 fresh noiseless points (seed 1).
Exact: without noise, relative RMSE on the fresh points < 1e-6 or ``simplify(returned − truth) == 0``
(the public file's rule); under noise, the returned formula must be the truth symbolically after
snapping (:func:`feynman_classes.symbolically_equal`): a formula that is merely close is not exact.

Each (method, equation) runs in its own worker process (1 torch thread) that the runner kills at
``--cap`` CPU seconds (+ 60 s for scoring; wall-clock backstop 20 x cap), so a hung method cannot
block the run; the cap counts CPU time because the machine is shared. Records are saved
after every equation in ``bench/results/feynman/<set>__<method>__noise<γ>.json``; a rerun skips the
equations already there (``--force`` redoes them). ``bench/results/symbolic.md`` is rewritten
from all saved records (``--report-only`` just rewrites it).

    python bench/feynman.py --suite ours                 # ours: public, unseen, noise 1e-3/1e-2 (what the lead reruns)
    python bench/feynman.py --suite peers                # gplearn and pykan on all 51 public equations
    python bench/feynman.py --methods gplearn --ids I.12.1,I.14.4 --noise 0.01 --force
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
from feynman_classes import NOISE_LEVELS, add_noise, parse_truth, relative_error, symbolically_equal  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RUNS_DIR = RESULTS / "feynman"
# the public file lives in shared/ beside the checkout (main) or two levels up (a worktree)
PUBLIC = next((p for p in (ROOT / "shared", ROOT.parent / "shared", ROOT.parent.parent / "shared")
               if (p / "feynman" / "public.csv").is_file()), ROOT.parent / "shared") / "feynman" / "public.csv"
UNSEEN = HERE / "data" / "feynman_unseen.csv"
# the rest of the AI Feynman database (the 15 equations in neither file above, and the 14 bonus
# equations not in the unseen file): never used while developing the unseen set's methods
HELDOUT = HERE / "data" / "feynman_heldout.csv"
SCORE_GRACE = 60  # CPU seconds allowed for scoring (sympy) after the fit's cap
WALL_FACTOR = 20  # wall-clock backstop: a worker is killed after WALL_FACTOR x cap seconds whatever its CPU use

# --suite: (csv, method, noise, max_vars) runs; the commands the results file documents.
SUITES = {
    "ours": [("public", "ours", 0.0, None), ("unseen", "ours", 0.0, None), ("heldout", "ours", 0.0, None),
             ("public", "ours", 1e-3, 3), ("public", "ours", 1e-2, 3)],
    "peers": [("public", "gplearn", 0.0, None), ("public", "pykan", 0.0, None)],
}


def load_equations(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["variables"] = r["variables"].split()
        r["ranges"] = [tuple(float(v) for v in p.split(",")) for p in r["ranges"].split()]
        r["n_vars"] = int(r["n_vars"])
        if len(r["variables"]) != r["n_vars"] or len(r["ranges"]) != r["n_vars"]:
            raise ValueError(f"{path}: equation {r['id']} lists {len(r['variables'])} variables and "
                             f"{len(r['ranges'])} ranges but n_vars={r['n_vars']}")
    return rows


def sample(eq: dict, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import sympy

    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in eq["ranges"]])
    truth, syms = parse_truth(eq["formula"], eq["variables"])
    y = np.asarray(sympy.lambdify(syms, truth, "numpy")(*X.T), dtype=np.float64) * np.ones(n)
    return X, y


def runs_path(set_name: str, method: str, noise: float) -> Path:
    return RUNS_DIR / f"{set_name}__{method}__noise{noise:g}.json"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 when unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _score(rec: dict, eq: dict, expr, noise: float) -> None:
    import sympy

    truth, syms = parse_truth(eq["formula"], eq["variables"])
    Xf, _ = sample(eq, 1000, 1)
    try:
        rel = relative_error(expr, truth, syms, Xf)
    except Exception:  # noqa: BLE001 - a formula that does not evaluate is simply not exact
        rel = float("nan")
    rec["rel_err"] = rel
    exact = bool(noise == 0 and np.isfinite(rel) and rel < 1e-6)
    symbolic = False
    if np.isfinite(rel) and rel < 1e-3 and sympy.count_ops(expr) < 80:
        signal.setitimer(signal.ITIMER_PROF, 30)
        try:
            symbolic = symbolically_equal(expr, truth, syms, Xf)
        except _Timeout:
            pass
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    rec["symbolic"] = bool(symbolic)
    rec["exact"] = bool(exact or symbolic)


def run_one(method: str, eq: dict, n_train: int, time_limit: float, cap: int, noise: float,
            clock: str = "cpu") -> dict:
    """Fit one equation with one method in this (worker) process and score it."""
    os.environ["TQDM_DISABLE"] = "1"
    import warnings

    import torch

    from feynman_peers import FITTERS

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rec = {"method": method, "id": eq["id"], "n_vars": eq["n_vars"], "truth": eq["formula"], "noise": noise,
           "formula": None, "exact": False, "symbolic": False, "rel_err": None, "seconds": None, "status": "ok",
           "detail": ""}
    X, y = sample(eq, n_train, 0)
    y = add_noise(y, noise, seed=2)
    # the cap counts this process's CPU seconds (SIGPROF), not wall time: the machine is shared
    signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, cap)
    wall = time.perf_counter
    t0, c0 = wall(), time.process_time()
    if clock == "cpu":
        # Soft limits count this worker's CPU seconds, as gplearn's does: the library's deadlines read
        # time.monotonic()/perf_counter() and, for the search's job deadline, time.time(), so in this
        # one-fit process all three become the CPU clock (else a loaded machine cuts the search short).
        time.monotonic = time.perf_counter = time.time = time.process_time
    try:
        expr, detail = FITTERS[method](eq, X, y, time_limit)
        signal.setitimer(signal.ITIMER_PROF, 0)
        rec["seconds"] = round(wall() - t0, 2)
        rec["cpu_seconds"] = round(time.process_time() - c0, 2)
    except _Timeout:
        rec.update(status="timeout", seconds=round(wall() - t0, 2), cpu_seconds=float(cap))
        return rec
    except Exception as e:  # a method crashing is a result to record, not a reason to stop the bench
        signal.setitimer(signal.ITIMER_PROF, 0)
        rec.update(status="crash", seconds=round(wall() - t0, 2),
                   cpu_seconds=round(time.process_time() - c0, 2), detail=f"{type(e).__name__}: {e}"[:200])
        return rec
    rec["formula"], rec["detail"] = str(expr), detail
    _score(rec, eq, expr, noise)
    return rec


def _child(conn, *args) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # peers print progress; the runner prints one line per equation
    try:
        conn.send(run_one(*args))
    except BaseException as e:  # noqa: BLE001 - report, then let the process end
        conn.send({"status": "crash", "detail": f"{type(e).__name__}: {e}"[:200]})
    conn.close()


def run_jobs(jobs: list[tuple[str, dict, float, str]], args, cmd: str) -> None:
    """Run (method, eq, noise, set) jobs, ``args.workers`` processes at a time, each killed at
    ``cap + SCORE_GRACE`` s; every finished record is saved at once (atomic JSON write)."""
    from nnlab._io import write_json

    ctx = mp.get_context("spawn")  # a fresh interpreter per equation: no state leaks between fits
    pending = list(jobs)
    running = []
    while pending or running:
        while pending and len(running) < args.workers:
            method, eq, noise, set_name = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, daemon=True,
                            args=(send, method, eq, args.n_train, args.time_limit, args.cap, noise, args.clock))
            p.start()
            send.close()
            running.append((p, recv, time.perf_counter(), method, eq, noise, set_name))
        time.sleep(0.2)
        still = []
        for job in running:
            p, recv, t0, method, eq, noise, set_name = job
            rec = None
            if recv.poll():
                try:
                    rec = recv.recv()
                except EOFError:
                    rec = {"status": "crash", "detail": f"worker died (exit code {p.exitcode})"}
            elif not p.is_alive():
                rec = {"status": "crash", "detail": f"worker died (exit code {p.exitcode})"}
            elif (cpu := _cpu_seconds(p.pid)) > args.cap + SCORE_GRACE or time.perf_counter() - t0 > WALL_FACTOR * args.cap:
                p.kill()  # hung (e.g. inside C code that never returns to Python): the run goes on
                why = "CPU cap" if cpu > args.cap + SCORE_GRACE else f"wall backstop ({WALL_FACTOR} x cap)"
                rec = {"status": "timeout", "cpu_seconds": round(cpu, 2), "detail": f"killed by the runner: {why}"}
            if rec is None:
                still.append(job)
                continue
            p.join(5)
            base = {"method": method, "id": eq["id"], "n_vars": eq["n_vars"], "truth": eq["formula"], "noise": noise,
                    "formula": None, "exact": False, "symbolic": False, "rel_err": None,
                    "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": None, "status": "ok", "detail": ""}
            base.update(rec)
            base["command"] = cmd
            base["load1"] = round(os.getloadavg()[0], 1)  # the machine is shared: say how busy it was
            path = runs_path(set_name, method, noise)
            saved = json.loads(path.read_text()) if path.is_file() else {}
            saved[eq["id"]] = base
            write_json(path, saved)
            print(f"{set_name:7s} {method:8s} γ={noise:<6g} {eq['id']:10s} exact={base['exact']!s:5s} "
                  f"rel={base['rel_err']} t={base['seconds']} {base['status']} {base['formula']}", flush=True)
        running = still


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=None, help="equation file (default: the public 51)")
    ap.add_argument("--suite", choices=sorted(SUITES), default=None, help="a documented set of runs (see SUITES)")
    ap.add_argument("--methods", default="ours", help="comma list of ours,gplearn,pykan")
    ap.add_argument("--ids", default=None, help="comma list of equation ids")
    ap.add_argument("--max-vars", type=int, default=None, help="only equations with at most this many variables")
    ap.add_argument("--noise", type=float, default=0.0, help=f"γ: noise std = γ·RMS(y); SRBench uses {NOISE_LEVELS}")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--time-limit", type=float, default=40.0,
                    help="soft limit per equation (s): ours starts no new candidate, gplearn no new generation")
    ap.add_argument("--cap", type=int, default=120, help="hard limit per fit, in CPU seconds of the worker")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="what the soft limit counts: CPU seconds of the worker (default; fair on a shared machine) or wall")
    ap.add_argument("--force", action="store_true", help="redo equations already saved")
    ap.add_argument("--report-only", action="store_true", help="only rewrite bench/results/symbolic.md")
    args = ap.parse_args()
    if args.noise < 0:
        raise SystemExit(f"--noise must be >= 0, got {args.noise}")
    if args.workers < 1 or args.cap < 1 or args.time_limit <= 0:
        raise SystemExit("--workers and --cap must be >= 1 and --time-limit > 0")
    sets = {"public": PUBLIC, "unseen": UNSEEN, "heldout": HELDOUT}
    if args.csv and Path(args.csv).resolve() not in (PUBLIC.resolve(), UNSEEN.resolve(), HELDOUT.resolve()):
        sets[Path(args.csv).stem] = Path(args.csv)
    if args.suite:
        plan = SUITES[args.suite]
    else:
        known = {PUBLIC.resolve(): "public", UNSEEN.resolve(): "unseen", HELDOUT.resolve(): "heldout"}
        name = known.get(Path(args.csv).resolve(), Path(args.csv).stem) if args.csv else "public"
        methods = args.methods.split(",")
        plan = [(name, m, args.noise, args.max_vars) for m in methods]
    from feynman_peers import FITTERS

    for _, m, _, _ in plan:
        if m not in FITTERS:
            raise SystemExit(f"unknown method {m!r}; valid: {', '.join(FITTERS)}")
    cmd = "python bench/feynman.py " + " ".join(sys.argv[1:])
    jobs = []
    for set_name, method, noise, max_vars in ([] if args.report_only else plan):
        eqs = load_equations(sets[set_name])
        if args.ids:
            want = set(args.ids.split(","))
            unknown = want - {e["id"] for e in eqs}
            if unknown:
                raise SystemExit(f"--ids: {', '.join(sorted(unknown))} not in {sets[set_name]}")
            eqs = [e for e in eqs if e["id"] in want]
        mv = max_vars if max_vars is not None else args.max_vars
        if mv is not None:
            eqs = [e for e in eqs if e["n_vars"] <= mv]
        path = runs_path(set_name, method, noise)
        done = set(json.loads(path.read_text())) if path.is_file() and not args.force else set()
        jobs += [(method, e, noise, set_name) for e in eqs if e["id"] not in done]
    order = {}
    for k, (m, e, g, set_name) in enumerate(jobs):
        order.setdefault((set_name, g, e["id"]), k)
    jobs.sort(key=lambda j: order[(j[3], j[2], j[1]["id"])])  # methods interleaved equation by equation
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    if jobs:
        run_jobs(jobs, args, cmd)
    from feynman_report import write_report

    write_report(RUNS_DIR, sets)
    print(f"wrote {RESULTS / 'symbolic.md'}")


if __name__ == "__main__":
    main()
