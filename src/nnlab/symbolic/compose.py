"""Putting a decomposition's parts back together (§6.3 "compose"): each part's alternative fits are
chosen on the original rows (:func:`choose_parts`), then every constant of the whole law is refit,
snapped once and refit again (:func:`finish`)."""
from __future__ import annotations

import time

import numpy as np
import sympy

from .polish import evaluate, polish, relative_rmse
from .search import merge_numbers, tidy
from .snap import snap

__all__ = ["choose_parts", "finish"]


def choose_parts(template: sympy.Expr, parts: dict[sympy.Symbol, list[sympy.Expr]], variables: list[sympy.Symbol],
                 X: np.ndarray, y: np.ndarray, deadline: float | None = None) -> sympy.Expr:
    """Fill each leaf symbol of ``template`` with one of its fits: first the preferred ones; then,
    while the law is not exact on the original rows, each leaf's alternatives in turn (coordinate
    search), keeping a swap when the polished error drops. The original rows are the arbiter of
    what the surrogate could not tell apart."""
    choice = {L: 0 for L in parts}

    def score(ch: dict[sympy.Symbol, int]) -> tuple[float, sympy.Expr]:
        e = template.xreplace({L: parts[L][k] for L, k in ch.items()})
        try:
            e = tidy(e) if sympy.count_ops(e) <= 400 else e
            e, err = polish(e, variables, X, y, max_nfev=100)
        except (ValueError, TypeError, ArithmeticError, RecursionError):
            return float("inf"), e
        return err, e

    best_err, best = score(choice)
    for L in parts:
        if best_err < 1e-9 or (deadline is not None and time.monotonic() > deadline):
            break
        for k in range(1, len(parts[L])):
            trial = {**choice, L: k}
            err, e = score(trial)
            if err < 0.5 * best_err:
                best_err, best, choice = err, e, trial
    return best


def finish(expr: sympy.Expr, variables: list[sympy.Symbol], X: np.ndarray, y: np.ndarray, snap_tol: float = 1e-6,
           late: bool = False) -> sympy.Expr:
    """Refit every constant on the original rows, snap once, refit, simplify when small."""
    if sympy.count_ops(expr) <= 400:
        expr = tidy(expr)
    expr, err = polish(expr, variables, X, y, max_nfev=400)
    if late:
        return expr
    tol = max(snap_tol, 0.01 * err)
    expr = snap(expr, X, y, tol=tol, variables=variables, max_constants=24).expr
    if expr.atoms(sympy.Float):
        expr, err = polish(expr, variables, X, y)
    if sympy.count_ops(expr) <= 60:
        try:
            simple = merge_numbers(sympy.simplify(expr))
            if relative_rmse(evaluate(simple, variables, X), y) <= err + tol:
                expr = simple
        except (ValueError, ArithmeticError, TypeError, RecursionError):
            pass
        if expr.atoms(sympy.Float):
            expr = snap(expr, X, y, tol=tol, variables=variables).expr
    return expr
