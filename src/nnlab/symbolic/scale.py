"""Scale invariance: the search runs on data rescaled by powers of ten (issue 11, item 5).

A column (or the target) whose root-mean-square is ``10^e`` with ``|e| ≥ 3`` is divided by
``10^e``; columns already within ``[10⁻², 10²]`` are left alone (the KAN grids and float64 are
comfortable there, and the constants keep their units). Powers of ten are exact in sympy, so a
formula found on the rescaled data, ``y' = f(x')``, is undone exactly:
``y = 10^{e_y}·f(x₁/10^{e₁}, …)``. ``y = 10³⁰⁰·a·b`` and ``y = a·b`` are then the same problem,
and nothing overflows (every error is measured on the rescaled data).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy

__all__ = ["decade", "Scale"]

_MIN_EXP = 3
_MAX_EXP = 300


def decade(v: np.ndarray) -> int:
    """``e`` with ``RMS(v) ≈ 10^e`` (0 when ``|e| < 3`` or v is all zero), overflow-safe."""
    v = np.asarray(v, dtype=np.float64)
    m = float(np.max(np.abs(v))) if v.size else 0.0
    if not (m > 0 and math.isfinite(m)):
        return 0
    rms = math.log10(m) + 0.5 * math.log10(float(np.mean((v / m) ** 2)))
    e = int(math.floor(rms + 0.5))
    return max(-_MAX_EXP, min(_MAX_EXP, e)) if abs(e) >= _MIN_EXP else 0


def _times_ten(v: np.ndarray, e: int) -> np.ndarray:
    """``v·10^e`` in two halves, so neither factor under- or overflows."""
    h = e // 2
    return v * 10.0 ** h * 10.0 ** (e - h)


@dataclass(frozen=True)
class Scale:
    """Decimal exponents of the columns of X (``x_exp``) and of y (``y_exp``)."""

    x_exp: tuple[int, ...]
    y_exp: int

    @staticmethod
    def fit(X: np.ndarray, y: np.ndarray) -> "Scale":
        return Scale(tuple(decade(X[:, j]) for j in range(X.shape[1])), decade(y))

    @property
    def identity(self) -> bool:
        return self.y_exp == 0 and not any(self.x_exp)

    def x(self, X: np.ndarray) -> np.ndarray:
        """(N, n) user units → rescaled."""
        if not any(self.x_exp):
            return X
        return np.column_stack([_times_ten(X[:, j], -e) for j, e in enumerate(self.x_exp)])

    def y(self, y: np.ndarray) -> np.ndarray:
        return _times_ten(y, -self.y_exp) if self.y_exp else y

    def y_inverse(self, t: np.ndarray) -> np.ndarray:
        return _times_ten(t, self.y_exp) if self.y_exp else t

    def unscale(self, expr: sympy.Expr, variables: Sequence[sympy.Symbol]) -> sympy.Expr:
        """A formula of the rescaled data, in user units (exact: only powers of ten appear)."""
        ten = sympy.Integer(10)
        reps = {v: v * ten ** (-e) for v, e in zip(variables, self.x_exp) if e}
        out = expr.xreplace(reps) if reps else expr
        return out * ten ** self.y_exp if self.y_exp else out

    def rescale(self, expr: sympy.Expr, variables: Sequence[sympy.Symbol]) -> sympy.Expr:
        """The inverse of :meth:`unscale`: a user-unit formula as a formula of the rescaled data."""
        ten = sympy.Integer(10)
        reps = {v: v * ten ** e for v, e in zip(variables, self.x_exp) if e}
        out = expr.xreplace(reps) if reps else expr
        return out * ten ** (-self.y_exp) if self.y_exp else out
