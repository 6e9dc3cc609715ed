"""Dimensional analysis before the search (issue 11, item 7; AI Feynman's first step).

A unit is an exponent vector over the SI base dimensions ``(m, kg, s, A, K, mol, cd)``:
``N = kg·m·s⁻²`` is ``(1, 1, -2, 0, 0, 0, 0)``. With the dimension matrix ``D`` (dimensions ×
variables, column i = the vector of x_i) and the target's vector ``d_y``:

* every integer vector ``e`` of the null space, ``D·e = 0``, gives a dimensionless group
  ``π = Π x_i^{e_i}`` (Buckingham π theorem: ``n − rank D`` independent groups);
* a particular solution ``p`` of ``D·p = d_y`` gives a monomial ``M(x) = Π x_i^{p_i}`` with the
  target's units, so every law with consistent units reads ``y = M(x) · g(π_1, …, π_k)``.

The search then looks for ``g`` of ``k`` variables instead of ``f`` of ``n`` (no group: ``g`` is a
constant). Pure functions here; :func:`fit_units` is the estimator's hook.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np
import sympy

__all__ = ["BASE", "UNITS", "parse_unit", "unit_vectors", "Groups", "dimensionless_groups", "fit_units"]

BASE = ("m", "kg", "s", "A", "K", "mol", "cd")


def _v(m=0, kg=0, s=0, A=0, K=0, mol=0, cd=0) -> tuple[Fraction, ...]:
    return tuple(Fraction(e) for e in (m, kg, s, A, K, mol, cd))


# named units -> exponent vector over BASE (prefixes change the scale, not the dimension: not accepted)
UNITS: dict[str, tuple[Fraction, ...]] = {
    "m": _v(m=1), "kg": _v(kg=1), "g": _v(kg=1), "s": _v(s=1), "A": _v(A=1), "K": _v(K=1),
    "mol": _v(mol=1), "cd": _v(cd=1),
    "Hz": _v(s=-1), "N": _v(m=1, kg=1, s=-2), "J": _v(m=2, kg=1, s=-2), "eV": _v(m=2, kg=1, s=-2),
    "W": _v(m=2, kg=1, s=-3), "Pa": _v(m=-1, kg=1, s=-2), "C": _v(s=1, A=1), "V": _v(m=2, kg=1, s=-3, A=-1),
    "Ohm": _v(m=2, kg=1, s=-3, A=-2), "ohm": _v(m=2, kg=1, s=-3, A=-2), "Ω": _v(m=2, kg=1, s=-3, A=-2),
    "S": _v(m=-2, kg=-1, s=3, A=2), "F": _v(m=-2, kg=-1, s=4, A=2), "T": _v(kg=1, s=-2, A=-1),
    "Wb": _v(m=2, kg=1, s=-2, A=-1), "H": _v(m=2, kg=1, s=-2, A=-2), "rad": _v(), "sr": _v(),
}

_TOKEN = re.compile(r"\s*(?:(\*\*|\^)|([A-Za-zΩ]+)|(\d+(?:\.\d+)?)|([*/·()\-+]))")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unexpected character {text[pos]!r} at position {pos}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


class _Parser:
    """``expr := term (('*' | '/' | juxtaposition) term)*``, ``term := atom (('^' | '**') exponent)?``,
    ``atom := NAME | '1' | '(' expr ')'``, ``exponent := [+-]number | '(' [+-]number ['/' number] ')'``."""

    def __init__(self, text: str) -> None:
        self.t = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str = "more") -> str:
        if self.i >= len(self.t):
            raise ValueError(f"unexpected end (expected {expected})")
        self.i += 1
        return self.t[self.i - 1]

    def expr(self) -> np.ndarray:
        v = self.term()
        while self.peek() not in (None, ")"):
            if self.peek() == "/":
                self.take()
                v = v - self.term()
            else:
                if self.peek() in ("*", "·"):
                    self.take()
                v = v + self.term()
        return v

    def term(self) -> np.ndarray:
        v = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            v = v * self.exponent()
        return v

    def number(self) -> Fraction:
        sign = 1
        while self.peek() in ("-", "+"):
            sign *= -1 if self.take() == "-" else 1
        tok = self.take("a number")
        if not re.fullmatch(r"\d+(?:\.\d+)?", tok):
            raise ValueError(f"expected a number, got {tok!r}")
        return sign * Fraction(tok)

    def exponent(self) -> Fraction:
        if self.peek() == "(":
            self.take()
            e = self.number()
            if self.peek() == "/":
                self.take()
                d = self.number()
                if d == 0:
                    raise ValueError("exponent divides by zero")
                e = e / d
            if self.take("')'") != ")":
                raise ValueError("missing ')' after the exponent")
            return e
        return self.number()

    def atom(self) -> np.ndarray:
        tok = self.take("a unit")
        if tok == "(":
            v = self.expr()
            if self.take("')'") != ")":
                raise ValueError("missing ')'")
            return v
        if tok == "1":
            return np.array(_v(), dtype=object)
        if tok in UNITS:
            return np.array(UNITS[tok], dtype=object)
        if re.fullmatch(r"[A-Za-zΩ]+", tok):
            raise ValueError(f"unknown unit {tok!r} (known: {', '.join(UNITS)}; prefixes such as km are not "
                             "accepted: they change the scale, not the dimension)")
        raise ValueError(f"unexpected {tok!r}")


def parse_unit(unit: str | Sequence[float]) -> tuple[Fraction, ...]:
    """Exponent vector of ``unit``: a string over :data:`UNITS` such as ``"kg*m^2/s^2"``,
    ``"kg m**2 s**-2"``, ``"m^(1/2)"``, ``"J/(kg*K)"``, ``"1"`` or ``""`` (dimensionless); or a
    sequence of numbers (returned as fractions, any length). Raises ValueError when malformed."""
    if isinstance(unit, str):
        if unit.strip() in ("", "1", "dimensionless"):
            return _v()
        p = _Parser(unit)
        v = p.expr()
        if p.peek() is not None:
            raise ValueError(f"unexpected {p.peek()!r}")
        return tuple(Fraction(e) for e in v)
    try:
        vec = [Fraction(e).limit_denominator(1000) if isinstance(e, float) else Fraction(e) for e in unit]
    except (TypeError, ValueError):
        raise ValueError(f"expected a unit string or a sequence of numbers, got {unit!r}") from None
    if not vec:
        raise ValueError("an exponent vector must not be empty")
    return tuple(vec)


def unit_vectors(units: Mapping[str, Any]) -> dict[str, tuple[Fraction, ...]]:
    """Each name's exponent vector; all of one length (strings count as length ``len(BASE)``).
    One ValueError names the variable and the problem."""
    out: dict[str, tuple[Fraction, ...]] = {}
    for name, u in units.items():
        try:
            out[name] = parse_unit(u)
        except ValueError as err:
            raise ValueError(f"units of {name!r} ({u!r}): {err}") from None
    lengths = {name: len(v) for name, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("units: exponent vectors must all have the same length (a unit string has "
                         f"{len(BASE)}: {', '.join(BASE)}); got lengths " +
                         ", ".join(f"{k}: {n}" for k, n in lengths.items()))
    return out


@dataclass(frozen=True)
class Groups:
    """``exponents``: (k, n) integer matrix, row j the exponents of ``π_j = Π x_i^{e_ji}``;
    ``monomial``: length-n rational exponents ``p`` with ``D·p = d_y`` (``y = Π x_i^{p_i}·g(π)``)."""

    exponents: tuple[tuple[int, ...], ...]
    monomial: tuple[Fraction, ...]

    def symbols(self, variables: Sequence[sympy.Symbol]) -> tuple[list[sympy.Expr], sympy.Expr]:
        """The groups and the monomial as sympy expressions of ``variables``."""
        groups = [sympy.Mul(*[v ** e for v, e in zip(variables, row)]) for row in self.exponents]
        mono = sympy.Mul(*[v ** sympy.Rational(p.numerator, p.denominator) for v, p in zip(variables, self.monomial)])
        return groups, mono

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Π(X) (n_samples, k), M(X) (n_samples,))``."""
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            pis = np.column_stack([np.prod(X ** np.array(row, dtype=np.float64), axis=1) for row in self.exponents]) \
                if self.exponents else np.empty((len(X), 0))
            mono = np.prod(X ** np.array([float(p) for p in self.monomial]), axis=1)
        return pis, mono


