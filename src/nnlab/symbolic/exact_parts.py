"""Exact rows for the parts of a split, once the other parts are known.

A split of a node whose rows are still the law's exact values (the root, or a part reached through
power factors or a homogeneity) hands its parts only the oracle: ``y = a(R) + b(R)·x_k`` says nothing
about ``a`` or ``b`` row by row. Each part is then fitted on the surrogate's values and is as good as
the surrogate (0.1–1 % off with four variables), which is often not good enough to name it. Once
every part but one has a closed form, though, the rows give the last one exactly (AI Feynman
subtracts a solved part from the data):

- linear, ``y = a + b·x_k``: ``a = y − b·x_k``, or ``b = (y − a)/x_k``;
- additive, ``y = Σ_j f_j(x_{M_j})``: ``f_i = y − Σ_{j≠i} f_j`` (up to a constant);
- multiplicative, ``y = Π_j f_j(x_{M_j})``: ``f_i = y / Π_{j≠i} f_j``.

:func:`complete_splits` tries that for every such split of a decomposition, innermost first: the
known parts are each one's fits (its leaves' alternatives, one swapped at a time) with their
constants snapped on the oracle's values of that part (a fit from a surrogate is a few tenths of a
percent off even when its form is right); the last part must then be reproduced by a closed form
(:func:`~nnlab.symbolic.decompose_leaf.exact_forms`) within 1e-6, which also confirms the known
parts: a wrong one leaves rows that depend on its variables, which no closed form of the last
part's variables reproduces. The first combination that passes replaces the split's composition.

Everything is computed from the merged decomposition (every shard's leaves), with no random draw,
so ``n_jobs`` does not change the result. With an exchange (the shards of a parallel search join
together), the snaps of the known parts' fits and the last part's closed-form fits are tasks that the
shards split (:func:`~nnlab.symbolic.exchange.share`).
"""
from __future__ import annotations

import functools
import itertools
from fractions import Fraction
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from .decompose_leaf import EXACT_LEAF, exact_forms
from .exchange import Task, share, value_name
from .finish import complexity
from .polish import evaluate, formula_error
from .snap import snap

__all__ = ["SplitPart", "SplitRecord", "complete_splits", "expand", "resolve_variables"]


@dataclass
class SplitPart:
    """One part of a split: ``expr`` its composition (leaf placeholders ``_L*``, new variables ``_u*``
    unresolved), ``symbols`` and ``X`` its variables and rows, ``y`` the oracle's values on them,
    ``error`` their relative error."""

    expr: sympy.Expr
    symbols: list[sympy.Symbol]
    X: np.ndarray
    y: np.ndarray
    error: float


@dataclass
class SplitRecord:
    """A split of a node with exact rows ``y`` (the node's rows are the root's, in the same order):
    ``kind`` is ``"linear"`` (``parts = [a, b]``, ``y = a + b·factor``), ``"additive"`` or
    ``"multiplicative"``; ``factor`` is the linear split's variable (a node symbol)."""

    kind: str
    y: np.ndarray
    parts: list[SplitPart]
    composition: sympy.Expr  # the split's law from its parts' fits (what stays when it is not completed)
    factor: sympy.Expr | None = None


def resolve_variables(expr: sympy.Expr, subs: list[tuple[sympy.Symbol, sympy.Expr]]) -> sympy.Expr:
    """``expr`` in the original variables: each new variable ``_u*`` of ``subs`` (in order of creation,
    a later one defined through earlier ones) replaced by its definition, the latest first."""
    for u, e in reversed(subs):
        expr = expr.xreplace({u: e})
    return expr


def expand(expr: sympy.Expr, splits: dict[sympy.Symbol, SplitRecord], done: dict[sympy.Symbol, sympy.Expr]
           | None = None) -> sympy.Expr:
    """``expr`` with every split symbol ``_N*`` replaced by its law (``done``) or its composition."""
    done = done or {}
    for _ in range(len(splits) + 1):
        hit = [N for N in expr.free_symbols if N in splits]
        if not hit:
            return expr
        expr = expr.xreplace({N: done[N] if N in done else splits[N].composition for N in hit})
    return expr


