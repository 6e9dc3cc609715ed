"""The decomposition's critical path under ``n_jobs`` (issue 12), in CPU seconds, for equations of
the Feynman set: per equation, the decomposition job run whole; its unsharded form with the helper
job (helper first, then the owner, which takes the helper's fit); and its two shards (shard 1
first, then shard 0, which takes every surrogate fit from shard 1), then their merge. The exchange
is the real one (files in a temporary folder), the jobs run one after the other in this process,
each timed with ``time.process_time`` (fair on a shared machine). Checks that the merged law is
the whole job's.

On two workers the shards run at once: shard 0 makes the first surrogate fit while shard 1 makes
the raw-input one, so the chain is about ``max(shard 0 + first fit, shard 1 - first fit) + merge``.
Since the shards share the leaves by who reaches them first (an exclusive claim in the exchange)
and the last shard to end joins the shards itself, shard 1, run first here, fits every leaf, and
shard 0's figure includes the join (the "merge" column is then the search's own, next to nothing).

    python bench/symbolic_chain.py --ids I.13.4,I.15.3t,III.10.19,I.6.2b,I.26.2,I.50.26,I.29.16
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import PUBLIC, load_equations, sample  # noqa: E402


def cpu(f):
    c = time.process_time()
    r = f()
    return r, time.process_time() - c


def main() -> None:
    import numpy as np
    import sympy

    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import SHARDS, Candidate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=str(PUBLIC))
    ap.add_argument("--ids", default="I.13.4,I.15.3t,III.10.19,I.6.2b,I.26.2,I.50.26,I.29.16")
    args = ap.parse_args()
    eqs = {e["id"]: e for e in load_equations(Path(args.csv))}
    opts = tuple(dict(grid=5, k=3, steps=100, lamb=1e-3, r2_threshold=0.99, snap_tol=1e-6).items())
    print("| equation | whole job | helper: owner / helper | shards: 1 / 0 / merge | formula identical |")
    print("|---|---|---|---|---|")
    for i in args.ids.split(","):
        eq = eqs[i]
        X, y = sample(eq, 500, 0)
        perm = np.random.default_rng(0).permutation(500)
        va, tr = perm[:125], perm[125:]
        job = CandidateJob(7, Candidate("decompose"), (X[tr], y[tr], X[va], y[va]),
                           tuple(sympy.Symbol(v) for v in eq["variables"]), LIBRARY, opts, time.time() + 3600)
        whole, c_whole = cpu(job)
        K = SHARDS.pop("decompose", None)
        try:
            j = dataclasses.replace(job, cancel=os.path.join(tempfile.mkdtemp(), "enough"))
            owner, helper = j.shards()
            _, c_h = cpu(helper)
            r_o, c_o = cpu(owner)
        finally:
            if K is not None:
                SHARDS["decompose"] = K
        j = dataclasses.replace(job, cancel=os.path.join(tempfile.mkdtemp(), "enough"))
        s0, s1 = j.shards()
        p1, c_1 = cpu(s1)
        p0, c_0 = cpu(s0)
        m, c_m = cpu(lambda: j.merge([p0, p1]))
        same = sympy.srepr(m.expr) == sympy.srepr(whole.expr) == sympy.srepr(r_o.expr)
        print(f"| {i} | {c_whole:.2f} | {c_o:.2f} / {c_h:.2f} | {c_1:.2f} / {c_0:.2f} / {c_m:.2f} | "
              f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
