"""Where the time of a symbolic search goes, candidate by candidate (issue 12's speed goal).

Fits every equation with ``n_jobs=1`` (500 rows, seed 0, 1 torch thread, the time limit never
binds) and records, for each candidate that ran, its CPU seconds (``time.process_time``: a fair
figure on a shared machine) and wall seconds; inside the decomposition also the CPU seconds of its
surrogate fits. From those costs, per equation:

- ``total``: CPU of every candidate the sequential search ran (it stops at the first exact one);
- ``critical``: the longest single candidate (a job no pool can split);
- ``bound``: the best 2-worker speed-up any order can give, ``total / max(critical, total / 2)``;
- ``sim``: the 2-worker speed-up of the dispatch order ``parallel.dispatch_order`` hands out, by
  list scheduling of the measured costs (next job to the first free worker; the jobs after the
  first exact one are cancelled when it ends, and cost what ran of them until then). A candidate of
  ``search.HELPERS`` (the decomposition) has its helper job right after it: when the helper starts
  before the decomposition's first surrogate fit ends, the second fit (if needed) runs there.

    python bench/symbolic_profile.py --ids all --out /tmp/profile.json   # every public equation
    python bench/symbolic_profile.py --ids all --no-shards --out /tmp/whole.json  # candidates unsplit
    python bench/symbolic_profile.py --from /tmp/profile.json --serial-from /tmp/whole.json  # the table again
    python bench/symbolic_profile.py --from /tmp/profile.json --no-helpers  # as if without helper jobs
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import PUBLIC, load_equations, sample  # noqa: E402


def profile(eq: dict, shards: bool) -> dict:
    """Fit one equation at ``n_jobs=1``; the per-candidate costs and the chosen formula. With
    ``shards``, a candidate of ``search.SHARDS`` runs as its shards one after the other, then their
    merge (the same result), and each shard's and the merge's CPU seconds are kept."""
    import nnlab.symbolic.decompose as decompose
    import nnlab.symbolic.parallel as parallel
    import nnlab.symbolic.surrogate as surrogate
    import nnlab.symbolic.regressor as regressor
    from nnlab.symbolic import SymbolicRegressor
    from nnlab.symbolic.search import SHARDS, merge_shards

    rows: list[dict] = []
    sur: list[tuple[float, bool]] = []  # (CPU s, log inputs) of each surrogate fit
    planned: list = []
    run0, sur0, jobs0 = parallel.run_candidate, surrogate.fit_surrogate, regressor.run_jobs

    def run(cand, *a, **k):
        c, w = time.process_time(), time.perf_counter()
        n_sur = len(sur)
        k.pop("shard", None)
        K = SHARDS.get(cand.name, 1) if shards else 1
        split: dict = {}
        if K == 1:
            r = run0(cand, *a, **k)
        else:
            parts, split["shards"] = [], []
            for j in range(K):
                c1 = time.process_time()
                parts.append(run0(cand, *a, **k, shard=(j, K)))
                split["shards"].append(time.process_time() - c1)
            c1 = time.process_time()
            r = merge_shards(parts, *a, **k)
            split["merge"] = time.process_time() - c1
        rows.append({"candidate": cand.name, "seed": cand.seed, "hidden": list(cand.hidden),
                     "cpu": time.process_time() - c, "wall": time.perf_counter() - w,
                     "surrogate_cpu": sum(c for c, _ in sur[n_sur:]), "surrogate_fits": len(sur) - n_sur,
                     "surrogate_fit_cpu": [c for c, _ in sur[n_sur:]], "surrogate_fit_log": [g for _, g in sur[n_sur:]],
                     "exact": r.complete and r.val_error < 1e-10, "val_error": r.val_error, **split})
        return r

    def jobs(js, *a, **k):
        planned.extend([j.candidate.name, list(j.candidate.hidden), int(j.data[0].shape[1])] for j in js)
        return jobs0(js, *a, **k)

    def fit_sur(*a, **k):
        c = time.process_time()
        try:
            return sur0(*a, **k)
        finally:
            sur.append((time.process_time() - c, k.get("log_inputs", True)))

    parallel.run_candidate, surrogate.fit_surrogate, regressor.run_jobs = run, fit_sur, jobs
    decompose.fit_surrogate = fit_sur  # (decompose.py holds its own reference)
    try:
        X, y = sample(eq, 500, 0)
        est = SymbolicRegressor(time_limit=3600, variables=eq["variables"], n_jobs=1)
        c0, w0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        fit_cpu, fit_wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        parallel.run_candidate, surrogate.fit_surrogate, regressor.run_jobs = run0, sur0, jobs0
        decompose.fit_surrogate = sur0
    return {"id": eq["id"], "n_vars": eq["n_vars"], "fit_cpu": fit_cpu, "fit_wall": fit_wall,
            "formula": str(est.formula_), "candidates": rows, "planned": planned}


def simulate(units: list[list[float]], merges: list[float], order: list[int], stop_at: int | None,
             workers: int = 2, helpers: list | None = None) -> float:
    """When the kept prefix is known, by list scheduling: job ``i`` is ``units[i]`` (its shards, one
    after the other in ``order``; each to the first free worker), done ``merges[i]`` after its last
    shard (the merge runs in the parent; counted as taking the next free worker's core, as on a
    machine with as many cores as workers); the prefix ends at ``stop_at``.

    ``helpers[i] = (f1, f2)``: job ``i`` (one unit) has a helper job handed out right after it; ``f1``
    is the CPU of its first surrogate fit, ``f2`` of the second (None when it is not needed: the
    job declines it after ``f1``, which stops a helper that started). A helper that starts (on the
    next free worker) before ``f1`` ends fits the second surrogate there; else the job fits it."""
    free = [0.0] * workers
    end: dict[int, float] = {}
    for i in order:
        if helpers is not None and helpers[i] is not None and len(units[i]) == 1:
            cpu, (f1, f2) = units[i][0], helpers[i]
            wm = min(range(workers), key=lambda k: (free[k], k))
            sm = free[wm]
            rest = [k for k in range(workers) if k != wm]
            wh = min(rest, key=lambda k: (free[k], k)) if rest else None
            sh = free[wh] if wh is not None else float("inf")
            if f2 is None:
                free[wm] = sm + cpu
                if sh < sm + f1:  # the helper ran until the job declined its fit
                    free[wh] = sm + f1
            elif sh <= sm + f1:  # the helper claimed the second fit: the job waits for it if need be
                free[wm] = max(sm + f1, sh + f2) + (cpu - f1 - f2)
                free[wh] = sh + f2
            else:
                free[wm] = sm + cpu
            end[i] = free[wm]
            continue
        last = 0.0
        for c in units[i]:
            w = min(range(workers), key=lambda k: (free[k], k))
            free[w] += c
            last = max(last, free[w])
        if merges[i]:
            w = min(range(workers), key=lambda k: (free[k], k))
            free[w] = max(free[w], last) + merges[i]
            last = free[w]
        end[i] = last
    stop = stop_at if stop_at is not None else len(units) - 1
    return max(end[i] for i in range(stop + 1))


def _helper_costs(c: dict) -> tuple[float, float | None] | None:
    """``(f1, f2)`` of a decomposition's record for :func:`simulate` (older records: the fits' mean)."""
    fits = c.get("surrogate_fit_cpu") or [c["surrogate_cpu"] / c["surrogate_fits"]] * c["surrogate_fits"]
    if not fits:
        return None
    return fits[0], (fits[1] if len(fits) > 1 else None)


def summarise(recs: list[dict], base: dict[str, float] | None = None, helpers: bool = True) -> list[str]:
    """Per equation: the serial CPU, the longest job (a shard where the candidate is split), the bound
    ``total / max(longest, total / 2)`` and the simulated 2-worker speed-up of ``dispatch_order``.
    The serial time is what ``n_jobs=1`` spends (it runs split candidates whole): the CPU less the
    surrogate fits that the extra shards of a decomposition repeat, or ``base`` (per equation, from a
    ``--no-shards`` run)."""
    from types import SimpleNamespace

    import numpy as np

    from nnlab.symbolic.parallel import dispatch_order
    from nnlab.symbolic.search import HELPERS, Candidate

    typical: dict[str, list[float]] = {}  # a candidate the sequential search never ran costs the median
    for r in recs:
        for c in r["candidates"]:
            typical.setdefault(c["candidate"], []).append(c["cpu"])
    lines = ["| equation | vars | candidates run | serial CPU s | longest job (CPU s) | bound 2 workers | "
             "simulated 2 workers |", "|---|---|---|---|---|---|---|"]
    T = C = S = 0.0
    for r in recs:
        rows = r["candidates"]
        # what n_jobs=1 spends: a split candidate's CPU less the surrogate fits its extra shards repeat
        whole = [c["cpu"] - c["surrogate_cpu"] * (1 - 1 / len(c["shards"])) if "shards" in c else c["cpu"]
                 for c in rows]
        serial = base[r["id"]] if base else sum(whole)
        units, merges, names, helps = [], [], [], []
        for i, (name, hidden, n) in enumerate(r["planned"]):
            c = rows[i] if i < len(rows) else {"cpu": float(np.median(typical.get(name, [1.0])))}
            units.append(c.get("shards", [c["cpu"]]))
            merges.append(c.get("merge", 0.0))
            names.append((name, hidden, n))
            helps.append(_helper_costs(c) if helpers and name in HELPERS and "surrogate_fits" in c else None)
        work = sum(sum(u) + m for u, m in zip(units[:len(rows)], merges))
        jobs = [SimpleNamespace(candidate=Candidate(nm, hidden=tuple(h)), data=(np.zeros((1, n)),))
                for nm, h, n in names]
        longest = max(max(u) + m - (h[1] or 0.0 if h else 0.0) for u, m, h in zip(units[:len(rows)], merges, helps))
        stop = next((i for i, c in enumerate(rows) if c["exact"]), None)
        sim = simulate(units, merges, dispatch_order(jobs), stop, helpers=helps)
        T, C, S = T + serial, C + max(longest, work / 2), S + sim
        lines.append(f"| {r['id']} | {r['n_vars']} | {len(rows)} | {serial:.2f} | {longest:.2f} | "
                     f"{serial / max(longest, work / 2):.2f}× | {serial / sim:.2f}× |")
    lines.append(f"| **all** | | | **{T:.1f}** | | **{T / C:.2f}×** | **{T / S:.2f}×** |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=str(PUBLIC))
    ap.add_argument("--ids", default="all")
    ap.add_argument("--out", default=None, help="write the raw records (JSON) here")
    ap.add_argument("--from", dest="src", default=None, help="summarise records written before")
    ap.add_argument("--serial-from", default=None, help="records of a --no-shards run: its CPU is the serial time")
    ap.add_argument("--no-shards", action="store_true", help="run split candidates whole (the cost before sharding)")
    ap.add_argument("--no-helpers", action="store_true", help="simulate without helper jobs (search.HELPERS)")
    args = ap.parse_args()
    if args.src:
        recs = json.loads(Path(args.src).read_text())
    else:
        import warnings

        import torch

        warnings.simplefilter("ignore")
        torch.set_num_threads(1)
        eqs = load_equations(Path(args.csv))
        if args.ids != "all":
            want = set(args.ids.split(","))
            eqs = [e for e in eqs if e["id"] in want]
        recs = []
        for eq in eqs:
            recs.append(profile(eq, shards=not args.no_shards))
            r = recs[-1]
            print(f"{r['id']:10s} {r['fit_cpu']:7.2f}s CPU  " + " ".join(
                f"{c['candidate']}:{c['cpu']:.2f}" for c in r["candidates"]), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(recs, indent=1))
    base = None
    if args.serial_from:
        base = {r["id"]: sum(c["cpu"] for c in r["candidates"])
                for f in args.serial_from.split(",") for r in json.loads(Path(f).read_text())}
    print("\n".join(summarise(recs, base, helpers=not args.no_helpers)))


if __name__ == "__main__":
    main()