def _combine(kind: str, exprs: list[sympy.Expr], factor: sympy.Expr | None) -> sympy.Expr:
    if kind == "linear":
        return exprs[0] + exprs[1] * factor
    if kind == "additive":
        return sympy.Add(*exprs)
    return sympy.Mul(*exprs)


def complete_splits(template: sympy.Expr, parts: dict[sympy.Symbol, list[sympy.Expr] | None],
                    splits: dict[sympy.Symbol, SplitRecord], subs: list[tuple[sympy.Symbol, sympy.Expr]],
                    X: np.ndarray, variables: list[sympy.Symbol], deadline: float | None = None,
                    max_variants: int = 6, max_constants: int = 6, exchange: Any = None
                    ) -> tuple[sympy.Expr, dict[sympy.Symbol, sympy.Expr]]:
    """The decomposition's composition (``template``, resolved except its split symbols) with each
    split that its exact rows complete replaced by that law; returns (the composition without split
    symbols, {split symbol: its exact law} for the completed ones). ``parts``: each leaf's fits
    (resolved into ``variables``); ``subs``: the new variables ``_u*`` in order of creation; ``X``:
    the root's rows; ``deadline``: ``time.monotonic()`` after which no split is tried; ``exchange``: the
    shards of a parallel search that join at once split the fits (the same result)."""
    done: dict[sympy.Symbol, sympy.Expr] = {}

    def resolve(e: sympy.Expr) -> sympy.Expr:
        return resolve_variables(e, subs)

    for N, rec in splits.items():  # in order of creation: the inner splits first
        if deadline is not None and time.monotonic() > deadline:
            break
        law = _complete(rec, parts, splits, done, resolve, X, variables, deadline, max_variants, max_constants,
                        exchange)
        if law is not None:
            done[N] = law
    return resolve(expand(template, splits, done)), done


def _complete(rec: SplitRecord, parts: dict[sympy.Symbol, list[sympy.Expr] | None],
              splits: dict[sympy.Symbol, SplitRecord], done: dict[sympy.Symbol, sympy.Expr], resolve: Any,
              X: np.ndarray, variables: list[sympy.Symbol], deadline: float | None,
              max_variants: int, max_constants: int, exchange: Any = None) -> sympy.Expr | None:
    if not np.all(np.isfinite(rec.y)) or any(v is None for v in parts.values()):
        return None
    factor = None if rec.factor is None else resolve(rec.factor)
    fvals = None if factor is None else _values(factor, variables, X)
    if factor is not None and fvals is None:
        return None
    order = sorted(range(len(rec.parts)), key=lambda i: -len(rec.parts[i].symbols))  # the hardest first
    known: dict[int, list[tuple[sympy.Expr, np.ndarray]]] = {}
    for i in order:
        if deadline is not None and time.monotonic() > deadline:
            return None
        if rec.kind == "linear" and i == 1 and np.min(np.abs(fvals)) <= 1e-9 * (np.max(np.abs(fvals)) or 1.0):
            continue  # b = (y − a)/x_k needs x_k away from zero
        others = [j for j in range(len(rec.parts)) if j != i]
        new = [j for j in others if j not in known]
        tasks = [_variant_tasks(rec.parts[j], rec.kind, parts, splits, done, resolve, X, variables, max_variants,
                                max_constants) for j in new]
        found = share(exchange, [t for ts in tasks for t in ts])
        for j, ts in zip(new, tasks):
            known[j], found = _variants(found[:len(ts)], X, variables, max_variants), found[len(ts):]
        if any(not known[j] for j in others):
            continue
        target = rec.parts[i]
        for combo in itertools.islice(itertools.product(*(known[j] for j in others)), 6):
            rows = _rows(rec.kind, i, rec.y, [v for _, v in combo], fvals)
            if rows is None:
                continue
            fits = exact_forms(target.X, rows, target.symbols, math.inf if deadline is None else deadline,
                               exchange=exchange)
            if not fits:
                continue
            law = _law(rec, i, others, combo, resolve(fits[0]), factor)
            if formula_error(law, variables, X, rec.y) <= 10 * EXACT_LEAF:
                return law
    return None


