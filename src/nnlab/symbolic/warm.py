"""Warm start of a symbolic search: continue from the candidates a previous ``fit`` found.

With ``SymbolicRegressor(warm_start=True)`` a second ``fit`` (on more data, or after
``set_params(time_limit=...)``) does not retrain the candidates it already ran. Each earlier
formula is re-polished (least squares on its float constants, :func:`polish.polish`) on the new
training rows and scored again on the new held-out rows; an earlier formula with spline edges is
scored by its KAN. Only candidates not run yet (skipped by the time limit, not reached because
an exact formula was found, or new restarts) are run.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Sequence

import numpy as np
import sympy
import torch

from .polish import evaluate, polish, relative_rmse
from .search import Candidate, CandidateResult, complexity

__all__ = ["rescore", "key"]


def key(c: Candidate) -> tuple:
    """Identity of a candidate across fits (its space, shape and seed)."""
    return (c.name, c.log_x, c.log_y, tuple(c.hidden), c.seed)


def rescore(r: CandidateResult, variables: Sequence[sympy.Symbol], Xtr: np.ndarray, ytr: np.ndarray,
            Xva: np.ndarray, yva: np.ndarray) -> CandidateResult:
    """``r`` with its constants re-fitted to (Xtr, ytr) and its errors measured on the new rows."""
    t0 = time.monotonic()
    if r.expr is None:
        return r
    if r.complete:
        expr, _ = polish(r.expr, variables, Xtr, ytr)
        out = replace(r, expr=expr, train_error=relative_rmse(evaluate(expr, variables, Xtr), ytr),
                      val_error=relative_rmse(evaluate(expr, variables, Xva), yva), complexity=complexity(expr))
    elif r.model is not None and r.transform is not None:
        tr = r.transform
        with torch.no_grad():
            p_tr = tr.y_inverse(r.model(torch.from_numpy(tr.x(Xtr))).numpy()[:, 0])
            p_va = tr.y_inverse(r.model(torch.from_numpy(tr.x(Xva))).numpy()[:, 0])
        out = replace(r, train_error=relative_rmse(p_tr, ytr), val_error=relative_rmse(p_va, yva))
    else:
        return r
    out.seconds = r.seconds + (time.monotonic() - t0)
    return out
