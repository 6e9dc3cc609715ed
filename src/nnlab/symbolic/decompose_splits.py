"""The structure tests of the decomposition (:mod:`~nnlab.symbolic.decompose`) and the parts they build.

Each test asks the node's oracle ``f̂`` one question (:mod:`~nnlab.symbolic.separability`) and, when it
passes, returns ``(kind, detail, build)``: ``build(depth)`` solves the parts and composes them.

- **irrelevant** variables (dropped), **one index** ``f = g(Π|x_k|^{β_k})``, **symmetry** (a pair
  enters through ``x_i ∘ x_j``): one new variable;
- **additive** / **multiplicative** modules, each part ``f̂`` with the rest at a reference row;
- **linear** in ``x_k``: ``f = a(R) + b(R)·x_k``;
- **homogeneity** of degree ``p`` in a group: ``f = x_k^p·g(x_G/x_k, x_R)``;
- the module tests again on ``T(y)`` (``y²``, ``1/y``, ``sin y``).

A split of a node with exact rows enters the composition through ``exact_split`` (the rows may later
name its last part: :mod:`~nnlab.symbolic.exact_parts`).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy

from .decompose_leaf import TARGET_TRANSFORMS, rms as _rms
from .separability import (SYMMETRIES, homogeneity_z, index_direction, index_residual, linear_z, modules,
                           relevance_z, symmetry_z)
from .transforms import fixed_sign

__all__ = ["SplitTests"]

Oracle = Callable[[np.ndarray], np.ndarray]
_SYM_EXPR = {"minus": lambda a, b: a - b, "plus": lambda a, b: a + b, "times": lambda a, b: a * b,
             "divide": lambda a, b: a / b}


@dataclass
class _Node:
    symbols: list[sympy.Symbol]
    X: np.ndarray  # (N, m) rows of this sub-problem
    y: np.ndarray  # (N,) its targets: the law's values (exact) or the oracle's
    f: Oracle
    sigma: float  # absolute error of f (and of y when not exact)
    exact: bool
    transformed: bool = False
    derived: bool = False  # f is the root's surrogate seen through a change of variables


def _embed(part: np.ndarray, cols: list[int], ref: np.ndarray) -> np.ndarray:
    out = np.repeat(ref[None, :], len(part), axis=0)
    out[:, cols] = part
    return out


class SplitTests:
    """The structure tests of :class:`~nnlab.symbolic.decompose._Decomposer` (which provides ``rng``,
    ``z_max``, ``count``, ``subs``, ``late()``, ``passes()``, ``solve()`` and ``exact_split()``)."""

    def relevance(self, node: _Node):
        m = node.X.shape[1]
        zs = [relevance_z(node.f, node.X, k, node.sigma, self.rng) for k in range(m)]
        drop = [k for k in range(m) if zs[k] <= self.z_max]
        if not drop or len(drop) == m:
            return None
        keep = [k for k in range(m) if k not in drop]
        ref = np.median(node.X, axis=0)
        child = _Node([node.symbols[k] for k in keep], node.X[:, keep], node.y,
                      lambda Z: node.f(_embed(Z, keep, ref)), node.sigma, node.exact, node.transformed, True)

        def build(depth):
            e, t = self.solve(child, depth + 1)
            return e, [t]
        return "irrelevant", {"test": "relevance", "dropped": [str(node.symbols[k]) for k in drop],
                              "z": [zs[k] for k in drop], "z_max": self.z_max}, build

    def index(self, node: _Node):
        """The part is one function of one monomial of all its variables (fixed-sign columns)."""
        beta = index_direction(node.f, node.X, self.rng)
        if beta is None:
            return None
        signs = np.sign(node.X[0])
        t = np.prod((node.X * signs) ** beta, axis=1)
        z = index_residual(t, node.y, self.rng) / node.sigma
        power = _rms(node.y - node.y.mean()) / node.sigma
        if not self.passes(z, power):
            return None
        expr = sympy.Mul(*[(int(sg) * v) ** sympy.Integer(int(b)) for sg, v, b in zip(signs, node.symbols, beta)])
        return "index", {"test": "one index", "index": str(expr), "z": z, "z_power": power,
                         "z_max": self.z_max}, self._index_build(node, beta, signs, t, expr)

    def _index_build(self, node: _Node, beta: np.ndarray, signs: np.ndarray, t: np.ndarray, expr: sympy.Expr):
        self.count += 1
        usym = sympy.Symbol(f"_u{self.count}")
        self.subs.append((usym, expr))
        A = np.log(node.X * signs)
        k = int(np.argmax((A.max(axis=0) - A.min(axis=0)) * (beta != 0)))  # the widest column sets t
        mid = np.median(A, axis=0)

        def f_child(Z: np.ndarray) -> np.ndarray:
            L = np.repeat(mid[None, :], len(Z), axis=0)
            with np.errstate(all="ignore"):
                L[:, k] = (np.log(Z[:, 0]) - (mid @ beta - mid[k] * beta[k])) / beta[k]
            return node.f(np.exp(L) * signs)

        child = _Node([usym], t[:, None], node.y, f_child, node.sigma, node.exact, node.transformed, True)

        def build(depth):
            e, tr = self.solve(child, depth + 1)
            return e, [tr]
        return build

    def symmetry(self, node: _Node):
        m = node.X.shape[1]
        lo, hi = node.X.min(axis=0), node.X.max(axis=0)
        passed = []  # every pair and kind is tested; the clearest pass (smallest z / z_power) wins
        for i in range(m):
            for j in range(m):
                if i == j:
                    continue
                for kind in SYMMETRIES:
                    if kind in ("minus", "plus", "times") and j < i:
                        continue  # symmetric in (i, j) up to the sign of u
                    z, power = symmetry_z(node.f, node.X, i, j, kind, node.sigma, self.rng)
                    if self.passes(z, power):
                        passed.append((z / power, z, power, i, j, kind))
        if not passed:
            return None
        _, z, power, i, j, kind = min(passed)
        return "symmetry", {"test": f"x_i {kind} x_j", "pair": [str(node.symbols[i]), str(node.symbols[j])],
                            "z": z, "z_power": power, "z_max": self.z_max, "passed": len(passed)}, \
            self._sym_build(node, i, j, kind, lo, hi)

    def _sym_build(self, node: _Node, i: int, j: int, kind: str, lo: np.ndarray, hi: np.ndarray):
        xi, xj = node.X[:, i], node.X[:, j]
        u = {"minus": xi - xj, "plus": xi + xj, "times": xi * xj, "divide": xi / xj}[kind]
        rest = [k for k in range(node.X.shape[1]) if k not in (i, j)]
        self.count += 1
        usym = sympy.Symbol(f"_u{self.count}")
        self.subs.append((usym, _SYM_EXPR[kind](node.symbols[i], node.symbols[j])))
        mid = np.median(node.X, axis=0)

        def f_child(Z: np.ndarray) -> np.ndarray:
            uu = Z[:, -1]
            with np.errstate(all="ignore"):
                if kind == "minus":
                    a, b = lo[i] - uu, hi[i] - uu
                elif kind == "plus":
                    a, b = uu - hi[i], uu - lo[i]
                elif kind == "times":
                    a, b = uu / hi[i], uu / lo[i]
                else:
                    a, b = lo[i] / uu, hi[i] / uu
                a, b = np.maximum(a, lo[j]), np.minimum(b, hi[j])
                vj = np.clip(mid[j], a, np.maximum(a, b))
                vi = {"minus": uu + vj, "plus": uu - vj, "times": uu / np.where(vj == 0, 1, vj),
                      "divide": uu * vj}[kind]
            P = np.repeat(mid[None, :], len(Z), axis=0)
            P[:, rest] = Z[:, :-1]
            P[:, i], P[:, j] = vi, vj
            return node.f(P)

        child = _Node([node.symbols[k] for k in rest] + [usym], np.column_stack([node.X[:, rest], u]), node.y,
                      f_child, node.sigma, node.exact, node.transformed, True)

        def build(depth):
            e, t = self.solve(child, depth + 1)
            return e, [t]  # u stays a symbol until resolve()
        return build

    def separable(self, node: _Node, f: Oracle, sigma: float):
        for kind in ("additive", "multiplicative"):
            mods, zs = modules(f, node.X, sigma, kind, self.rng, self.z_max)
            if len(mods) >= 2:
                detail = {"test": kind, "modules": [[str(node.symbols[k]) for k in mod] for mod in mods],
                          "pair_z_max": max((z for *_, z in zs), default=0.0), "z_max": self.z_max}
                return kind, detail, self._sep_build(node, f, sigma, kind, mods)
        return None

    def _sep_build(self, node: _Node, f: Oracle, sigma: float, kind: str, mods: list[list[int]]):
        fX = f(node.X)
        if kind == "additive":
            ref = node.X[int(np.argmin(np.abs(fX - np.median(fX))))]
        else:  # the reference row keeps every factor far from zero
            ref = node.X[int(np.argmin(np.abs(np.abs(fX) - np.quantile(np.abs(fX), 0.75))))]
        f_ref = float(f(ref[None, :])[0])

        def build(depth):
            exprs, trees, kids = [], [], []
            for mod in mods:
                fm = (lambda Z, mod=mod: f(_embed(Z, mod, ref)))
                Xm = node.X[:, mod]
                child = _Node([node.symbols[k] for k in mod], Xm, fm(Xm), fm, sigma, False, node.transformed)
                e, t = self.solve(child, depth + 1)
                exprs.append(e)
                trees.append(t)
                kids.append(child)
            K = len(mods)
            if kind == "additive":
                comp = sympy.Add(*exprs) - (K - 1) * sympy.Float(f_ref)
            else:
                comp = sympy.Mul(*exprs) / sympy.Float(f_ref) ** (K - 1)
            exact = f is node.f  # the node's own function (not a transform of it) splits
            return (self.exact_split(node, kind, exprs, comp, kids) if exact else comp), trees
        return build

    def linear(self, node: _Node):
        """Linear in the variable whose test passes most clearly (smallest z / z_power): with a
        rough oracle ``(w − u/c²)/√(1 − u²/c²)`` passes "linear in u" at z 3 of 4, and in w at 0.1."""
        passed = []
        for k in range(node.X.shape[1]):
            z, power = linear_z(node.f, node.X, k, node.sigma, self.rng)
            if self.passes(z, power):
                passed.append((z / power, z, power, k))
        if not passed:
            return None
        _, z, power, k = min(passed)
        return "linear", {"test": "linear", "variable": str(node.symbols[k]), "z": z, "z_power": power,
                          "z_max": self.z_max, "passed": len(passed)}, self._lin_build(node, k)

    def _lin_build(self, node: _Node, k: int):
        lo, hi = float(node.X[:, k].min()), float(node.X[:, k].max())
        t1, t2 = lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo)
        rest = [c for c in range(node.X.shape[1]) if c != k]
        mid = np.median(node.X, axis=0)

        def at(Z: np.ndarray, t: float) -> np.ndarray:
            P = np.repeat(mid[None, :], len(Z), axis=0)
            P[:, rest] = Z
            P[:, k] = t
            return node.f(P)

        fb = (lambda Z: (at(Z, t2) - at(Z, t1)) / (t2 - t1))
        fa = (lambda Z: at(Z, t1) - t1 * fb(Z))  # the intercept a(R) = f(0, R), by the linearity
        XR = node.X[:, rest]
        syms = [node.symbols[c] for c in rest]
        sb = math.sqrt(2) * node.sigma / (t2 - t1)
        a = _Node(syms, XR, fa(XR), fa, math.hypot(node.sigma, abs(t1) * sb), False, node.transformed)
        b = _Node(syms, XR, fb(XR), fb, sb, False, node.transformed)

        def build(depth):
            ea, ta = self.solve(a, depth + 1)
            eb, tb = self.solve(b, depth + 1)
            xk = node.symbols[k]
            return self.exact_split(node, "linear", [ea, eb], ea + eb * xk, [a, b], factor=xk), [ta, tb]
        return build

    def homogeneous(self, node: _Node):
        """``f(λx_G, x_R) = λ^p f`` → ``f = x_k^p·g(x_G/x_k, x_R)`` with a positive pivot ``x_k ∈ G``."""
        m = node.X.shape[1]
        cols = range(m)
        groups = [list(g) for r in range(2, m + 1) for g in itertools.combinations(cols, r)] if m <= 6 \
            else [list(g) for g in itertools.combinations(cols, 2)] + [list(cols)]
        passed = []
        for g in groups:
            if not any(node.X[:, c].min() > 0 for c in g) or self.late():
                continue
            z, power, p = homogeneity_z(node.f, node.X, g, node.sigma, self.rng)
            if self.passes(z, power):
                passed.append((z / power, len(g), z, power, p, g))
        if not passed:
            return None
        _, _, z, power, p, g = min(passed)
        pos = [c for c in g if node.X[:, c].min() > 0]
        k = max(pos, key=lambda c: node.X[:, c].max() / node.X[:, c].min())  # widest positive column
        return "homogeneous", {"test": f"degree {p:g} in a group", "group": [str(node.symbols[c]) for c in g],
                               "pivot": str(node.symbols[k]), "z": z, "z_power": power, "z_max": self.z_max,
                               "passed": len(passed)}, self._hom_build(node, g, k, p)

    def _hom_build(self, node: _Node, g: list[int], k: int, p: float):
        X = node.X
        lo, hi = X.min(axis=0), X.max(axis=0)
        others = [c for c in g if c != k]
        rest = [c for c in range(X.shape[1]) if c not in g]
        usyms = []
        for c in others:
            self.count += 1
            usyms.append(sympy.Symbol(f"_u{self.count}"))
            self.subs.append((usyms[-1], node.symbols[c] / node.symbols[k]))
        xk = X[:, k]
        W = X[:, others] / xk[:, None]
        mid = np.median(X, axis=0)

        def f_child(Z: np.ndarray) -> np.ndarray:
            w = Z[:, len(rest):]
            a = np.full(len(Z), np.log(lo[k]))
            b = np.full(len(Z), np.log(hi[k]))
            with np.errstate(all="ignore"):
                for col, c in enumerate(others):
                    wc = w[:, col]
                    l1, l2 = lo[c] / wc, hi[c] / wc
                    lmin = np.where(wc > 0, l1, np.where(wc < 0, l2, 0.0))
                    lmax = np.where(wc > 0, l2, np.where(wc < 0, l1, np.inf))
                    a = np.maximum(a, np.log(np.maximum(lmin, 1e-300)))
                    b = np.minimum(b, np.log(lmax))
            t = np.where(b >= a, (a + b) / 2, np.clip((a + b) / 2, np.log(lo[k]), np.log(hi[k])))
            v = np.exp(t)
            P = np.repeat(mid[None, :], len(Z), axis=0)
            P[:, rest] = Z[:, :len(rest)]
            P[:, k] = v
            P[:, others] = w * v[:, None]
            return node.f(P) / v ** p

        scale = xk ** -p
        child = _Node([node.symbols[c] for c in rest] + usyms, np.column_stack([X[:, rest], W]), node.y * scale,
                      f_child, node.sigma * float(np.sqrt(np.mean(scale ** 2))), node.exact, node.transformed, True)
        power = sympy.Rational(int(round(2 * p)), 2)

        def build(depth):
            e, t = self.solve(child, depth + 1)
            return node.symbols[k] ** power * e, [t]
        return build

    def transformed(self, node: _Node):
        if node.transformed:
            return None
        y = node.f(node.X)
        s = fixed_sign(y)
        for name, T, dT, inv, ok in TARGET_TRANSFORMS:
            if not ok(y, s):
                continue
            sigma = _rms(dT(y)) * node.sigma
            Ty = T(y)
            if not sigma <= 0.02 * _rms(Ty - Ty.mean()):  # T amplifies the oracle's error (1/y near a zero)
                continue
            fT = (lambda Z, T=T: T(node.f(Z)))
            split = self.separable(node, fT, sigma)
            if split is None:
                continue
            child = _Node(node.symbols, node.X, T(node.y), fT, sigma, node.exact, True)

            def build(depth, child=child, inv=inv, s=s):
                e, t = self.solve(child, depth + 1)
                return inv(e, s), [t]
            return "transform", {"test": f"modules of {name}", "inner": split[0], "z_max": self.z_max}, build
        return None
