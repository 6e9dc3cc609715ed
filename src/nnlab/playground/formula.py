"""The page's "discover formula" button: the symbolic pipeline on a session's trained KAN.

Lecture §6.3, steps 3–6, on a copy of the session's model (the session keeps training
unchanged): ``nl.symbolic.auto_symbolic`` fixes each active edge to its best-matching
library function, a few full-batch epochs refit the affine parameters, ``nl.symbolic.formula``
composes the expression and ``nl.symbolic.snap`` rounds its constants where the data allow.
The result carries the formula as text, LaTeX and presentation MathML (the page is offline,
so the browser renders MathML natively), and its R² on the session's test points.
Before matching, ``KAN.prune`` drops unimportant edges (step 2), after it ``nl.symbolic.polish``
refits the formula's constants by least squares.
"""
from __future__ import annotations

import copy
import importlib
from typing import Any

import numpy as np
import sympy
import torch

__all__ = ["available", "discover", "UNAVAILABLE", "r2_score"]

UNAVAILABLE = ("formula discovery needs the symbolic-regression pipeline (nnlab.symbolic with "
               "auto_symbolic, formula and snap), which this installation does not have yet")
REFIT_EPOCHS = 100
_NEEDED = ("auto_symbolic", "formula", "snap")


def _symbolic():
    try:
        mod = importlib.import_module("nnlab.symbolic")
    except ImportError:
        return None
    return mod if all(hasattr(mod, n) for n in _NEEDED) else None


def available() -> bool:
    """True when ``nnlab.symbolic`` offers ``auto_symbolic``, ``formula`` and ``snap``."""
    return _symbolic() is not None


def r2_score(pred: np.ndarray, y: np.ndarray) -> float:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (1 is a perfect fit)."""
    pred, y = np.asarray(pred, float).reshape(-1), np.asarray(y, float).reshape(-1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _refit(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> None:
    """Step 4: train the symbolic edges' affine parameters (and what is left) full-batch."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(REFIT_EPOCHS):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(X), y)
        if not torch.isfinite(loss):
            break
        loss.backward()
        opt.step()


def _predict(expr: sympy.Expr, variables: list[sympy.Symbol], X: np.ndarray) -> np.ndarray:
    fn = sympy.lambdify(variables, expr, "numpy")
    with np.errstate(all="ignore"):
        out = np.asarray(fn(*X.T))
    if np.iscomplexobj(out):
        out = np.where(np.abs(out.imag) < 1e-9, out.real, np.nan)
    return np.broadcast_to(out.astype(float), (X.shape[0],))


def discover(session: Any, prune_threshold: float = 1e-2, snap_tol: float = 1e-3) -> dict:
    """Run steps 2–6 on a copy of ``session.trainer.model`` (prune, match, refit, compose, snap).

    Returns ``{"formula", "latex", "mathml", "r2", "variables", "matched", "unmatched"}``
    (``formula`` at full precision, LaTeX and MathML with 4 significant digits): R² on
    the session's test points, of the formula when every edge became symbolic, else of the
    partly symbolic model (unmatched edges stay splines and appear as ``phi_l_o_i`` in the formula).
    """
    sym = _symbolic()
    if sym is None:
        raise RuntimeError(UNAVAILABLE)
    with session.lock:
        tr = session.trainer
        model = copy.deepcopy(tr.model)
        split = tr.split
    model.eval()
    X, y = split.X_train, split.y_train
    Xt, yt = split.X_test.numpy().astype(float), split.y_test.numpy().reshape(-1).astype(float)
    names = ["x", "y"][: X.shape[1]]
    variables = [sympy.Symbol(n) for n in names]
    if hasattr(model, "prune"):  # step 2: drop unimportant edges and nodes
        model = model.prune(X, threshold=prune_threshold)
    matches = sym.auto_symbolic(model, X)  # step 3
    _refit(model, X, y)  # step 4
    expr = sym.formula(model, names)  # step 5
    if isinstance(expr, (list, tuple)):
        expr = expr[0]
    unmatched = sum(1 for m in matches if not m.matched)
    if unmatched == 0:
        Xn, yn = X.numpy().astype(float), y.numpy().reshape(-1).astype(float)
        if hasattr(sym, "polish"):
            expr, _ = sym.polish(expr, variables, Xn, yn)
        snapped = sym.snap(expr, Xn, yn, tol=snap_tol, variables=variables)  # step 6
        expr = snapped.expr
        r2 = r2_score(_predict(expr, variables, Xt), yt)
    else:
        with torch.no_grad():
            r2 = r2_score(model(split.X_test).numpy(), yt)
    shown = expr.xreplace({f: sympy.Float(f, 4) for f in expr.atoms(sympy.Float)})
    return {"formula": str(expr), "latex": sympy.latex(shown),
            "mathml": '<math display="block">' + sympy.mathml(shown, printer="presentation")
                      + "</math>", "r2": r2, "variables": names,
            "matched": sum(1 for m in matches if m.matched), "unmatched": unmatched}
