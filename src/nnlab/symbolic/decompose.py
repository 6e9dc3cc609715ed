"""Decomposition with a fitted model as oracle (AI Feynman; KAN 2.0's modularity), lecture §6.3.

A smooth surrogate ``f̂`` is fitted once (:mod:`~nnlab.symbolic.surrogate`); its held-out error
``σ`` sets the tolerance of every structure test (:mod:`~nnlab.symbolic.separability`). A
problem (variables, rows, oracle) is then split recursively, cheap tests first:

1. **constant** part, **irrelevant** variables (dropped);
2. **one index**: ``f = g(Π|x_k|^{β_k})`` over all the part's variables (parallel gradients, then
   the rows checked as one smooth function of it) → one new variable;
   **symmetry**: ``f`` depends on ``x_i, x_j`` only through ``x_i − x_j``, ``x_i + x_j``,
   ``x_i·x_j`` or ``x_i/x_j`` → one new variable ``u``; the rows keep the *original* targets;
3. **additive** modules ``f = Σ g_k(A_k)`` and **multiplicative** modules ``f = Π g_k(A_k)``
   (sign-safe product identity): each ``g_k(A_k) = f̂(A_k, r)`` with the rest fixed at a
   reference row ``r``; ``f = Σ g_k − (K−1)·f̂(r)``, resp. ``Π g_k / f̂(r)^{K−1}``;
4. **linear** in ``x_k``: ``f = a(R) + b(R)·x_k``, ``b = (f̂(t₂, R) − f̂(t₁, R))/(t₂ − t₁)``,
   ``a = f̂(t₁, R) − t₁·b`` (the intercept, so the parts share no constant);
5. the same module tests on a transformed target ``T(y)`` (``y²``, ``1/y``, ``sin y``), composed
   back with ``T⁻¹``;
6. otherwise a **leaf** (:mod:`~nnlab.symbolic.decompose_leaf`): sparse rationals, sparse sums of
   atom products (in ``y``, ``y²``, ``1/y``, ``1/y²``: the law of cosines is three terms in ``y²``)
   and rationals in cos/sin features, else the existing candidate search (one variable: every
   library function ``c·f(a·x + b) + d``, also on ``1/y`` and ``y²``).

The tests and the parts they build are :mod:`~nnlab.symbolic.decompose_splits`; this module holds
the recursion (:class:`_Decomposer`), the result (:class:`Decomposition`) and the entry point. A part
whose rows are still the law's exact values (after a symmetry, a homogeneity or a dropped variable)
but whose derived oracle shows no structure gets a surrogate of its own rows and a second look
(:meth:`_Decomposer.refit`); a split of such a part may have its last part named by the rows
(:mod:`~nnlab.symbolic.exact_parts`).

The parts compose into one sympy formula in the user's variables; all its constants are refit on
the *original* rows (least squares), snapped once, and the result is judged like every other
candidate. The tree of decisions (split, test, z-score, tolerance) is kept for the report.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import sympy

from .compose import choose_parts, finish
from .decompose_leaf import LeafFits, rms as _rms
from .decompose_splits import SplitTests, _Node
from .exact_parts import SplitPart, SplitRecord, complete_splits, expand, resolve_variables
from .exchange import Task
from .library import LIBRARY, Library
from .noise import noise_level, oracle_sigma
from .power_factor import find_power_factors, power_factor_tasks, shaping_order
from .surrogate import best_surrogate, fit_surrogate, looks_noisy
from .transforms import fixed_sign

__all__ = ["Decomposition", "decompose", "choose_parts", "finish"]


@dataclass
class Decomposition:
    """``expr``: the law (refit on the original rows and snapped, when ``decompose(refit=True)``)
    or None when nothing splits; ``raw``: the composed parts before that refit; ``tree``: the
    decisions, a JSON-able dict; ``surrogate_error``: the oracle's relative error ``σ / RMS(y)``;
    ``template`` and ``parts``: the composition with a symbol per leaf, and each leaf's fits."""

    expr: sympy.Expr | None
    raw: sympy.Expr | None
    tree: dict[str, Any]
    surrogate_error: float
    template: sympy.Expr | None = None  # the composition with one symbol _L{k} per leaf
    parts: dict[sympy.Symbol, list[sympy.Expr]] | None = None  # each leaf's fits, best first
    oracle_seconds: float = 0.0  # a poor oracle's extra work, added to the deadline of the tests and the finish
    splits: dict[sympy.Symbol, SplitRecord] = field(default_factory=dict)  # template's _N{k}: splits with exact rows
    subs: list[tuple[sympy.Symbol, sympy.Expr]] = field(default_factory=list)  # the new variables _u{k}
    noisy: bool = False  # the surrogate's error is the data's noise (surrogate.looks_noisy): no row is exact

    def completed(self, X: np.ndarray, variables: list[sympy.Symbol], deadline: float | None = None,
                  exchange: Any = None) -> tuple[sympy.Expr, dict[sympy.Symbol, list[sympy.Expr]]]:
        """The composition with every split that its exact rows complete (:mod:`~nnlab.symbolic.exact_parts`)
        replaced by that law, and the fits of the leaves still in it; notes the completed splits in the tree.
        ``exchange``: the shards that join at once split the fits (the same result)."""
        if self.noisy:  # noisy rows are no law's exact values: nothing to complete
            deadline = time.monotonic() - 1.0
        template, done = complete_splits(self.template, self.parts, self.splits, self.subs, X, variables, deadline,
                                         exchange=exchange)
        if done:
            self.tree["completed by exact rows"] = [str(e) for e in done.values()]
        return template, {L: a for L, a in self.parts.items() if L in template.free_symbols}


