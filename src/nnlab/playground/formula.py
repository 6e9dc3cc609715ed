"""The page's "discover formula" button: the symbolic pipeline on a session's trained KAN.

Lecture §6.3, steps 3–6, on a copy of the session's model (the session keeps training
unchanged): ``nl.symbolic.auto_symbolic`` fixes each active edge to its best-matching
library function, a few full-batch epochs refit the affine parameters, ``nl.symbolic.formula``
composes the expression and ``nl.symbolic.snap`` rounds its constants where the data allow.
The result carries the formula as text, LaTeX and presentation MathML (the page is offline,
so the browser renders MathML natively), and its R² on the session's test points.
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


def discover(session: Any) -> dict:
    """Run steps 3–6 on a copy of ``session.trainer.model``; returns ``{"formula", "latex",
    "mathml", "r2", "variables"}``. Raises ``ValueError`` from the pipeline."""
    sym = _symbolic()
    if sym is None:
        raise RuntimeError(UNAVAILABLE)
    with session.lock:
        tr = session.trainer
        model = copy.deepcopy(tr.model)
        split = tr.split
    model.eval()
    X, y = split.X_train, split.y_train
    names = ["x", "y"][: X.shape[1]]
    sym.auto_symbolic(model, X)
    _refit(model, X, y)
    expr = sym.formula(model, names)
    if isinstance(expr, (list, tuple)):
        expr = expr[0]
    variables = [sympy.Symbol(n) for n in names]
    snapped = sym.snap(expr, X.numpy(), y.numpy().reshape(-1), variables=variables)
    expr = getattr(snapped, "expr", snapped)
    fn = sympy.lambdify(variables, expr, "numpy")
    Xt = split.X_test.numpy().astype(float)
    with np.errstate(all="ignore"):
        pred = np.broadcast_to(np.asarray(fn(*Xt.T), float), (Xt.shape[0],))
    return {"formula": str(expr), "latex": sympy.latex(expr),
            "mathml": sympy.mathml(expr, printer="presentation"),
            "r2": r2_score(pred, split.y_test.numpy()), "variables": names}
