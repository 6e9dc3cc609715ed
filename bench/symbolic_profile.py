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
  first exact one are cancelled when it ends, and cost what ran of them until then).

    python bench/symbolic_profile.py --ids all --out /tmp/profile.json   # every public equation
    python bench/symbolic_profile.py --from /tmp/profile.json            # only the table again
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


def profile(eq: dict) -> dict:
    """Fit one equation at ``n_jobs=1``; the per-candidate costs and the chosen formula."""
    import nnlab.symbolic.decompose as decompose
    import nnlab.symbolic.parallel as parallel
    from nnlab.symbolic import SymbolicRegressor

    rows: list[dict] = []
    sur: list[float] = []
    run0, sur0 = parallel.run_candidate, decompose.fit_surrogate

    def run(cand, *a, **k):
        c, w = time.process_time(), time.perf_counter()
        n_sur = len(sur)
        r = run0(cand, *a, **k)
        rows.append({"candidate": cand.name, "seed": cand.seed, "hidden": list(cand.hidden),
                     "cpu": time.process_time() - c, "wall": time.perf_counter() - w,
                     "surrogate_cpu": sum(sur[n_sur:]), "surrogate_fits": len(sur) - n_sur,
                     "exact": r.complete and r.val_error < 1e-10, "val_error": r.val_error})
        return r

    def fit_sur(*a, **k):
        c = time.process_time()
        try:
            return sur0(*a, **k)
        finally:
            sur.append(time.process_time() - c)

    parallel.run_candidate, decompose.fit_surrogate = run, fit_sur
    try:
        X, y = sample(eq, 500, 0)
        est = SymbolicRegressor(time_limit=3600, variables=eq["variables"], n_jobs=1)
        c0, w0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        fit_cpu, fit_wall = time.process_time() - c0, time.perf_counter() - w0
    finally:
        parallel.run_candidate, decompose.fit_surrogate = run0, sur0
    return {"id": eq["id"], "n_vars": eq["n_vars"], "fit_cpu": fit_cpu, "fit_wall": fit_wall,
            "formula": str(est.formula_), "candidates": rows}


def simulate(costs: list[float], order: list[int], stop_at: int | None, workers: int = 2) -> float:
    """Makespan of list scheduling ``costs`` in ``order`` on ``workers``; jobs past ``stop_at`` (the
    first exact job's position) are cut off when the kept prefix is known."""
    free = [0.0] * workers
    end: dict[int, float] = {}
    start: dict[int, float] = {}
    for i in order:
        w = min(range(workers), key=lambda k: (free[k], k))
        start[i] = free[w]
        free[w] += costs[i]
        end[i] = free[w]
    last = stop_at if stop_at is not None else len(costs) - 1
    known = max(end[i] for i in range(last + 1))
    # jobs that started before the prefix was known and run past it are cancelled at `known`
    return max([known] + [min(end[i], known) for i in order if start[i] < known])


def summarise(recs: list[dict]) -> list[str]:
    from nnlab.symbolic.parallel import dispatch_order, job_costs

    lines = ["| equation | vars | candidates run | total CPU s | longest (CPU s) | surrogate share of it | "
             "bound 2 workers | sim. current order |", "|---|---|---|---|---|---|---|---|"]
    T = C = S = 0.0
    for r in recs:
        rows = r["candidates"]
        costs = [c["cpu"] for c in rows]
        total = sum(costs)
        k = max(range(len(costs)), key=costs.__getitem__)
        bound = total / max(costs[k], total / 2)
        stop = next((i for i, c in enumerate(rows) if c["exact"]), None)
        order = dispatch_order(job_costs([c["candidate"] for c in rows], [c["hidden"] for c in rows], r["n_vars"]))
        sim = simulate(costs, order, stop)
        T, C, S = T + total, C + max(costs[k], total / 2), S + sim
        share = rows[k]["surrogate_cpu"] / costs[k] if costs[k] else 0.0
        lines.append(f"| {r['id']} | {r['n_vars']} | {len(rows)} | {total:.2f} | {rows[k]['candidate']} "
                     f"({costs[k]:.2f}) | {100 * share:.0f} % | {bound:.2f}× | {total / sim:.2f}× |")
    lines.append(f"| **all** | | | **{T:.1f}** | | | **{T / C:.2f}×** | **{T / S:.2f}×** |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", default=str(PUBLIC))
    ap.add_argument("--ids", default="all")
    ap.add_argument("--out", default=None, help="write the raw records (JSON) here")
    ap.add_argument("--from", dest="src", default=None, help="summarise records written before")
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
            recs.append(profile(eq))
            r = recs[-1]
            print(f"{r['id']:10s} {r['fit_cpu']:7.2f}s CPU  " + " ".join(
                f"{c['candidate']}:{c['cpu']:.2f}" for c in r["candidates"]), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(recs, indent=1))
    print("\n".join(summarise(recs)))


if __name__ == "__main__":
    main()
