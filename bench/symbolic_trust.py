"""Trust checks of nl.SymbolicRegressor (issue 11, items 3–6): noise, junk columns, extreme scales.

For each Feynman equation with at most ``--max-vars`` variables (``../shared/feynman/public.csv``):
500 training rows (seed 0) with Gaussian noise of ``γ·RMS(y)`` added (seed 2), fit, and count the
formula "exact after snapping" when ``sympy.simplify(returned − truth) == 0`` (SRBench's rule for
noisy data), plus ``complete_``/``result_["status"]``. ``--junk 2`` appends two uniform columns of
noise; ``--scale 1e300`` multiplies y. Each equation runs in a worker process with 1 torch thread.

    python bench/symbolic_trust.py --gamma 1e-2 --max-vars 3 --workers 2 --time-limit 40
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feynman import _alarm, _Timeout, load_equations, sample  # noqa: E402  (same sampling as the main bench)


def run_one(eq: dict, gamma: float, junk: int, scale: float, time_limit: float, cap: int) -> dict:
    import warnings

    import sympy
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from nnlab.symbolic import SymbolicRegressor

    X, y = sample(eq, 500, 0)
    rng = np.random.default_rng(2)
    y = y + gamma * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(len(y))
    names = list(eq["variables"])
    if junk:
        X = np.hstack([X, rng.uniform(1, 5, (len(y), junk))])
        names += [f"junk{j}" for j in range(junk)]
    y = y * scale
    rec = {"id": eq["id"], "n_vars": eq["n_vars"], "truth": eq["formula"], "exact": False}
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(cap)
    t0 = time.perf_counter()
    try:
        est = SymbolicRegressor(time_limit=time_limit, variables=names).fit(X, y)
    except _Timeout:
        return {**rec, "status": "timeout", "seconds": cap}
    finally:
        signal.alarm(0)
    rec.update(seconds=round(time.perf_counter() - t0, 2), formula=str(est.formula_), complete=bool(est.complete_),
               status=est.result_["status"], dropped=[d["variable"] for d in est.result_["dropped"]])
    syms = sympy.symbols(names)
    truth = sympy.parse_expr(eq["formula"], local_dict=dict(zip(names, syms))) * sympy.nsimplify(scale)
    signal.alarm(30)
    try:
        rec["exact"] = bool(sympy.simplify(est.formula_ - truth) == 0)
    except _Timeout:
        pass
    finally:
        signal.alarm(0)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "feynman" / "public.csv"))
    ap.add_argument("--gamma", type=float, default=1e-2)
    ap.add_argument("--junk", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--max-vars", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=40.0)
    ap.add_argument("--cap", type=int, default=150)
    ap.add_argument("--out", default=None, help="JSON file for the records")
    args = ap.parse_args()
    eqs = [e for e in load_equations(Path(args.csv)) if e["n_vars"] <= args.max_vars]
    recs = []
    with ProcessPoolExecutor(max_workers=args.workers) as ex:
        futs = [ex.submit(run_one, e, args.gamma, args.junk, args.scale, args.time_limit, args.cap) for e in eqs]
        for fut in as_completed(futs):
            r = fut.result()
            recs.append(r)
            print(f"{r['id']:10s} exact={r['exact']!s:5s} status={r.get('status')} t={r.get('seconds')} "
                  f"{r.get('formula')}", flush=True)
    n_ex = sum(r["exact"] for r in recs)
    secs = sorted(r["seconds"] for r in recs)
    print(f"exact after snapping: {n_ex}/{len(recs)}; complete_: {sum(bool(r.get('complete')) for r in recs)}; "
          f"median {secs[len(secs) // 2]} s; max {secs[-1]} s")
    if args.out:
        from nnlab._io import write_json

        write_json(Path(args.out), {"command": "python bench/symbolic_trust.py " + " ".join(sys.argv[1:]), "runs": recs})


if __name__ == "__main__":
    main()
