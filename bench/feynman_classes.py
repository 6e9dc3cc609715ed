"""Pure helpers of the Feynman benchmark: the failure class of a truth formula, SRBench's noise
protocol and the exactness test. No torch here: ``tests/test_bench_feynman.py`` imports this file.

Failure class (issue 11): read from the truth's sympy tree and its sampling ranges, never from a
hand list. Each equation gets tags and one primary class (the first tag in :data:`CLASSES` order):

- ``signed``: a factor of the formula (or the formula itself) changes sign on the ranges, e.g.
  ``r*F*sin(theta)`` with θ ∈ [0, 5]; log-space candidates cannot see such laws;
- ``deep``: deep nesting, two or more non-monomial nodes (a function or a sum) on one path from
  the root, e.g. ``asin(n*sin(theta2))``, ``1/(exp(h*omega/(kb*T)) - 1)``, ``sqrt(dx**2 + dy**2)``;
- ``sum_inside``: a sum inside a product, a power or a function, e.g. ``(m1*r1+m2*r2)/(m1+m2)``;
- ``sum``: a sum of monomial terms at the top, e.g. ``x1*y1 + x2*y2``;
- ``fn_of_monomial``: a monomial times a library function of a monomial, ``M1·g(M2)``;
- ``monomial``: a plain monomial ``c·∏ xᵢ^aᵢ``.
"""
from __future__ import annotations

import numpy as np
import sympy

CLASSES = ("signed", "deep", "sum_inside", "sum", "fn_of_monomial", "monomial")
LABELS = {"signed": "signed factor (changes sign on the ranges)", "deep": "deep nesting (≥ 2 nested sums/functions)",
          "sum_inside": "sum inside a product/function", "sum": "sum of monomials",
          "fn_of_monomial": "monomial × g(monomial)", "monomial": "plain monomial"}
NOISE_LEVELS = (0.0, 1e-3, 1e-2, 1e-1)


def parse_truth(formula: str, variables: list[str]) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    """The truth as a sympy expression in the equation's own symbols (names like ``gamma`` or
    ``beta`` are symbols here, not sympy's functions)."""
    syms = tuple(sympy.Symbol(v) for v in variables)
    return sympy.parse_expr(formula, local_dict=dict(zip(variables, syms))), syms


def _is_monomial(e: sympy.Expr) -> bool:
    """c·∏ xᵢ^aᵢ with numeric c and aᵢ (after expanding powers of products)."""
    e = sympy.expand_power_base(sympy.powdenest(e, force=True), force=True)
    for f in sympy.Mul.make_args(e):
        if f.is_number or f.is_Symbol:
            continue
        if f.is_Pow and f.base.is_Symbol and f.exp.is_number:
            continue
        return False
    return True


def _nonmonomial_depth(e: sympy.Expr) -> int:
    """Largest number of non-monomial nodes (functions, sums, non-numeric powers) on one path."""
    if e.is_Atom or _is_monomial(e):
        return 0
    if e.is_Mul or (e.is_Pow and e.exp.is_number):
        return max(_nonmonomial_depth(a) for a in e.args)
    return 1 + max((_nonmonomial_depth(a) for a in e.args), default=0)


def _changes_sign(e: sympy.Expr, syms, X: np.ndarray) -> bool:
    f = sympy.lambdify(syms, e, "numpy")
    with np.errstate(all="ignore"):
        v = np.asarray(f(*X.T), dtype=np.float64) * np.ones(len(X))
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() < 0 < v.max())


def failure_tags(formula: str, variables: list[str], ranges: list[tuple[float, float]], n: int = 2000,
                 seed: int = 0) -> list[str]:
    """All failure tags of one truth formula (see the module docstring), in :data:`CLASSES` order."""
    e, syms = parse_truth(formula, variables)
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    tags = set()
    if any(_changes_sign(f, syms, X) for f in sympy.Mul.make_args(e) + (e,) if not f.is_number):
        tags.add("signed")
    if _is_monomial(e):
        tags.add("monomial")
    else:
        depth = _nonmonomial_depth(e)
        if depth >= 2:
            tags.add("deep")
        if e.is_Add and all(_is_monomial(a) for a in e.args):
            tags.add("sum")
        adds_inside = [a for a in sympy.preorder_traversal(e) if a.is_Add and a is not e]
        if adds_inside:
            tags.add("sum_inside")
        if not adds_inside and not e.is_Add and depth == 1:
            tags.add("fn_of_monomial")
    return [c for c in CLASSES if c in tags]


def failure_class(formula: str, variables: list[str], ranges: list[tuple[float, float]]) -> str:
    """The primary failure class: the first of :func:`failure_tags` in :data:`CLASSES` order."""
    return failure_tags(formula, variables, ranges)[0]


def add_noise(y: np.ndarray, gamma: float, seed: int = 2) -> np.ndarray:
    """SRBench's target noise: ``y + ε``, ``ε ~ N(0, (γ·RMS(y))²)`` (La Cava et al. 2021)."""
    if gamma < 0:
        raise ValueError(f"noise level gamma must be >= 0, got {gamma}")
    y = np.asarray(y, dtype=np.float64)
    if gamma == 0:
        return y.copy()
    rms = float(np.sqrt(np.mean(y ** 2)))
    return y + np.random.default_rng(seed).normal(0.0, gamma * rms, size=y.shape)


def symbolically_equal(expr: sympy.Expr, truth: sympy.Expr, syms, X: np.ndarray, timeout_ok=True) -> bool:
    """Is ``expr`` the truth after snapping? ``simplify(expr − truth) == 0``, or (when simplify
    cannot decide) no floating constant left in ``expr`` and agreement to 1e-10 relative on ``X``:
    a formula of exact constants that matches the truth to round-off at 1,000 random points is the
    truth (polynomial identity testing)."""
    try:
        if sympy.simplify(expr - truth) == 0:
            return True
    except Exception:  # noqa: BLE001 - sympy can raise many things on odd input; fall back to numbers
        pass
    if any(isinstance(a, sympy.Float) for a in sympy.preorder_traversal(expr)):
        return False
    return relative_error(expr, truth, syms, X) < 1e-10


def relative_error(expr: sympy.Expr, truth: sympy.Expr, syms, X: np.ndarray) -> float:
    """Relative RMSE of ``expr`` against ``truth`` on the rows of ``X`` (nan when not real)."""
    with np.errstate(all="ignore"):
        pred = np.asarray(sympy.lambdify(syms, expr, "numpy")(*X.T), dtype=np.complex128) * np.ones(len(X))
        y = np.asarray(sympy.lambdify(syms, truth, "numpy")(*X.T), dtype=np.float64) * np.ones(len(X))
        pred = np.where(np.abs(pred.imag) < 1e-12, pred.real, np.nan)
        return float(np.sqrt(np.mean((pred - y) ** 2)) / np.sqrt(np.mean(y ** 2)))