def _law(rec: SplitRecord, i: int, others: list[int], combo: tuple, last: sympy.Expr,
         factor: sympy.Expr | None) -> sympy.Expr:
    exprs: list[sympy.Expr] = [sympy.Integer(0)] * len(rec.parts)
    for j, (e, _) in zip(others, combo):
        exprs[j] = e
    exprs[i] = last
    return _combine(rec.kind, exprs, factor)


def _values(expr: sympy.Expr, variables: list[sympy.Symbol], X: np.ndarray) -> np.ndarray | None:
    try:
        with np.errstate(all="ignore"):
            v = np.asarray(evaluate(expr, variables, X), dtype=np.float64).reshape(-1)
    except (ValueError, TypeError, ArithmeticError, KeyError, NameError, RecursionError):
        return None
    if v.shape[0] != X.shape[0]:
        v = np.broadcast_to(v, (X.shape[0],)).copy()
    return v if np.all(np.isfinite(v)) else None


def _variant_tasks(part: SplitPart, kind: str, parts: dict[sympy.Symbol, list[sympy.Expr]],
                   splits: dict[sympy.Symbol, SplitRecord], done: dict[sympy.Symbol, sympy.Expr], resolve: Any,
                   X: np.ndarray, variables: list[sympy.Symbol], max_variants: int, max_constants: int) -> list[Task]:
    """A known part's candidate laws in ``variables``, one task per fit of the part (see :func:`_variants`):
    its composition with every leaf's first fit, then one leaf's other fits at a time; each task gives
    the fit with its constants snapped on the oracle's values of the part (within twice their error)
    and with every constant rounded to a simple rational (:func:`_rounded`), None where that fails.
    The part of a product (a sum) is known only up to a factor (a constant) that the last part takes:
    it is snapped without it (:func:`_free`), ``0.79·ω + 0.0035`` as ``ω + 0.0044``."""
    expr = resolve(expand(part.expr, splits, done))
    leaves = [L for L in sorted(expr.free_symbols, key=str) if L in parts]
    base = {L: parts[L][0] for L in leaves}
    choices = [base] + [{**base, L: alt} for L in leaves for alt in parts[L][1:]]
    tasks = []
    for ch in choices[:3 * max_variants]:
        fitted = expr.xreplace(ch)
        if fitted.free_symbols - set(variables) or len(fitted.atoms(sympy.Float)) > max_constants:
            continue  # (a part of many fitted constants will not snap to an exact law: not worth the time)
        name = value_name("variant", X, part.y, split=kind, expr=sympy.srepr(fitted), error=part.error,
                          max_constants=max_constants, variables=str(variables))
        tasks.append((name, functools.partial(_snapped, fitted, kind, part, X, variables, max_constants)))
    return tasks


def _snapped(fitted: sympy.Expr, kind: str, part: SplitPart, X: np.ndarray, variables: list[sympy.Symbol],
             max_constants: int) -> list[sympy.Expr | None]:
    fitted, target = _free(fitted, kind, part.y, X, variables)
    # the oracle's values of a part can be biased by a few times their error (0.994 for a 1), so
    # every constant rounded to a simple rational within 1 % is tried too; a wrong snap or rounding
    # leaves the last part's rows inexact, and is dropped there
    out: list[sympy.Expr | None] = []
    for how in range(2):
        try:
            out.append(snap(fitted, X, target, tol=max(2 * part.error, 1e-6), variables=variables,
                            max_constants=max_constants).expr if how == 0 else _rounded(fitted, X, variables))
        except (ValueError, TypeError, ArithmeticError, RecursionError):
            out.append(None)
    return out


