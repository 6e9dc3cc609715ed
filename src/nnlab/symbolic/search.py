"""One candidate of the symbolic search: a KAN in one data space, taken through §6.3's steps.

A :class:`Candidate` fixes the space (raw or log inputs/target, see ``transforms``) and the KAN
shape. :func:`run_candidate` then: trains the KAN (step 1), lets near-constant edges drop out
(step 2), matches the remaining edges to library functions (step 3), refits all parameters
including the symbolic affine ones (step 4), composes the sympy formula in the original
variables (step 5), polishes its constants by least squares and snaps them (step 6).

The KAN is ``width = [n, *hidden, 1]`` in the candidate's space.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch

from .formula import formula
from .library import Library
from .matching import EdgeMatch, auto_symbolic
from .polish import evaluate, polish, relative_rmse
from .snap import snap
from .train import train_lbfgs
from .transforms import Transform

__all__ = ["Candidate", "CandidateResult", "run_candidate", "tidy", "make_kan", "complexity"]

_NUMERIC_ERRORS = (ValueError, ArithmeticError, RuntimeError, TypeError, LookupError, np.linalg.LinAlgError,
                   RecursionError)


@dataclass(frozen=True)
class Candidate:
    name: str
    log_x: bool = False
    log_y: bool = False
    hidden: tuple[int, ...] = ()
    seed: int = 0


@dataclass
class CandidateResult:
    candidate: Candidate
    expr: sympy.Expr | None = None
    val_error: float = float("inf")
    train_error: float = float("inf")
    complexity: int = 10 ** 9
    complete: bool = False
    seconds: float = 0.0
    model: Any = None
    transform: Transform | None = None
    matches: list[EdgeMatch] = field(default_factory=list)
    note: str = ""
    tree: dict[str, Any] | None = None  # the decomposition's decisions (candidate "decompose")

    def summary(self) -> dict[str, Any]:
        c = self.candidate
        extra = {} if self.tree is None else {"tree": self.tree}
        return {**extra, "candidate": c.name, "log_x": c.log_x, "log_y": c.log_y, "hidden": list(c.hidden),
                "seed": c.seed, "formula": None if self.expr is None else str(self.expr),
                "val_error": self.val_error, "train_error": self.train_error,
                "complexity": self.complexity if self.complete else None, "complete": self.complete,
                "seconds": round(self.seconds, 3), "note": self.note,
                "edges": [m.as_dict() for m in self.matches]}


def make_kan(width: list[int], grid: int, k: int, seed: int) -> Any:
    """A float64 ``nl.KAN(width, grid, k)`` built under ``torch.manual_seed(seed)``."""
    from nnlab.kan import KAN

    torch.manual_seed(seed)
    return KAN(width=list(width), grid=grid, k=k).double()


def complexity(expr: sympy.Expr) -> int:
    """Operation count of ``expr`` (``sympy.count_ops``) plus one per remaining float constant."""
    return int(sympy.count_ops(expr)) + len(expr.atoms(sympy.Float))


def merge_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Fold the numeric factors of every product (and terms of every sum) that involve a Float into
    one Float, e.g. ``1.1557·e·V/π → 1.0000·V``, so each free constant appears once."""
    if not isinstance(expr, sympy.Basic) or expr.is_Atom:
        return expr
    args = [merge_numbers(a) for a in expr.args]
    if isinstance(expr, (sympy.Mul, sympy.Add)):
        num = [a for a in args if a.is_number]
        if len(num) > 1 and any(a.atoms(sympy.Float) for a in num):
            rest = [a for a in args if not a.is_number]
            val = complex(expr.func(*num).evalf())
            if abs(val.imag) < 1e-300:
                return expr.func(sympy.Float(val.real), *rest)
    return expr.func(*args) if args != list(expr.args) else expr


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """Collapse what the composition leaves: logs of products, exp of sums, numeric sub-terms."""
    try:
        e = sympy.expand_log(expr, force=True)
        e = sympy.powsimp(sympy.expand_power_exp(e), force=True)
        e = sympy.expand_log(e, force=True)
    except _NUMERIC_ERRORS:
        e = expr
    # evaluate purely numeric sub-expressions that are not already simple numbers
    reps = {s: sympy.Float(complex(s.evalf()).real) for s in e.atoms(sympy.Function, sympy.Pow)
            if s.is_number and s.atoms(sympy.Float) and s.evalf().is_real}
    e = e.xreplace(reps) if reps else e
    return merge_numbers(e)


def _simplify(expr: sympy.Expr) -> sympy.Expr | None:
    """``sympy.simplify`` with floats merged (e.g. ``1.2·√3/π`` becomes one float); None if it fails."""
    try:
        return merge_numbers(sympy.simplify(expr))
    except _NUMERIC_ERRORS:
        return None