class _Decomposer(LeafFits, SplitTests):
    def __init__(self, lib: Library, deadline: float, z_max: float, seed: int, max_depth: int = 8,
                 shard: tuple[int, int] | None = None) -> None:
        self.lib, self.deadline, self.z_max, self.max_depth = lib, deadline, z_max, max_depth
        self.shard = shard  # (j, K): fit only the leaves k with k mod K = j, the others are deferred
        self.claim: Any = None  # with a shared exchange: name -> whether this shard claimed it first (else None)
        self.exchange: Any = None  # a shard's exchange: the tasks of a leaf are split with the other shards
        self.deferred: list[list[Task]] = []  # the tasks of each leaf another shard fits (see help_deferred)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.count = 0
        self.leaves: dict[sympy.Symbol, list[sympy.Expr]] = {}  # placeholder -> alternative fits, best first
        self.subs: list[tuple[sympy.Symbol, sympy.Expr]] = []  # new variables u, in order of creation
        self.splits: dict[sympy.Symbol, SplitRecord] = {}  # splits of nodes with exact rows (exact_parts)

    def defer(self, info: dict[str, Any], tasks: Sequence[Task] = ()) -> tuple[sympy.Expr, dict[str, Any]] | None:
        """A leaf another shard fits: its placeholder (no fits yet) and a deferred tree node; its
        ``tasks`` are kept for :meth:`help_deferred`."""
        k = len(self.leaves)
        first = None if self.claim is None else self.claim(f"leaf{k}")  # the first shard to reach it fits it
        if self.shard is None or (k % self.shard[1] == self.shard[0] if first is None else first):
            return None
        self.deferred.append(list(tasks))
        return self.placeholder(None), {**info, "split": "leaf", "deferred": k}

    def help_deferred(self) -> None:
        """A shard at the end of its own leaves computes, last first, the tasks of the leaves other
        shards are still fitting that nobody has claimed (:meth:`~nnlab.symbolic.exchange.Exchange.help`);
        their owners take them. Nothing without a shared exchange."""
        if self.exchange is not None:
            for tasks in self.deferred:
                self.exchange.help(tasks)

    def placeholder(self, alternatives: list[sympy.Expr] | None) -> sympy.Symbol:
        """A leaf's formula enters the composition as a symbol ``_L{k}``; its alternatives are
        weighed later on the original rows (:func:`choose_parts`)."""
        sym = sympy.Symbol(f"_L{len(self.leaves)}")
        self.leaves[sym] = alternatives
        return sym

    def resolve(self, expr: sympy.Expr) -> sympy.Expr:
        """Write ``expr`` in the original variables (later u's are defined through earlier ones)."""
        return resolve_variables(expr, self.subs)

    def late(self) -> bool:
        return time.monotonic() > self.deadline

    def exact_split(self, node: _Node, kind: str, exprs: list[sympy.Expr], composition: sympy.Expr,
                    children: list[_Node], factor: sympy.Expr | None = None) -> sympy.Expr:
        """A split of a node with exact rows enters the composition as a symbol ``_N{k}``: once its
        parts are fitted, the rows may give the last part exactly (:mod:`~nnlab.symbolic.exact_parts`)."""
        if not node.exact:
            return composition
        N = sympy.Symbol(f"_N{len(self.splits)}")
        self.splits[N] = SplitRecord(kind, node.y, [SplitPart(e, c.symbols, c.X, c.y, c.sigma / (_rms(c.y) or 1.0))
                                                    for e, c in zip(exprs, children)], composition, factor)
        return N

    # -------------------------------------------------------------- the recursion
    def solve(self, node: _Node, depth: int = 0) -> tuple[sympy.Expr, dict[str, Any]]:
        m = node.X.shape[1]
        names = [str(s) for s in node.symbols]
        info: dict[str, Any] = {"variables": names, "sigma": node.sigma, "exact_rows": node.exact}
        y = node.y
        spread = _rms(y - y.mean())
        if spread <= 3 * node.sigma or spread <= 1e-12 * (_rms(y) or 1.0):
            return sympy.Float(float(np.mean(node.f(node.X)))), {**info, "split": "constant"}
        if m == 1 or depth >= self.max_depth or self.late():
            return self.leaf(node, info)
        if node.exact and depth > 0 and m <= 4:  # a part named exactly by its own rows is not split
            found = self.exact_leaf(node, info)
            if found is not None:
                return found
        split = self.first_split(node)
        if split is None and node.exact and node.derived:
            node = self.refit(node)
            split = None if node.derived else self.first_split(node)
            info["oracle"] = "refit on the node's rows" if not node.derived else "derived"
        if split is None:
            return self.leaf(node, info)
        kind, detail, build = split
        expr, children = build(depth)
        return expr, {**info, "split": kind, **detail, "children": children}

    def refit(self, node: _Node) -> _Node:
        """The node with a surrogate of its own exact rows, when the derived oracle showed no structure.

        A derived oracle evaluates the root's surrogate through a change of variables (``x_i/x_j``,
        ``x_G/x_k``), so its points can leave the root's box where the surrogate extrapolates. A
        surrogate of the node's rows has fewer inputs and its own box (AI Feynman trains a new
        network after every transformation); it is used when it is at most twice as far off.
        Returns the node unchanged otherwise."""
        if self.late() or node.X.shape[1] < 2 or len(node.y) < 40:
            return node
        sur = fit_surrogate(node.X, node.y, seed=self.seed, steps=1500,
                            deadline=None if math.isinf(self.deadline) else self.deadline)
        sigma = oracle_sigma(sur.sigma, noise_level(node.X, node.y))  # the rows are the (noisy) data's
        if not sigma <= 2 * node.sigma:
            return node
        return _Node(node.symbols, node.X, node.y, sur, sigma, True, node.transformed, False)

    def passes(self, z: float, power: float) -> bool:
        """A structure holds when its residual is within the oracle's error (``z ≤ z_max``) and the
        move it was tested with changes ``f̂`` clearly, by at least ``3·z_max`` and ten times the
        residual: a move that barely shows cannot tell a structure from its absence."""
        return z <= self.z_max and power >= max(3 * self.z_max, 10 * z)

    def first_split(self, node: _Node):
        """The first structure that holds, cheap and certain tests first."""
        return self.relevance(node) or self.index(node) or self.symmetry(node) \
            or self.separable(node, node.f, node.sigma) \
            or self._clearest(self.linear(node), self.homogeneous(node)) or self.transformed(node)

    @staticmethod
    def _clearest(*splits):
        """Of the splits that passed, the one whose test passed most clearly (smallest z / z_power):
        with a rough oracle a law of cosines can pass the linear test in ``x₁`` (z 3.4 of 4) where
        its homogeneity in ``(x₁, x₂)`` passes at z 0.5."""
        passed = [s for s in splits if s is not None]
        return min(passed, key=lambda s: s[1]["z"] / max(s[1]["z_power"], 1e-300)) if passed else None


