"""The verdict on a search: an exact law, a law exact within the noise, an approximation, or none.

Issue 11, item 6 (honest output). The chosen candidate's closed form is refit on every row and
then judged on the held-out rows:

* **exact**: relative RMSE below ``EXACT`` (10⁻⁶);
* **exact within noise**: the formula explains the data (held-out ``R² ≥ 0.5``) and what it
  leaves is noise: a k-NN regression of the residual on the inputs explains less than 10% of it
  (:func:`~nnlab.symbolic.dependence.residual_structure`);
* **approximate**: otherwise; the formula is still the best closed form, with its error, the
  reason is said in one line (e.g. "target changes sign; log-space candidates skipped"), and the
  most accurate KAN (spline edges kept) serves ``predict`` when it beats the formula;
* **no law found**: no input carries information about y, or the best formula predicts the
  held-out rows no better than their mean (``R² < 0.05``); the formula is then the mean of y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import sympy

from .dependence import NOISE_STRUCTURE, residual_structure
from .polish import evaluate, polish, relative_rmse

__all__ = ["EXACT", "Verdict", "judge"]

EXACT = 1e-6
_LAW_R2 = 0.05


@dataclass
class Verdict:
    formula: sympy.Expr
    exact: bool
    status: str
    reason: str
    error: float
    kan: Any = None  # the CandidateResult whose KAN predicts (approximate laws only)


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    if not np.all(np.isfinite(pred)):
        return -math.inf
    tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((pred - y) ** 2)) / tot if tot > 0 else -math.inf


def _sign_notes(x_signs: Sequence[int], y_sign: int, variables: Sequence[sympy.Symbol]) -> list[str]:
    notes = []
    if y_sign == 0:
        notes.append("target changes sign; log-space candidates skipped")
    mixed = [str(v) for v, s in zip(variables, x_signs) if s == 0]
    if mixed and y_sign != 0:
        notes.append(f"{', '.join(mixed)} change{'s' if len(mixed) == 1 else ''} sign; log-x candidates skipped")
    return notes


def judge(best: Any, results: list[Any], X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol],
          val: np.ndarray, *, X_all: np.ndarray, dropped: Sequence[str], x_signs: Sequence[int],
          y_sign: int) -> Verdict:
    """Verdict on the chosen candidate ``best`` (a ``CandidateResult`` or None) over (X, y) (rescaled,
    relevant columns only); ``val``: indices of the held-out rows; ``X_all``: every column (the
    residual test also looks at the dropped ones, so a wrongly dropped input shows)."""
    mean = sympy.Float(float(np.mean(y)))
    if not variables:
        return Verdict(mean, False, "no law found",
                       f"no input carries information about y ({', '.join(dropped)} dropped as noise)", 1.0)
    if best is None:
        return Verdict(mean, False, "no law found", "every candidate failed numerically", 1.0)
    expr = best.expr
    if expr.atoms(sympy.Float) and len(expr.atoms(sympy.Float)) <= 40:  # refit the closed form on every row
        expr, _ = polish(expr, variables, X, y, max_nfev=50)
    err = relative_rmse(evaluate(expr, variables, X[val]), y[val])
    if not math.isfinite(err):
        expr, err = best.expr, best.val_error
    pred = evaluate(expr, variables, X)
    r2 = _r2(pred[val], y[val])
    if r2 < _LAW_R2 or expr.is_number:
        return Verdict(mean, False, "no law found",
                       f"the best formula ({expr}) predicts held-out rows no better than the mean of y "
                       f"(R² = {r2:.3g})", 1.0)
    if err < EXACT:
        return Verdict(expr, True, "exact", "", err)
    structure = residual_structure(X_all, y - pred)
    if r2 >= 0.5 and structure < NOISE_STRUCTURE:
        return Verdict(expr, True, "exact within noise",
                       f"held-out error {err:.2g} of RMS(y) and the residual has no structure left "
                       f"(k-NN explains {max(structure, 0):.0%} of it)", err)
    notes = _sign_notes(x_signs, y_sign, variables)
    notes.append(f"best closed form has held-out error {err:.2g} of RMS(y) and its residual still "
                 f"depends on the inputs (k-NN explains {structure:.0%} of it)")
    kans = [r for r in results if r.model is not None and r.transform is not None and math.isfinite(r.model_error)]
    kan = min(kans, key=lambda r: r.model_error, default=None)
    if kan is not None and kan.model_error >= err:
        kan = None
    return Verdict(expr, False, "approximate", "; ".join(notes), err, kan)
