"""The decomposition candidate alone on chosen Feynman equations, with its tree of decisions.

Same data as ``bench/feynman.py`` (500 rows, seed 0; the regressor's 375/125 split, seed 0), but
only ``nnlab.symbolic.decompose.run_decompose`` runs, with a generous deadline, so what it finds
does not depend on how loaded the machine is. Prints, per equation, the seconds, the held-out
relative error of the law (< 1e-6: exact), the law and the tree.

    python bench/feynman_decompose.py I.44.4 II.6.11 I.18.4
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sympy
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import load_equations, sample  # noqa: E402

from nnlab.symbolic import LIBRARY  # noqa: E402
from nnlab.symbolic.decompose_candidate import run_decompose  # noqa: E402
from nnlab.symbolic.search import Candidate, CandidateResult  # noqa: E402


def show(node: dict, depth: int = 0) -> None:
    keys = ("z", "modules", "dropped", "pair", "candidate", "error", "formula", "note")
    extra = {k: (round(node[k], 3) if isinstance(node[k], float) else node[k]) for k in keys if k in node}
    print("  " * depth + f"{node.get('split')} {node.get('test', '')} {node.get('variables')} {extra}")
    for child in node.get("children", []):
        show(child, depth + 1)


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    eqs = {e["id"]: e for e in load_equations(ROOT.parent.parent / "shared" / "feynman" / "public.csv"
                                              if len(sys.argv) < 2 or not sys.argv[1].endswith(".csv")
                                              else Path(sys.argv[1]))}
    for id_ in [a for a in sys.argv[1:] if not a.endswith(".csv")]:
        e = eqs[id_]
        X, y = sample(e, 500, 0)
        perm = np.random.default_rng(0).permutation(500)
        va, tr = perm[:125], perm[125:]
        syms = [sympy.Symbol(v) for v in e["variables"]]
        res = CandidateResult(Candidate("decompose"))
        t = time.perf_counter()
        run_decompose(res, X[tr], y[tr], X[va], y[va], syms, LIBRARY, snap_tol=1e-6,
                      deadline=time.monotonic() + 300)
        print(f"== {id_} truth {e['formula']} | {time.perf_counter() - t:.1f}s | held-out rel. error "
              f"{res.val_error:.1e} | {res.expr} | {res.note}", flush=True)
        if res.tree:
            show(res.tree)


if __name__ == "__main__":
    main()