def _integer(vec: Sequence[Any]) -> tuple[int, ...]:
    """A rational vector scaled to the smallest integer one (first non-zero entry positive)."""
    fr = [Fraction(int(sympy.fraction(e)[0]), int(sympy.fraction(e)[1])) for e in vec]
    lcm = math.lcm(*[f.denominator for f in fr])
    ints = [int(f * lcm) for f in fr]
    g = math.gcd(*ints) or 1
    ints = [i // g for i in ints]
    first = next((i for i in ints if i), 1)
    return tuple(-i if first < 0 else i for i in ints)


def dimensionless_groups(D: Sequence[Sequence[Any]], d_y: Sequence[Any],
                         names: Sequence[str] | None = None) -> Groups:
    """Integer null-space basis of ``D`` (dims × n; exact rationals, sympy) and a particular
    solution of ``D·p = d_y`` on the fewest variables (then the smallest ``Σ|p_i|``, smallest
    denominators). ValueError when ``d_y`` is not in the column space of ``D``."""
    M = sympy.Matrix([[sympy.Rational(Fraction(e).numerator, Fraction(e).denominator) for e in row] for row in D])
    b = sympy.Matrix([sympy.Rational(Fraction(e).numerator, Fraction(e).denominator) for e in d_y])
    n = M.shape[1]
    basis = tuple(_integer(list(v)) for v in M.nullspace())
    rank = M.rank()
    best = None
    for size in range(0, rank + 1):
        for cols in itertools.combinations(range(n), size):
            sub = M[:, list(cols)] if cols else sympy.zeros(M.shape[0], 0)
            if cols and sub.rank() < size:
                continue
            if not cols:
                sol = [] if all(e == 0 for e in b) else None
            else:
                try:
                    x, params = sub.gauss_jordan_solve(b)
                except ValueError:
                    continue
                sol = list(x) if not params.shape[0] else None
            if sol is None:
                continue
            score = (sum(abs(e) for e in sol), max([sympy.fraction(e)[1] for e in sol] or [1]))
            if best is None or score < best[0]:
                p = [Fraction(0)] * n
                for c, e in zip(cols, sol):
                    p[c] = Fraction(int(sympy.fraction(e)[0]), int(sympy.fraction(e)[1]))
                best = (score, tuple(p))
        if best is not None:
            break
    if best is None:
        dims = BASE if M.shape[0] == len(BASE) else [f"dimension {i}" for i in range(M.shape[0])]
        have = ", ".join(f"{nm}: {_show(col, dims)}" for nm, col in
                         zip(names or [f"x{i}" for i in range(n)], (list(M[:, i]) for i in range(n))))
        raise ValueError(f"the target's units cannot be made from the inputs' units: target {_show(list(b), dims)}; "
                         f"inputs {have}")
    return Groups(basis, best[1])


def _show(vec: Sequence[Any], dims: Sequence[str]) -> str:
    parts = [f"{d}^{e}" if e != 1 else d for d, e in zip(dims, vec) if e != 0]
    return "·".join(parts) or "1"


def fit_units(est: Any, X: Any, y: Any, verbose: Any = None) -> Any:
    """``est.fit`` with ``est.units``: validate, reduce to groups, search ``g`` on
    ``(Π(X), y / M(X))`` with a clone (``units=None``, variables ``pi1…``), compose ``M·g(π)``."""
    from sklearn.base import clone

    X, y = est._validate(X, y)
    names = est._names(X.shape[1])
    units = est.units
    if not isinstance(units, Mapping):
        raise ValueError(f"units must be a dict {{variable: unit}} with the target under 'target', got "
                         f"{type(units).__name__}")
    if "target" in names:
        raise ValueError("a variable is named 'target', the key reserved for the target's units; rename it")
    unknown = [k for k in units if k != "target" and k not in names]
    if unknown:
        raise ValueError(f"units names unknown variable(s) {', '.join(map(repr, unknown))}; the variables are "
                         f"{', '.join(names)} (and 'target' for y)")
    missing = [k for k in names + ["target"] if k not in units]
    if missing:
        raise ValueError(f"units lacks {', '.join(map(repr, missing))}: give the unit of every variable and of "
                         "the target (key 'target'; '1' for dimensionless)")
    vec = unit_vectors({k: units[k] for k in names + ["target"]})
    D = [[vec[nm][r] for nm in names] for r in range(len(vec["target"]))]
    groups = dimensionless_groups(D, vec["target"], names)
    used = [j for j in range(len(names)) if groups.monomial[j] or any(r[j] for r in groups.exponents)]
    frac = [j for j in used if groups.monomial[j].denominator != 1]
    bad = [names[j] for j in used if (j in frac and np.any(X[:, j] < 0)) or np.any(X[:, j] == 0)]
    if bad:
        raise ValueError(f"units: {', '.join(bad)} must be non-zero (and positive under a fractional power) "
                         "to form the monomial and the dimensionless groups")
    pis, mono = groups.evaluate(X)
    if not (np.isfinite(mono).all() and np.all(mono != 0) and np.isfinite(pis).all()):
        raise ValueError("units: the monomial or the groups are not finite on X (zero or negative values)")
    syms = [sympy.Symbol(v) for v in names]
    g_exprs, m_expr = groups.symbols(syms)
    for j, g in enumerate(g_exprs):
        if np.ptp(pis[:, j]) <= 1e-9 * np.max(np.abs(pis[:, j])):
            raise ValueError(f"units: the dimensionless group pi{j + 1} = {g} is constant on these rows "
                             f"({pis[0, j]:g}): it carries no information; drop one of its variables")
    z = y / mono
    est.variables_ = names
    info = {"groups": {f"pi{j + 1}": str(g) for j, g in enumerate(g_exprs)}, "monomial": str(m_expr),
            "group_exponents": [list(r) for r in groups.exponents],
            "monomial_exponents": [str(p) for p in groups.monomial]}
    if not groups.exponents:  # no group: g is a constant, the least-squares c of y ≈ c·M(x)
        from .polish import relative_rmse
        from .snap import snap_coefficients

        c = float(np.dot(y, mono) / np.dot(mono, mono))
        err0 = relative_rmse(c * mono, y)
        snapped = snap_coefficients(sympy.Float(c) * m_expr, X, y, tol=float(est.snap_tol) + 0.01 * err0,
                                    variables=syms)
        ratio = snapped.expr / m_expr
        ok = math.isfinite(snapped.error) and ratio.is_number  # c snapped (2π, 1/2, √2…) or kept
        c = float(sympy.N(ratio)) if ok else c
        expr = snapped.expr if ok else sympy.Float(c) * m_expr
        err = relative_rmse(c * mono, y)
        est.inner_ = None
        est.candidates_, est.n_iter_ = [], 0
        est._g_const = c
        est.formula_ = expr
        est.complete_ = err < 1e-6
        est.equations_ = None
        est.best_index_ = None
        est.model_ = None
        status = "exact" if est.complete_ else "approximate"
        est.result_ = {"formula": str(expr), "complete": est.complete_, "status": status, "error": err,
                       "reason": "no dimensionless group: y is a constant times the monomial",
                       "variables": names, "units": info}
    else:
        pnames = [f"pi{j + 1}" for j in range(len(groups.exponents))]
        inner = clone(est).set_params(units=None, variables=pnames, warm_start=False)
        try:
            inner.fit(pis, z, verbose=verbose)
        except ValueError as err:  # e.g. a group that is constant on these rows
            shown = ", ".join(f"{p} = {g}" for p, g in zip(pnames, g_exprs))
            raise ValueError(f"units: the search for y/({m_expr}) = g({shown}) failed: {err}") from None
        est.inner_ = inner
        est.candidates_, est.n_iter_ = inner.candidates_, inner.n_iter_
        sub = {sympy.Symbol(p): g for p, g in zip(pnames, g_exprs)}
        est._units_sub = (sub, m_expr)
        compose(est)
        est.result_ = {**inner.result_, "formula": str(est.formula_), "variables": names, "units": info,
                       "equations": est.equations_.to_dicts()}
    est._units = groups
    est.latex_ = sympy.latex(est.formula_)
    est.result_["latex"] = est.latex_
    est.n_outputs_ = 1
    return est


def _in_user_vars(expr: sympy.Expr, sub: dict, m_expr: sympy.Expr) -> sympy.Expr:
    """``M(x)·g(π(x))``, simplified when that makes it shorter."""
    out = m_expr * expr.xreplace(sub)
    try:
        simple = sympy.simplify(out)
        return simple if sympy.count_ops(simple) <= sympy.count_ops(out) else out
    except Exception:  # noqa: BLE001 - simplification is cosmetic
        return out


def compose(est: Any) -> None:
    """Set ``est``'s formula, front and flags from its inner (group) estimator ``est.inner_``."""
    from dataclasses import replace

    from .front import Front

    inner = est.inner_
    sub, m_expr = est._units_sub
    est.formula_ = _in_user_vars(inner.formula_, sub, m_expr)
    est.complete_ = inner.complete_
    est.model_ = inner.model_
    est.best_index_ = inner.best_index_
    rows = [replace(r, formula=est.formula_ if i == inner.equations_.chosen else m_expr * r.formula.xreplace(sub))
            for i, r in enumerate(inner.equations_)]
    est.equations_ = Front(rows, inner.equations_.chosen)
    est.latex_ = sympy.latex(est.formula_)


def predict_units(est: Any, X: np.ndarray) -> np.ndarray:
    """``M(X)·g(Π(X))`` with the inner estimator's ``predict`` (closed form or KAN)."""
    pis, mono = est._units.evaluate(X)
    g = est._g_const if est.inner_ is None else est.inner_.predict(pis)
    return np.asarray(mono * g, dtype=np.float64)