def decompose(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol | str], lib: Library | None = None, *,
              refit: bool = True, snap_tol: float = 1e-6, deadline: float | None = None, z_max: float = 4.0,
              max_surrogate_error: float = 0.05, seed: int = 0,
              shard: tuple[int, int] | None = None, exchange: Any = None) -> Decomposition:
    """Fit the surrogate and split (X (N, n), y (N,)) recursively; see the module docstring.

    Args:
        X, y: the data; variables: names (or symbols) of the columns of X.
        lib: library of the leaves (default :data:`~nnlab.symbolic.library.LIBRARY`).
        refit: refit every constant of the composed law on (X, y) and snap once (:func:`finish`).
        deadline: ``time.monotonic()`` value after which parts become leaves (default: none).
        z_max: largest z-score (residual / the noise the surrogate's error explains) of a test
            that still counts as passed.
        max_surrogate_error: above this relative error of the surrogate nothing is decided.
        shard: ``(j, K)``: fit only the leaves ``k`` with ``k mod K = j`` (the others keep ``None``
            fits in ``parts``; needs ``refit=False``); :func:`merge_shards` joins the K results.
        exchange: parallel searches: where the decomposition's other job (or a helper job) shares the
            surrogate fits, each made once (:mod:`~nnlab.symbolic.exchange`); the same result without it.

    Returns a :class:`Decomposition`; ``expr`` is None when the top level has no split (the
    plain candidate search then covers the problem as a whole)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (N rows, n variables), got shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match")
    if len(variables) != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} columns but {len(variables)} variables were given")
    variables = [sympy.Symbol(v) if isinstance(v, str) else v for v in variables]
    if shard is not None and refit:
        raise ValueError("a shard of the decomposition cannot refit: merge the shards first (refit=False)")
    deadline = math.inf if deadline is None else deadline
    # the oracle is trained in full whatever the clock says: a half-trained one would make every test wrong
    start = time.monotonic()
    noise = noise_level(X, y)
    ahead = None if exchange is None else _PowerFactorsAhead(X, y, seed)
    sur = best_surrogate(X, y, seed, exchange, noise, then=ahead)
    if exchange is not None:
        exchange.decline()  # no more fits needed: a helper still fitting stops
    dec = _Decomposer(LIBRARY if lib is None else lib, deadline, z_max, seed, shard=shard)
    if shard is not None and exchange is not None:
        dec.claim, dec.exchange = exchange.first, exchange
    peel, extra = None, 0.0
    if sur.error > 1e-2 and not looks_noisy(noise, sur):  # a poor oracle (not the noise's) took other tries,
        # and its power factors are read from the rows:
        peel = _power_factors(dec, X, y, variables, sur, seed, exchange)  # the budget of the tests counts from here
        extra = time.monotonic() - start
        dec.deadline = deadline + extra
    if ahead is not None:
        exchange.drop(ahead.names)  # the power factors' fits are all asked for now: none made ahead any more
    if peel is None and sur.error > max_surrogate_error:  # the tests would judge noise: no decision is better
        return Decomposition(None, None, {"split": "none", "variables": [str(v) for v in variables],
                                          "sigma": sur.sigma, "note": f"surrogate error {sur.error:.1e} is "
                                          f"above {max_surrogate_error:g}: no test is trusted"}, sur.error,
                             oracle_seconds=extra)
    # under noise the tests are judged against the oracle's own error, not the noise (see noise.py)
    sigma = oracle_sigma(sur.sigma, noise)
    root = _Node(list(variables), X, y, sur, sigma, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = peel or (None if X.shape[1] == 1 else dec.first_split(root))
        if split is None:
            return Decomposition(None, None, {"split": "none", "variables": [str(v) for v in variables],
                                              "sigma": sigma, "noise": _num(noise)}, sur.error,
                                 oracle_seconds=extra)
        kind, detail, build = split
        template, children = build(0)
        dec.help_deferred()
        parts = {L: None if alts is None else [dec.resolve(a) for a in alts] for L, alts in dec.leaves.items()}
        template = dec.resolve(template)  # (a split symbol _N{k} stays: its composition is in dec.splits)
        tree = {"split": kind, "variables": [str(v) for v in variables], "sigma": sigma, "noise": _num(noise),
                **detail, "children": children}
        d = Decomposition(None, None, tree, sur.error, template, parts, extra, dec.splits, dec.subs,
                          looks_noisy(noise, sur))
        if refit:
            full, fits = d.completed(X, variables)
            raw = choose_parts(full, fits, variables, X, y, deadline=None)
            d.expr = finish(raw, variables, X, y, snap_tol)
        else:
            raw = dec.resolve(expand(template, dec.splits))
            raw = raw.xreplace({L: alts[0] for L, alts in parts.items() if alts is not None})
            d.expr = raw
        d.raw = raw
    return d


def _power_factors(dec: _Decomposer, X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], sur: Any,
                   seed: int, exchange: Any = None):
    """``y = Π_{k∉R} x_k^{p_k}·g(x_R)`` read from the rows when the surrogate is too rough to test
    anything (:func:`~nnlab.symbolic.power_factor.find_power_factors`). The part ``g`` gets the rows
    ``y / Π x^p`` (still the law's exact values) and a surrogate of ``R`` alone; unless the partly
    linear fit was 4 times closer than the root's surrogate, that one must fit them about as well
    (within 1.5 times its error), or they are no function of ``R`` alone. ``exchange``: the fits are
    shared with the other jobs of a parallel search and made ahead of need (:mod:`~nnlab.symbolic.exchange`)."""
    m = X.shape[1]
    cols = _power_factor_columns(X, y)
    if cols is None:
        return None
    order = shaping_order(sur, X, cols, dec.rng)
    found = find_power_factors(X, y, cols, order, sur.error, seed, exchange=exchange)
    if found is None:
        return None
    rest, powers, err = found
    lin = [k for k in range(m) if k not in rest]
    signs = [int(fixed_sign(X[:, k])) for k in lin]
    scale = np.prod([(s * X[:, k]) ** float(q) for s, k, q in zip(signs, lin, powers)], axis=0)
    mono = sympy.Mul(*[(s * variables[k]) ** sympy.Rational(q.numerator, q.denominator)
                       for s, k, q in zip(signs, lin, powers)])
    y_rest = y / scale
    sub = best_surrogate(X[:, rest], y_rest, seed, exchange)
    if err > min(1e-2, 0.25 * sur.error) and not sub.error <= 1.5 * sur.error:
        return None  # y / Π x^p is no function of R alone: a surrogate of R cannot fit it
    sigma = oracle_sigma(sub.sigma, noise_level(X[:, rest], y_rest))
    child = _Node([variables[k] for k in rest], X[:, rest], y_rest, sub, sigma, True)

    def build(depth, child=child, mono=mono):
        e, t = dec.solve(child, depth + 1)
        return mono * e, [t]
    return "power factors", {"test": "partly linear in log|x|", "factors": str(mono), "error": err,
                             "surrogate_error": sur.error, "z_max": dec.z_max}, build


def _power_factor_columns(X: np.ndarray, y: np.ndarray) -> list[int] | None:
    """The fixed-sign columns that may be power factors, or None where the rows cannot name any (fewer
    than 3 variables, a target of both signs, fewer than 2 such columns)."""
    cols = [k for k in range(X.shape[1]) if fixed_sign(X[:, k])]
    return cols if X.shape[1] >= 3 and fixed_sign(y) and len(cols) >= 2 else None


class _PowerFactorsAhead:
    """The power factors' first fits, made ahead of need (``best_surrogate``'s ``then``): while one job
    makes the root's last surrogate try, the other makes the fits :func:`_power_factors` will ask for
    if that try is no better than the best so far (their order read from that one, with the draws of
    the decomposer's generator, which :func:`_power_factors` uses first). ``names``: every fit offered,
    dropped once the power factors are decided."""

    def __init__(self, X: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.X, self.y, self.seed = X, y, seed
        self.cols = _power_factor_columns(X, y)
        self.names: set[str] = set()

    def __call__(self, sur: Any) -> list[tuple[str, Any]]:
        X, y, cols = self.X, self.y, self.cols
        if cols is None:
            return []
        order = shaping_order(sur, X, cols, np.random.default_rng(self.seed))
        tasks = power_factor_tasks(X, y, cols, order, self.seed)
        self.names.update(name for name, _ in tasks)
        return tasks


def _num(v: float | None) -> float | None:
    return None if v is None else float(v)
