"""The leaves of the decomposition (:mod:`~nnlab.symbolic.decompose`): a part no structure test splits.

Several variables: sparse rationals ``P/Q`` and ``√(P/Q)`` (:mod:`~nnlab.symbolic.rational`),
sparse atom sums in ``y``, ``y²``, ``1/y``, ``1/y²`` (:mod:`~nnlab.symbolic.dictionary`), rationals in
``cos``/``sin`` features (:mod:`~nnlab.symbolic.trig_rational`), else the KAN candidates of the
search. One variable: every library function ``c·f(a·x + b) + d`` on ``y``, ``1/y`` and ``y²``, and
the atom sums. Every leaf keeps a few alternative fits; the original rows choose among them
(:func:`~nnlab.symbolic.compose.choose_parts`).
"""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import sympy

from .affine import canonical
from .dictionary import dictionary_tasks
from .exchange import Task, share, value_name
from .library import Library
from .matching import coarse_fits, refined_fit, to_refine
from .polish import evaluate, formula_error, relative_rmse
from .rational import fit_rational
from .search import Candidate, run_candidate
from .transforms import fixed_sign
from .trig_rational import fit_trig_rational

if TYPE_CHECKING:
    from .decompose_splits import _Node

__all__ = ["EXACT_LEAF", "LeafFits", "TARGET_TRANSFORMS", "exact_forms", "rms"]

EXACT_LEAF = 1e-6  # relative error of a closed form that reproduces a part's exact rows


def rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(v ** 2)))


def exact_forms(X: np.ndarray, y: np.ndarray, symbols: list[sympy.Symbol], deadline: float = math.inf,
                tol: float = EXACT_LEAF, exchange: Any = None) -> list[sympy.Expr]:
    """The closed forms that reproduce exact rows ``y`` of ``X`` within relative error ``tol``, simplest
    first (``sympy.count_ops``): a sparse ``P/Q`` or ``√(P/Q)`` (degrees up to 4 with at most three
    variables: ``u²x²/(c⁴ − c²u²)``; exact rows leave no room for a spurious dense fit), a sparse sum
    of atom products in ``y``, ``y²``, ``1/y``, ``1/y²`` (up to 6 terms), else a rational in cos/sin
    features. Deterministic. ``exchange``: the shards of a decomposition that test the same rows split
    the fits (:func:`~nnlab.symbolic.exchange.share`); the same forms."""
    degree = 4 if X.shape[1] <= 3 else 3
    rationals, sums = closed_form_tasks(X, y, symbols, tol / 3, degree, deadline, max_terms=6)
    fits = [e for found in share(exchange, rationals + sums) for e in found]
    if not fits:
        fits = fit_trig_rational(X, y, symbols, tol=tol / 3, deadline=deadline, exchange=exchange)[:3]
    scored = [(formula_error(e, symbols, X, y), i, e) for i, e in enumerate(fits)]
    # every fit within tol is exact: the simplest first (P/Q before the √ of its square)
    return [e for *_, e in sorted((sympy.count_ops(e), err, i, e) for err, i, e in scored if err <= tol)]


def closed_form_tasks(X: np.ndarray, y: np.ndarray, symbols: list[sympy.Symbol], tol: float, degree: int | None,
                      deadline: float, max_terms: int) -> tuple[list[Task], list[Task]]:
    """The closed-form fits of a part as independent tasks (:data:`~nnlab.symbolic.exchange.Task`), each
    giving a list of formulas for y: the rationals, a sparse ``P/Q`` within ``tol`` and, when y keeps one
    sign, ``√(P/Q)`` of y² (within ``2·tol``: the relative error of y² is twice y's); and the sparse atom
    sums of y and its transforms within ``tol`` (:func:`~nnlab.symbolic.dictionary.dictionary_tasks`)."""
    s = fixed_sign(y)

    def rational(t: np.ndarray, tol: float, wrap: Callable[[sympy.Expr], sympy.Expr]) -> list[sympy.Expr]:
        e = _rational(X, t, symbols, tol, deadline, degree)
        return [] if e is None else [wrap(e)]
    name = functools.partial(value_name, "rational", X, degree=degree, variables=str(symbols))
    tasks: list[Task] = [(name(y, tol=tol), functools.partial(rational, y, tol, lambda e: e))]
    if s != 0:
        tasks.append((name(y ** 2, tol=2 * tol, root=s),
                      functools.partial(rational, y ** 2, 2 * tol, lambda e: s * sympy.sqrt(e))))
    return tasks, dictionary_tasks(X, y, symbols, tol=tol, max_terms=max_terms)