def _variants(snapped: list[list[sympy.Expr | None]], X: np.ndarray, variables: list[sympy.Symbol],
              max_variants: int) -> list[tuple[sympy.Expr, np.ndarray]]:
    """The distinct values of the :func:`_variant_tasks` of a part, with their values on ``X``, those
    left with the fewest fitted constants first (a fitted constant left over makes no row exact), then
    the simplest (a leaf's alternatives can snap to ``√(m²)`` where its first fit snaps to ``m``)."""
    out: list[tuple[int, int, int, sympy.Expr, np.ndarray]] = []
    seen: set[str] = set()
    for pair in snapped:
        for how, e in enumerate(pair):
            if e is None:
                continue
            key = sympy.srepr(e)
            if key in seen:
                continue
            seen.add(key)
            v = _values(e, variables, X)
            if v is not None:
                out.append((len(e.atoms(sympy.Float)), complexity(e), how, e, v))
    out.sort(key=lambda r: r[:3])
    return [(e, v) for *_, e, v in out[:max_variants]]


def _free(expr: sympy.Expr, kind: str, y: np.ndarray, X: np.ndarray, variables: list[sympy.Symbol]
          ) -> tuple[sympy.Expr, np.ndarray]:
    """A part of a sum without its constant term, a part of a product without its scale (each factor
    that is a sum, or a power of one, divided by its first term's coefficient), and the oracle's
    values ``y`` shifted or scaled alike."""
    if kind == "additive":
        c0, rest = expr.as_coeff_Add()
        return rest, y - float(c0)
    if kind != "multiplicative":
        return expr, y
    factors = []
    for f in sympy.Mul.make_args(expr):
        if f.is_Number:
            continue
        base, power = f.as_base_exp()
        if base.is_Add:
            k = next((t.as_coeff_Mul()[0] for t in base.as_ordered_terms() if not t.is_Number), None)
            if k is not None and k != 0:
                f = sympy.Pow(base / k, power)
        factors.append(f)
    free = sympy.Mul(*factors)
    old, new = _values(expr, variables, X), _values(free, variables, X)
    if old is None or new is None or np.any(old == 0):
        return expr, y
    return free, y * float(np.median(new / old))


def _rounded(expr: sympy.Expr, X: np.ndarray, variables: list[sympy.Symbol], max_den: int = 4,
             rel: float = 0.01) -> sympy.Expr | None:
    """``expr`` with every Float replaced by the nearest rational of denominator ≤ ``max_den`` when that
    is within ``rel`` of it or moves ``expr``'s values on ``X`` by at most ``rel``/10 (an offset
    0.0004 of a fit ``0.79·x + 0.0004`` becomes 0); None unless every one is."""
    base = _values(expr, variables, X)
    if base is None:
        return None
    scale = float(np.sqrt(np.mean(base ** 2))) or 1.0
    rep = {}
    for f in expr.atoms(sympy.Float):
        q = Fraction(float(f)).limit_denominator(max_den)
        r = sympy.Rational(q.numerator, q.denominator)
        if abs(float(q) - float(f)) > rel * abs(float(f)):
            moved = _values(expr.xreplace({f: r}), variables, X)
            if moved is None or float(np.sqrt(np.mean((moved - base) ** 2))) > 0.1 * rel * scale:
                return None
        rep[f] = r
    return expr.xreplace(rep) if rep else None


def _rows(kind: str, i: int, y: np.ndarray, others: list[np.ndarray], fvals: np.ndarray | None) -> np.ndarray | None:
    """The exact rows of part ``i`` given the other parts' values."""
    with np.errstate(all="ignore"):
        if kind == "linear":
            rows = y - others[0] * fvals if i == 0 else (y - others[0]) / fvals
        elif kind == "additive":
            rows = y - np.sum(others, axis=0)
        else:
            den = np.prod(others, axis=0)
            if np.min(np.abs(den)) <= 1e-12 * (np.max(np.abs(den)) or 1.0):
                return None
            rows = y / den
    return rows if np.all(np.isfinite(rows)) else None
