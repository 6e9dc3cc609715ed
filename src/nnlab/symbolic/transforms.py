"""Invertible data transforms a candidate KAN is trained in, mirrored exactly in sympy.

Physics laws are often products: with all values of one sign, ``log|y| = Σ p_i log|x_i| + log|C|``
turns a monomial ``C·Π x_i^{p_i}`` into a sum, which a KAN ``[n, 1]`` with linear edges represents
exactly (lecture §6.1: sums of 1-D functions). Each transform also rescales to the spline grid
``[-1, 1]`` (inputs) or to zero mean / unit variance (target); the same maps are written in sympy
so the composed formula is in the user's original variables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy

__all__ = ["fixed_sign", "Transform"]


def fixed_sign(v: np.ndarray) -> int:
    """+1 if all values > 0, -1 if all < 0, else 0 (a log transform does not apply)."""
    if np.all(v > 0):
        return 1
    if np.all(v < 0):
        return -1
    return 0


@dataclass(frozen=True)
class Transform:
    """Maps (X, y) to the KAN's space and back.

    ``log_x`` / ``log_y``: take ``log(s·v)`` with ``s`` the column's fixed sign. ``x_lo, x_hi``:
    per-column range after the log, mapped to [-1, 1]; ``y_mean, y_std``: target standardisation.
    """

    log_x: bool
    log_y: bool
    x_sign: tuple[int, ...]
    y_sign: int
    x_lo: tuple[float, ...]
    x_hi: tuple[float, ...]
    y_mean: float
    y_std: float

    @staticmethod
    def fit(X: np.ndarray, y: np.ndarray, log_x: bool, log_y: bool) -> "Transform":
        xs = tuple(fixed_sign(X[:, j]) for j in range(X.shape[1]))
        ys = fixed_sign(y)
        if log_x and 0 in xs:
            raise ValueError("log_x needs every feature to have a fixed sign")
        if log_y and ys == 0:
            raise ValueError("log_y needs the target to have a fixed sign")
        U = np.log(X * np.array(xs)) if log_x else X
        t = np.log(y * ys) if log_y else y
        lo, hi = U.min(axis=0), U.max(axis=0)
        hi = np.where(hi - lo > 0, hi, lo + 1.0)
        sd = float(t.std()) or 1.0
        return Transform(log_x, log_y, xs, ys, tuple(map(float, lo)), tuple(map(float, hi)), float(t.mean()), sd)

    def x(self, X: np.ndarray) -> np.ndarray:
        U = np.log(X * np.array(self.x_sign)) if self.log_x else X
        lo, hi = np.array(self.x_lo), np.array(self.x_hi)
        return 2 * (U - lo) / (hi - lo) - 1

    def y(self, y: np.ndarray) -> np.ndarray:
        t = np.log(y * self.y_sign) if self.log_y else y
        return (t - self.y_mean) / self.y_std

    def y_inverse(self, t: np.ndarray) -> np.ndarray:
        t = t * self.y_std + self.y_mean
        return self.y_sign * np.exp(t) if self.log_y else t

    def x_sympy(self, variables: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
        out = []
        for j, v in enumerate(variables):
            u = sympy.log(self.x_sign[j] * v) if self.log_x else v
            lo, hi = sympy.Float(self.x_lo[j]), sympy.Float(self.x_hi[j])
            out.append(2 * (u - lo) / (hi - lo) - 1)
        return out

    def y_sympy(self, t: sympy.Expr) -> sympy.Expr:
        t = t * sympy.Float(self.y_std) + sympy.Float(self.y_mean)
        return self.y_sign * sympy.exp(t) if self.log_y else t