class LeafFits:
    """The leaf fits of :class:`~nnlab.symbolic.decompose._Decomposer` (which provides ``lib``,
    ``rng``, ``deadline``, ``late()``, ``defer()`` and ``placeholder()``)."""

    def leaf(self, node: _Node, info: dict[str, Any]) -> tuple[sympy.Expr, dict[str, Any]]:
        """Several variables: closed forms first (sparse rationals, atom sums, rationals in cos/sin
        features), else the KAN candidates; the fits become the alternatives of one placeholder."""
        if node.X.shape[1] == 1:
            return self.leaf1(node, info)
        X, y = node.X, node.y
        n = len(y)
        perm = self.rng.permutation(n)  # drawn by every shard: the tests after this leaf see the same stream
        floor = 1e-7 if node.exact else max(node.sigma / (rms(y) or 1.0), 1e-7)
        rationals, dictionary = closed_form_tasks(X, y, node.symbols, 3 * floor, None, self.deadline,
                                                  6 if node.exact else 4)
        deferred = self.defer(info, rationals + dictionary)
        if deferred is not None:
            return deferred
        xpos = all(fixed_sign(X[:, j]) != 0 for j in range(X.shape[1]))
        ypos = fixed_sign(y) != 0
        cands = [Candidate("loglog", True, True)] if xpos and ypos else []
        cands += [Candidate("logy", log_y=True)] if ypos else []
        cands += [Candidate("raw")] + ([Candidate("composite", True, True)] if xpos and ypos else [])
        va, tr = perm[: n // 4], perm[n // 4:]
        # sparse P/Q and √(P/Q) (distances, norms) within the oracle's error, and sparse sums of atom
        # products in y, y², 1/y, 1/y² (√(1 + u² − 2u·cos θ) of the law of cosines)
        closed = share(self.exchange, rationals + dictionary)
        rats = [e for f in closed[:len(rationals)] for e in f]
        sums = [e for f in closed[len(rationals):] for e in f]
        # angles enter through cos θ, often rationally; the original rows refit the constants of a
        # form found on the oracle's values, so a looser fit still names the right form (beside a
        # dense P/Q that merely fits those values as closely)
        wanted = not (rats or sums) if node.exact else 3 * floor <= 1e-2
        trig = fit_trig_rational(X, y, node.symbols, tol=3 * floor, deadline=self.deadline,
                                 exchange=self.exchange)[:3] if wanted else []
        if node.exact or rats or sums:  # the trigonometric fits join the other closed forms
            rats, trig = rats + trig, []
        if rats or sums:  # the more accurate first; the parts' rows decide among them later
            fits = sorted([(e, "rational") for e in rats] + [(e, "dictionary") for e in sums],
                          key=lambda p: formula_error(p[0], node.symbols, X, y))
            return self.placeholder([e for e, _ in fits]), {**info, "split": "leaf", "candidate": fits[0][1],
                                                           "formula": str(fits[0][0]), "alternatives": len(fits) - 1}
        best, found = None, []
        for cand in cands:
            r = run_candidate(cand, X[tr], y[tr], X[va], y[va], node.symbols, self.lib, grid=5, k=3, steps=60,
                              lamb=1e-3, r2_threshold=0.99, snap_tol=1e-6, deadline=self.deadline)
            if r.expr is None or not r.complete or not math.isfinite(r.val_error):
                continue
            found.append(r)
            if best is None or r.val_error < 0.5 * best.val_error or \
                    (r.val_error <= 2 * best.val_error + 1e-12 and r.complexity < best.complexity):
                best = r
            if r.val_error < 1e-9 or self.late():
                break
        if best is None:
            if trig:
                return self.placeholder(trig), {**info, "split": "leaf", "candidate": "rational",
                                                "formula": str(trig[0]), "alternatives": len(trig) - 1}
            return self.placeholder([sympy.Float(float(np.mean(y)))]), {**info, "split": "leaf", "candidate": None,
                                                    "note": "no candidate gave a closed form"}
        alts = [best.expr] + [r.expr for r in sorted(found, key=lambda r: r.val_error) if r is not best][:2]
        if trig:  # before the candidates when it fits the oracle's values at least as well
            first = formula_error(trig[0], node.symbols, X, y) <= best.val_error
            alts = trig + alts if first else alts[:1] + trig + alts[1:]
        return self.placeholder(alts), {**info, "split": "leaf", "candidate": best.candidate.name,
                                        "error": best.val_error, "formula": str(best.expr),
                                        "alternatives": len(alts) - 1}

    def exact_leaf(self, node: _Node, info: dict[str, Any]) -> tuple[sympy.Expr, dict[str, Any]] | None:
        """A part whose rows are still the law's exact values and that a closed form reproduces
        (:func:`exact_forms`) needs no split: its leaf, or None. The derived oracle of a part can pass
        a test that its rows do not (``d·(1 − α²)/(1 + α·cos u)`` looks separable in α and u through a
        surrogate 0.2% off, while its rows name the law exactly). Every shard decides it alike (no
        random draw)."""
        fits = exact_forms(node.X, node.y, node.symbols, self.deadline, exchange=self.exchange)
        if not fits:
            return None
        deferred = self.defer(info)
        if deferred is not None:
            return deferred
        return self.placeholder(fits), {**info, "split": "leaf", "candidate": "exact closed form",
                                        "formula": str(fits[0]), "alternatives": len(fits) - 1}

    def leaf1(self, node: _Node, info: dict[str, Any]) -> tuple[sympy.Expr, dict[str, Any]]:
        """One variable: ``c·f(a·x + b) + d`` for every library function, on y, 1/y and y²; sparse atom
        sums and rationals in (x, cos x); last, loosely fitting two-term sums (see :meth:`leaf1_tasks`)."""
        functions, closed, loose = self.leaf1_tasks(node)
        tasks = [t for group in functions for t in group] + closed + loose
        deferred = self.defer(info, tasks)
        if deferred is not None:
            return deferred
        sym, y = node.symbols[0], node.y
        found = share(self.exchange, tasks)
        options = []  # (relative error, cost, expr, label)
        for group in functions:  # each transform's functions in the order of suggest: by r², then by rank
            fits, found = sorted(f for part in found[:len(group)] for f in part), found[len(group):]
            fits.sort(key=lambda f: -(f[2].r2 if math.isfinite(f[2].r2) else -1e300))
            options += [f[3] for f in fits if f[3] is not None]
        options += [o for f in found[:len(closed)] for o in f]
        if not options:
            mean = self.placeholder([sympy.Float(float(np.mean(y)))])
            return mean, {**info, "split": "leaf", "note": "no function fits"}
        floor = node.sigma / (rms(y) or 1.0)
        best_err = min(o[0] for o in options)
        good = sorted((o for o in options if o[0] <= max(2 * best_err, 3 * floor) + 1e-12), key=lambda o: (o[1], o[0]))
        err, _, expr, label = good[0]
        alts = [expr]  # then the most accurate fits: the original rows decide among them
        for o in good[1:3] + sorted(options, key=lambda o: o[0])[:3]:
            if len(alts) < 4 and all(o[2] != a for a in alts):
                alts.append(o[2])
        sums = [e for f in found[len(closed):] for e in f if all(e != a for a in alts)]
        alts += sorted(sums, key=lambda e: formula_error(e, [sym], node.X, y))[:2]
        return self.placeholder(alts), {**info, "split": "leaf", "candidate": label, "error": err,
                                        "formula": str(expr), "alternatives": len(alts) - 1}

    def leaf1_tasks(self, node: _Node) -> tuple[list[list[Task]], list[Task], list[Task]]:
        """The independent fits of a one-variable leaf (:data:`~nnlab.symbolic.exchange.Task` s, which
        the shards of a decomposition split), in three kinds:

        - every library function ``c·f(a·x + b) + d`` fitted to y, 1/y and y² (a group of tasks per
          target, see :meth:`_function_tasks`), each giving ``(rank, name, fit, option)`` where an option
          is ``(relative error on y, cost, expr, label)`` or None;
        - sparse atom sums of y, y², 1/y, 1/y² (they cost more than one library function, so a single
          function that fits as well is preferred) and rationals in (x, cos x) or (x, sin x):
          sin²(x/2)/(x/2)² = 2(1 − cos x)/x²; each gives options;
        - loose two-term sums, each giving formulas: they fit the oracle's values only loosely (a
          derived oracle 0.2 % off misses 1/√(1 − 1/w²) = two terms in 1/y² at 3 times its error, and a
          more flexible function fits it closer), but a split's exact rows can still confirm them
          (:func:`~nnlab.symbolic.exact_parts.complete_splits`)."""
        X, y, sym = node.X, node.y, node.symbols[0]
        floor = node.sigma / (rms(y) or 1.0)
        s = fixed_sign(y)
        functions = [self._function_tasks(node, t) for t in LEAF1_TRANSFORMS if t[4](y, s)]

        def options(found: list[sympy.Expr], cost: int, label: str) -> list[tuple[float, int, sympy.Expr, str]]:
            errs = [(formula_error(e, [sym], X, y), e) for e in found]
            return [(err, cost + len(e.atoms(sympy.Float)), e, label) for err, e in errs if math.isfinite(err)]
        closed = [(f"{name}-scored", lambda fit=fit: options(fit(), 3, "dictionary"))
                  for name, fit in dictionary_tasks(X, y, [sym], tol=3 * floor + 1e-9, max_terms=3)]
        trig = value_name("leaf1-trig", X, y, tol=3 * floor + 1e-9)
        closed.append((trig, lambda: options(fit_trig_rational(X, y, [sym], tol=3 * floor + 1e-9,
                                                                deadline=self.deadline)[:2], 4, "rational")))
        spread = rms(y - y.mean()) / (rms(y) or 1.0)  # (a constant is this far off: never loose enough)
        loose = dictionary_tasks(X, y, [sym], tol=min(max(30 * floor, 1e-2), 0.2 * spread), max_terms=2)
        return functions, closed, loose

    def _function_tasks(self, node: _Node, transform: tuple, refine_top: int = 6) -> list[Task]:
        """Every library function fitted to ``T(y)`` (``transform``, one of :data:`LEAF1_TRANSFORMS`) as
        :func:`~nnlab.symbolic.matching.suggest` fits them: a task per function it refits (the coarse
        rank ``r < refine_top``), then one for the others; they share the coarse ranking (made once,
        by the first task that needs it)."""
        tname, T, _, inv, _ = transform
        x, y, sym = node.X[:, 0], node.y, node.symbols[0]
        s = fixed_sign(y)

        def name(kind: str, **args: Any) -> str:
            return value_name(kind, node.X, y, transform=tname, refine_top=refine_top, **args)
        ranked = (name("leaf1-ranking"), lambda: coarse_fits(x, T(y), self.lib))
        ranking = functools.cache(lambda: share(self.exchange, [ranked])[0])

        def option(fname: str, fit: Any) -> tuple[float, int, sympy.Expr, str] | None:
            if fname in ("abs", "sgn") or not math.isfinite(fit.r2):
                return None
            fit = canonical(fname, fit)
            pred = _affine_expr(fname, fit, sym, self.lib)
            try:
                err = relative_rmse(inv(evaluate(pred, [sym], node.X), s), y)
            except (ValueError, TypeError, ArithmeticError):
                return None
            cost = self.lib[fname].complexity + (0 if tname == "y" else 2)
            return (err, cost, inv(pred, s), f"{fname} on {tname}") if math.isfinite(err) else None

        def fits(ranks: list[int], refine: bool) -> list[tuple[int, str, Any, Any]]:
            coarse = ranking()
            out = []
            for r in ranks:
                n, fit = coarse[r]
                fit = canonical(n, refined_fit(x, T(y), n, self.lib) if refine else fit)
                out.append((r, n, fit, option(n, fit)))
            return out

        def refine(r: int) -> list[tuple[int, str, Any, Any]]:
            return fits([r], True) if r in to_refine(ranking(), refine_top) else []

        def rest() -> list[tuple[int, str, Any, Any]]:
            todo = set(to_refine(ranking(), refine_top))
            return fits([r for r in range(len(ranking())) if r not in todo], False)
        return [(name("leaf1-refined", rank=r), functools.partial(refine, r)) for r in range(refine_top)] + \
            [(name("leaf1-unrefined"), rest)]


def _rational(X: np.ndarray, y: np.ndarray, symbols: list[sympy.Symbol], tol: float,
              deadline: float, degree: int | None = None) -> sympy.Expr | None:
    try:
        degree = degree if degree is not None else 3 if X.shape[1] <= 3 else 2
        return fit_rational(X, y, symbols, max_degree=degree, tol=tol,
                            deadline=None if math.isinf(deadline) else deadline, polynomial=True)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, sympy.PolynomialError):
        return None


def _affine_expr(fname: str, fit: Any, sym: sympy.Symbol, lib: Library) -> sympy.Expr:
    F = sympy.Float
    return F(fit.c) * lib[fname].sympy_fn(F(fit.a) * sym + F(fit.b)) + F(fit.d)


def _inv_sq(e: sympy.Expr, s: int) -> sympy.Expr:
    return (1 if s >= 0 else -1) * sympy.sqrt(e)


# name, T, T', T⁻¹ (given the sign of y), applicable(y, sign)
TARGET_TRANSFORMS: tuple = (
    ("1/y", lambda v: 1 / v, lambda v: 1 / v ** 2, lambda e, s: 1 / e, lambda v, s: s != 0),
    ("y^2", lambda v: v ** 2, lambda v: 2 * v, _inv_sq, lambda v, s: s != 0),
    ("sin(y)", np.sin, np.cos, lambda e, s: sympy.asin(e), lambda v, s: bool(np.all(np.abs(v) < 1.5))),
)

#: the targets a one-variable leaf fits every library function to: y itself, then 1/y and y²
LEAF1_TRANSFORMS: tuple = (("y", lambda v: v, None, lambda e, s: e, lambda v, s: True),) + TARGET_TRANSFORMS[:2]
