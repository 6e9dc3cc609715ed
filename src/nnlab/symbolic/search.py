"""One candidate of the symbolic search: a KAN in one data space, taken through §6.3's steps.

A :class:`Candidate` fixes the space (raw or log inputs/target, see ``transforms``) and the KAN
shape. :func:`run_candidate` then: trains the KAN (step 1), lets near-constant edges drop out
(step 2), matches the remaining edges to library functions (step 3), refits all parameters
including the symbolic affine ones (step 4), composes the sympy formula in the original
variables (step 5), polishes its constants by least squares and snaps them (step 6).

The KAN is ``width = [n, *hidden, 1]`` in the candidate's space.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch

from .finish import NUMERIC_ERRORS, complexity, fill_result, finish, merge_numbers, tidy
from .formula import formula
from .library import Library
from .matching import EdgeMatch, auto_symbolic, install_closest
from .polish import evaluate, relative_rmse
from .train import train_lbfgs
from .transforms import Transform, fixed_sign

__all__ = ["Candidate", "CandidateResult", "run_candidate", "merge_shards", "SHARDS", "HELPERS", "tidy",
           "merge_numbers", "make_kan", "complexity"]

# candidates whose work splits into independent shards (run as separate jobs, joined by merge_shards):
# the composite's library fits, one per (structure, inner function) unit, over up to 4 shards (no
# more than the workers that run at once: CandidateJob.shards); through an exchange its steps 1-2,
# the same for every shard, are made once and each shard claims the next free task of the units'
# fits (every K-th unit where nothing is shared); the decomposition's leaves,
# dealt to 2 shards (decompose_candidate.run_decompose(shard=...): each shard takes the same decisions;
# the surrogate and power-factor fits are shared through an exchange, see HELPERS).
SHARDS = {"composite": 4, "decompose": 2}
# candidates whose parallel jobs share values through an exchange (exchange.py): the decomposition's
# surrogate and power-factor fits, each made once by whichever job claims it first; a job waiting for
# a fit makes the next one the decision chain may ask for (the raw-input surrogate while the log-input
# one is made, ...): the second shard (or, for an unsharded candidate, a helper job handed out right
# after it)
HELPERS = {"decompose"}
# sharded candidates whose join splits its work between the shards (the decomposition's completion by
# exact rows: exact_parts.py): a shard that ends first waits a little for the others' shares and helps
JOINED_TOGETHER = {"decompose"}

_NUMERIC_ERRORS = NUMERIC_ERRORS


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
    model_error: float = float("inf")  # held-out error of the KAN with its spline edges (incomplete only)
    tree: dict[str, Any] | None = None  # the decomposition's decisions (candidate "decompose")
    partial: Any = None  # one shard's share of the work (see SHARDS), until merge_shards joins them
    joined: bool = False  # a shard's job that found every other shard done and joined them itself

    def summary(self) -> dict[str, Any]:
        c = self.candidate
        extra = {} if self.tree is None else {"tree": self.tree}
        return {**extra, "candidate": c.name, "log_x": c.log_x, "log_y": c.log_y, "hidden": list(c.hidden),
                "seed": c.seed, "formula": None if self.expr is None else str(self.expr),
                "val_error": self.val_error, "train_error": self.train_error,
                "complexity": self.complexity if self.expr is not None else None, "complete": self.complete,
                "seconds": round(self.seconds, 3), "note": self.note,
                "kan_val_error": self.model_error if math.isfinite(self.model_error) else None,
                "edges": [m.as_dict() for m in self.matches]}


def make_kan(width: list[int], grid: int, k: int, seed: int) -> Any:
    """A float64 ``nl.KAN(width, grid, k)`` built under ``torch.manual_seed(seed)``."""
    from nnlab.kan import KAN

    torch.manual_seed(seed)
    return KAN(width=list(width), grid=grid, k=k).double()


def run_candidate(cand: Candidate, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                  variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int, steps: int, lamb: float,
                  r2_threshold: float, snap_tol: float, deadline: float | None,
                  shard: tuple[int, int] | None = None, exchange: Any = None,
                  helper: bool = False) -> CandidateResult:
    """Run §6.3 steps 1–6 for one candidate; numeric failures end the candidate, never the search.

    ``shard=(j, K)`` (candidates in :data:`SHARDS`): only the j-th of K shares of the work, left in
    ``partial``; :func:`merge_shards` joins the K results into the unsharded one.
    ``exchange`` (shards, and candidates in :data:`HELPERS`: an :class:`~nnlab.symbolic.exchange.Exchange`):
    where the jobs of one candidate share the values they all need; ``helper=True`` runs a helper job
    (no formula)."""
    t0 = time.monotonic()
    res = CandidateResult(cand)
    with warnings.catch_warnings():
        # hidden-layer inputs move during training; update_grid follows them, the warning is noise here
        warnings.simplefilter("ignore", UserWarning)
        _run(cand, res, Xtr, ytr, Xva, yva, variables, lib, grid=grid, k=k, steps=steps, lamb=lamb,
             r2_threshold=r2_threshold, snap_tol=snap_tol, deadline=deadline, shard=shard, exchange=exchange,
             helper=helper)
    res.seconds = time.monotonic() - t0
    if not math.isfinite(res.val_error):
        res.val_error = float("inf")
    return res


def _run(cand: Candidate, res: CandidateResult, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray,
         yva: np.ndarray, variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int, steps: int,
         lamb: float, r2_threshold: float, snap_tol: float, deadline: float | None,
         shard: tuple[int, int] | None = None, exchange: Any = None, helper: bool = False) -> None:
    if helper and cand.name not in HELPERS:
        raise ValueError(f"candidate {cand.name!r} has no helper job (HELPERS: {sorted(HELPERS)})")
    try:
        if cand.name == "monomial":
            _run_monomial(res, Xtr, ytr, Xva, yva, variables, snap_tol=snap_tol, deadline=deadline)
            return
        if cand.name == "composite":  # y = M1(x)·g(M2(x)): its own search (see composite.py)
            from .composite import run_composite

            run_composite(res, Xtr, ytr, Xva, yva, variables, lib, grid=grid, k=k, snap_tol=snap_tol,
                          deadline=deadline, shard=shard, exchange=exchange)
            return
        if cand.name == "rational":  # y = P(x)/Q(x) by linear algebra (see rational.py)
            from .rational import run_rational

            run_rational(res, Xtr, ytr, Xva, yva, variables, snap_tol=snap_tol, deadline=deadline)
            return
        if cand.name == "dictionary":  # y = Σ c·Π atoms(x) by sparse least squares (see dictionary.py)
            from .dictionary import run_dictionary

            run_dictionary(res, Xtr, ytr, Xva, yva, variables, snap_tol=snap_tol, deadline=deadline)
            return
        if cand.name == "decompose":  # split with a surrogate as oracle (see decompose.py)
            from .decompose_candidate import run_decompose

            run_decompose(res, Xtr, ytr, Xva, yva, variables, lib, snap_tol=snap_tol, deadline=deadline,
                          shard=shard, exchange=exchange, helper=helper)
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
        res.complete = not any(not m.matched for m in res.matches)
        if not res.complete:
            # the KAN keeps its spline edges (it predicts); the formula is the closest closed form:
            # a copy whose unmatched edges take their best library function whatever its r²
            with torch.no_grad():
                pred_va = tr.y_inverse(model(torch.from_numpy(tr.x(Xva))).numpy()[:, 0])
            res.model_error = relative_rmse(pred_va, yva)
            res.note = "some edges kept their spline; the formula is the closest closed form"
            model = copy.deepcopy(model)
            if install_closest(model, res.matches):
                train_lbfgs(model, U, T, steps=max(steps // 4, 2), deadline=deadline)
        expr = tr.y_sympy(formula(model, tr.x_sympy(variables)))
        if expr.atoms(sympy.core.function.AppliedUndef):  # no library function fits at all
            res.note = "an edge has no closed form in the library"
            return
        expr, _ = finish(expr, variables, Xtr, ytr, snap_tol=snap_tol, deadline=deadline, snap_constants=res.complete)
        res.expr = expr
        res.train_error = relative_rmse(evaluate(expr, variables, Xtr), ytr)
        res.val_error = relative_rmse(evaluate(expr, variables, Xva), yva)
        res.complexity = complexity(expr)
    except _NUMERIC_ERRORS as e:  # a failed candidate is reported, the search goes on
        res.note = f"failed: {type(e).__name__}: {e}"



def merge_shards(parts: list[CandidateResult], Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray,
                 yva: np.ndarray, variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int,
                 snap_tol: float, deadline: float | None, exchange: Any = None, helping: bool = False,
                 **_: Any) -> CandidateResult:
    """Join the K shards of one candidate (``parts[j]`` ran with ``shard=(j, K)``) into the result the
    unsharded :func:`run_candidate` gives. A shard that failed, was skipped or cancelled is the result.
    ``exchange`` / ``helping`` (:data:`JOINED_TOGETHER`): shards that join at once split the join's work;
    a helping one stops at the end of its share (its result is not used)."""
    cand = parts[0].candidate
    for p in parts:
        if p.partial is None:
            return p
    from .composite import check_shards, merge_composite
    from .decompose_candidate import ShardsDisagree, run_decompose, merge_shards as merge_decompose

    if helping and cand.name not in JOINED_TOGETHER:
        return CandidateResult(cand, note="helper: no shared work in this join")
    if cand.name == "composite":
        check_shards([p.partial for p in parts])
    t0 = time.monotonic()
    res = CandidateResult(cand)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            if cand.name == "composite":
                merge_composite(res, [p.partial for p in parts], Xtr, ytr, Xva, yva, variables, lib, grid=grid,
                                k=k, snap_tol=snap_tol, deadline=deadline)
            else:
                try:
                    merge_decompose(res, [p.partial for p in parts], Xtr, ytr, Xva, yva, variables, snap_tol,
                                    exchange, helping)
                except ShardsDisagree:  # a clock made the shards decide apart (a binding time limit): redo it whole
                    if helping:
                        return res
                    res = CandidateResult(cand)
                    run_decompose(res, Xtr, ytr, Xva, yva, variables, lib, snap_tol=snap_tol, deadline=deadline)
        except _NUMERIC_ERRORS as e:
            res.note = f"failed: {type(e).__name__}: {e}"
    res.seconds = sum(p.seconds for p in parts) + time.monotonic() - t0
    if not math.isfinite(res.val_error):
        res.val_error = float("inf")
    return res


def _run_monomial(res: CandidateResult, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                  variables: list[sympy.Symbol], *, snap_tol: float, deadline: float | None) -> None:
    """``y = C·Π x_j^{p_j}`` by ordinary least squares in log space (what a KAN ``[n, 1]`` with linear
    edges computes in log-log space, without the spline's wiggles: robust to noise), then the
    common tail: polish on the raw data, snap (exponents to rationals), re-snap the coefficient."""
    xs = [fixed_sign(Xtr[:, j]) for j in range(Xtr.shape[1])]
    ys = fixed_sign(ytr)
    if ys == 0 or 0 in xs:
        raise ValueError("the monomial candidate needs every feature and the target of fixed sign")
    U = np.log(Xtr * np.array(xs))
    A = np.hstack([U, np.ones((len(U), 1))])
    coef, *_ = np.linalg.lstsq(A, np.log(ytr * ys), rcond=None)
    expr = ys * sympy.Float(float(np.exp(coef[-1])))
    for p, v, s in zip(coef[:-1], variables, xs):
        expr = expr * (s * v) ** sympy.Float(float(p))
    expr, _ = finish(expr, variables, Xtr, ytr, snap_tol=snap_tol, deadline=deadline)
    fill_result(res, expr, variables, Xtr, ytr, Xva, yva, "y = C·Π x^p by least squares in log space")