def run_candidate(cand: Candidate, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                  variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int, steps: int, lamb: float,
                  r2_threshold: float, snap_tol: float, deadline: float | None) -> CandidateResult:
    """Run §6.3 steps 1–6 for one candidate; numeric failures end the candidate, never the search."""
    t0 = time.monotonic()
    res = CandidateResult(cand)
    with warnings.catch_warnings():
        # hidden-layer inputs move during training; update_grid follows them, the warning is noise here
        warnings.simplefilter("ignore", UserWarning)
        _run(cand, res, Xtr, ytr, Xva, yva, variables, lib, grid=grid, k=k, steps=steps, lamb=lamb,
             r2_threshold=r2_threshold, snap_tol=snap_tol, deadline=deadline)
    res.seconds = time.monotonic() - t0
    if not math.isfinite(res.val_error):
        res.val_error = float("inf")
    return res


def _run(cand: Candidate, res: CandidateResult, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray,
         yva: np.ndarray, variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int, steps: int,
         lamb: float, r2_threshold: float, snap_tol: float, deadline: float | None) -> None:
    try:
        if cand.name == "composite":  # y = M1(x)·g(M2(x)): its own search (see composite.py)
            from .composite import run_composite

            run_composite(res, Xtr, ytr, Xva, yva, variables, lib, grid=grid, k=k, snap_tol=snap_tol,
                          deadline=deadline)
            return
        if cand.name == "decompose":  # split with a surrogate as oracle (see decompose.py)
            from .decompose import run_decompose

            run_decompose(res, Xtr, ytr, Xva, yva, variables, lib, snap_tol=snap_tol, deadline=deadline)
            return
        tr = Transform.fit(Xtr, ytr, cand.log_x, cand.log_y)
        res.transform = tr
        U = torch.from_numpy(tr.x(Xtr))
        T = torch.from_numpy(tr.y(ytr))[:, None]
        n = Xtr.shape[1]
        width = [n, *cand.hidden, 1]
        model = make_kan(width, grid, k, cand.seed)
        res.model = model
        deep = len(width) > 2
        train_lbfgs(model, U, T, steps=steps, lamb=lamb if deep else 0.0,
                    update_grid_every=max(steps // 4, 1) if deep else 0,
                    deadline=deadline)
        if hasattr(model, "update_grid") and not deep:
            with torch.no_grad():
                model.update_grid(U)
            train_lbfgs(model, U, T, steps=max(steps // 4, 2), deadline=deadline)
        res.matches = auto_symbolic(model, U, lib, r2_threshold=r2_threshold, zero_tol=1e-2 if deep else 1e-4)
        train_lbfgs(model, U, T, steps=max(steps // 2, 2), deadline=deadline)
        out = formula(model, tr.x_sympy(variables))
        expr = tr.y_sympy(out)
        res.complete = not expr.atoms(sympy.core.function.AppliedUndef)
        if not res.complete:
            res.expr = expr
            with torch.no_grad():
                pred_va = tr.y_inverse(model(torch.from_numpy(tr.x(Xva))).numpy()[:, 0])
                pred_tr = tr.y_inverse(model(U).numpy()[:, 0])
            res.val_error = relative_rmse(pred_va, yva)
            res.train_error = relative_rmse(pred_tr, ytr)
            res.note = "some edges kept their spline; formula incomplete"
            return
        big = sympy.count_ops(expr) > 400  # huge compositions: tidying and snapping would take minutes
        if not big:
            expr = tidy(expr)
        expr, err = polish(expr, variables, Xtr, ytr)
        tol = max(snap_tol, 0.01 * err)
        late = deadline is not None and time.monotonic() > deadline
        # snapping re-fits the formula once per constant tried: worth it when the structure looks right
        # (tiny error) or the formula is small, and never past the deadline
        if not big and not late and (err < 1e-6 or len(expr.atoms(sympy.Float)) <= 10):
            expr = tidy(snap(expr, Xtr, ytr, tol=tol, variables=variables).expr)
            if expr.atoms(sympy.Float):
                expr = snap(expr, Xtr, ytr, tol=tol, variables=variables).expr
            if expr.atoms(sympy.Float):
                expr, err = polish(expr, variables, Xtr, ytr)
            if sympy.count_ops(expr) <= 40:
                simple = _simplify(expr)
                if simple is not None and relative_rmse(evaluate(simple, variables, Xtr), ytr) <= err + tol:
                    expr = simple
                    if expr.atoms(sympy.Float):
                        expr = snap(expr, Xtr, ytr, tol=tol, variables=variables).expr
        res.expr = expr
        res.train_error = relative_rmse(evaluate(expr, variables, Xtr), ytr)
        res.val_error = relative_rmse(evaluate(expr, variables, Xva), yva)
        res.complexity = complexity(expr)
    except _NUMERIC_ERRORS as e:  # a failed candidate is reported, the search goes on
        res.note = f"failed: {type(e).__name__}: {e}"

