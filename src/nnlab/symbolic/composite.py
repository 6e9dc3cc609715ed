"""Composite candidate: a monomial times a function of another monomial.

Many laws have the form ``y = M₁(x)·g(M₂(x))`` with monomials ``M = Π x_i^{p_i}`` and ``g`` a
library function of an affine map of ``M₂`` (or ``M₂²``, ``1/M₂``, ``√M₂``), e.g.
``m/√(1 − v²/c²)``, ``ω/(1 − v/c)``, ``exp(−(θ/σ)²/2)/σ``, ``asin(λ/(n·d))``. With all values of a
fixed sign, in log space

    ``log|y| = α·u + h(β·u)``,  ``u = log|x|``,

a KAN ``[n, 2, 1]`` whose first layer is linear. It is found directly:

1. **Direction β.** ``β`` has small integer entries (the variables of ``M₂`` usually cancel
   units: ``v/c``, ``θ/σ``, ``λ/(n·d)``). For every such ``β`` (entries in −2..2, at most three
   non-zero (up to the budget of
   ``find_direction``), up to sign and common factor) ``log|y|`` is regressed by linear least squares on
   ``u`` plus Chebyshev polynomials ``T_0, T_2…T_K`` of ``s = β·u`` (``T_1`` is left out: the
   linear part belongs to ``α``). The true ``β`` leaves (almost) no residual. When ``g`` has
   zeros (``1 − cos``, ``sin²``) ``log|g|`` is singular; then :func:`find_raw` fits
   ``y ≈ M₁(x)·h(β·u)`` in raw space, enumerating small monomials ``M₁`` as well (few variables).
   When ``y`` itself changes sign (``g = cos θ``, ``sin θ·cos θ``), :func:`find_signed` fits
   ``α`` by variable projection in raw space for every small ``β``.
2. **Monomial M₁.** ``α`` is defined up to multiples of ``β``; each representative with
   ``α_j = 0`` for one ``j`` in ``β``'s support is snapped to simple rationals.
3. **Function g.** ``t = M₂(x)``, ``z = y / M₁(x)``; ``z ≈ c·f(a·φ(t) + b) + d`` is fitted by
   :func:`~nnlab.symbolic.affine.fit_affine` for each library ``f`` and inner ``φ ∈ {t, t², 1/t,
   √t}`` (a KAN ``[1, 1, 1]`` chain on ``t``: edge ``φ`` then edge ``f``).
4. The best fits become sympy formulas in ``x``, are polished, snapped (§6.3 step 6) and
   judged on held-out rows like every other candidate.
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
import torch

from .affine import canonical, fit_affine
from .edges import SymbolicEdges
from .finish import EXACT_HELD_OUT, complexity, finish
from .library import Library
from .polish import evaluate, relative_rmse
from .univariate import fit_univariate

__all__ = ["directions", "find_direction", "find_signed", "monomial_sympy", "run_composite", "merge_composite",
           "check_shards"]

_INNERS: tuple[tuple[str, Any, Any], ...] = (
    ("x", lambda t: t, lambda t: t),
    ("x^2", lambda t: t ** 2, lambda t: t ** 2),
    ("1/x", lambda t: 1 / t, lambda t: 1 / t),
    ("sqrt", np.sqrt, sympy.sqrt),
)
_INNER_COST = {"x": 0, "x^2": 1, "1/x": 1, "sqrt": 1}
_SKIP = ("0", "abs", "sgn")


def directions(n: int, max_power: int = 2, max_support: int = 3) -> list[np.ndarray]:
    """Integer vectors β (entries in −max_power..max_power, 1..max_support non-zero), one per
    direction: first non-zero entry positive, entries without a common factor."""
    out = []
    vals = [v for v in range(-max_power, max_power + 1) if v != 0]
    for k in range(1, min(max_support, n) + 1):
        for support in itertools.combinations(range(n), k):
            for entries in itertools.product(vals, repeat=k):
                if entries[0] < 0 or math.gcd(*map(abs, entries)) != 1:
                    continue
                b = np.zeros(n)
                b[list(support)] = entries
                out.append(b)
    return out


def _basis(U: np.ndarray, s: np.ndarray, degree: int) -> np.ndarray:
    lo, hi = float(s.min()), float(s.max())
    z = 2 * (s - lo) / ((hi - lo) or 1.0) - 1
    cheb = np.polynomial.chebyshev.chebvander(z, degree)
    return np.hstack([U, cheb[:, [0] + list(range(2, degree + 1))]])


def _max_support(n: int, max_power: int, budget: int) -> int:
    """Largest support whose direction count stays within ``budget``."""
    total, k = 0, 0
    while k < n:
        total += math.comb(n, k + 1) * (2 * max_power) ** (k + 1) // 2
        if total > budget:
            break
        k += 1
    return max(k, 1)


def find_direction(U: np.ndarray, ly: np.ndarray, degree: int = 12, top: int = 3, max_power: int = 2,
                   max_support: int | None = None, budget: int = 6000) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Best directions β for ``ly ≈ α·U + h(β·U)``: list of (relative residual, β, α), best first.

    U: (N, n) log-inputs, ly: (N,) log-target. ``α`` is one representative (defined up to ``k·β``).
    ``max_support`` (non-zero entries of β) defaults to the largest that keeps at most ``budget``
    directions (all of them for n <= 5).
    """
    n = U.shape[1]
    if max_support is None:
        max_support = _max_support(n, max_power, budget)
    scale = float(ly.std()) or 1.0
    found = []
    for beta in directions(n, max_power, max_support):
        A = _basis(U, U @ beta, degree)
        coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
        r = float(np.sqrt(np.mean((A @ coef - ly) ** 2)) / scale)
        found.append((r, beta, coef[:n]))
    found.sort(key=lambda t: t[0])
    return found[:top]


def find_raw(U: np.ndarray, y: np.ndarray, degree: int = 24, top: int = 3, max_power: int = 2,
             budget: int = 4000) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Raw-space variant for ``g`` with zeros (oscillating laws): ``y ≈ exp(α·U)·h(β·U)``.

    ``α`` is enumerated too (integer entries in −1..2, at most two non-zero), so this runs only
    while directions × monomials stay within ``budget``; h is a Chebyshev polynomial of degree
    ``degree``. Returns (relative residual, β, α), best first; [] when over budget.
    """
    n = U.shape[1]
    betas = directions(n, max_power, _max_support(n, max_power, budget))
    alphas = [np.zeros(n)]
    for k in (1, 2):
        for support in itertools.combinations(range(n), k):
            for entries in itertools.product((-1, 1, 2), repeat=k):
                a = np.zeros(n)
                a[list(support)] = entries
                alphas.append(a)
    if len(alphas) * len(betas) > budget:
        return []
    scale = float(np.sqrt(np.mean(y ** 2))) or 1.0
    found = []
    for beta in betas:
        sv = U @ beta
        A = np.polynomial.chebyshev.chebvander(2 * (sv - sv.min()) / (np.ptp(sv) or 1.0) - 1, degree)
        for alpha in alphas:
            z = y / np.exp(U @ alpha)
            coef, *_ = np.linalg.lstsq(A, z, rcond=None)
            r = float(np.sqrt(np.mean((np.exp(U @ alpha) * (A @ coef - z)) ** 2)) / scale)
            found.append((r, beta, alpha))
    found.sort(key=lambda t: t[0])
    return found[:top]


def find_signed(U: np.ndarray, y: np.ndarray, degree: int = 16, top: int = 3, max_power: int = 2,
                max_support: int = 2, refine: int = 4) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """``y ≈ exp(α·U)·h(β·U)`` for a target that changes sign (``h`` has zeros: ``cos θ``,
    ``sin θ·cos θ``), with ``α`` *fitted*, not enumerated: for each small direction ``β`` (support
    ≤ ``max_support``) a start ``α₀`` from ``log|y|`` on the rows far from a zero (the largest
    70 % of ``|y|``), then, for the ``refine`` best, variable projection: ``h`` (Chebyshev of
    degree ``degree``) is linear given ``α``, so ``α`` alone is refit by least squares on all
    rows. ``α`` along ``β`` belongs to ``h``: one entry in ``β``'s support is held at 0.
    Returns (relative residual, β, α), best first."""
    from scipy.optimize import least_squares

    n = U.shape[1]
    scale = float(np.sqrt(np.mean(y ** 2))) or 1.0
    big = np.abs(y) >= np.quantile(np.abs(y), 0.3)
    ranked = []
    for beta in directions(n, max_power, max_support):
        A = _basis(U[big], U[big] @ beta, degree)
        coef, *_ = np.linalg.lstsq(A, np.log(np.abs(y[big])), rcond=None)
        r = float(np.sqrt(np.mean((A @ coef - np.log(np.abs(y[big]))) ** 2)))
        ranked.append((r, beta, coef[:n]))
    ranked.sort(key=lambda t: t[0])
    found = []
    for _, beta, alpha0 in ranked[:refine]:
        sv = U @ beta
        B = np.polynomial.chebyshev.chebvander(2 * (sv - sv.min()) / (np.ptp(sv) or 1.0) - 1, degree)
        j0 = int(np.flatnonzero(beta)[0])
        free = [j for j in range(n) if j != j0]
        a0 = alpha0 - alpha0[j0] / beta[j0] * beta

        def resid(p: np.ndarray) -> np.ndarray:
            a = np.zeros(n)
            a[free] = p
            with np.errstate(all="ignore"):
                m = np.exp(U @ a)
                c, *_ = np.linalg.lstsq(m[:, None] * B, y, rcond=None)
                out = (m * (B @ c) - y) / scale
            return np.where(np.isfinite(out), out, 1e3)

        try:
            fit = least_squares(resid, a0[free], method="lm", max_nfev=200 * n)
        except (ValueError, np.linalg.LinAlgError):
            continue
        alpha = np.zeros(n)
        alpha[free] = fit.x
        found.append((float(np.sqrt(np.mean(resid(fit.x) ** 2))), beta, alpha))
    found.sort(key=lambda t: t[0])
    return found[:top]


def _snap_vector(v: np.ndarray, max_den: int = 3, tol: float = 0.02) -> list[Fraction] | None:
    out = []
    for x in v:
        fr = Fraction(float(x)).limit_denominator(max_den)
        if abs(float(fr) - x) > tol:
            return None
        out.append(fr)
    return out


def monomial_sympy(powers: list[Fraction], variables: list[sympy.Symbol], signs: list[int]) -> sympy.Expr:
    """``Π (s_i·x_i)^{p_i}`` as sympy (rational powers)."""
    out = sympy.Integer(1)
    for p, v, s in zip(powers, variables, signs):
        if p != 0:
            out = out * (s * v) ** sympy.Rational(p.numerator, p.denominator)
    return out


def _monomial(powers: list[Fraction], Xs: np.ndarray) -> np.ndarray:
    return np.exp(np.log(Xs) @ np.array([float(p) for p in powers]))


def _chain_kan(inner: str, fn: str, fit: Any, lib: Library, grid: int, k: int) -> Any:
    """KAN [1, 1, 1] on t = M₂ computing ``c·fn(a·inner(t) + b) + d`` with symbolic edges."""
    from nnlab.kan import KAN

    model = KAN(width=[1, 1, 1], grid=grid, k=k).double()
    for layer, name, p in ((model.layers[0], inner, (1.0, 0.0, fit.a, fit.b)),
                           (model.layers[1], fn, (1.0, 0.0, fit.c, fit.d))):
        layer.symbolic = SymbolicEdges(1, 1, lib).double()
        layer.symbolic.set_edge(0, 0, name, p)
        with torch.no_grad():
            layer.mask[0, 0] = 0.0
    return model


def run_composite(res: Any, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                  variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int, snap_tol: float,
                  deadline: float | None, max_samples: int = 160, keep: int = 3,
                  shard: tuple[int, int] | None = None, exchange: Any = None) -> None:
    """Fill ``res`` (a :class:`~nnlab.symbolic.search.CandidateResult`) with the best composite law.

    The fits of step 3 are independent per (structure, inner φ) unit. ``shard=(j, K)`` computes only
    its share of the units (``u mod K = j``) and leaves them in ``res.partial`` (no formula);
    :func:`merge_composite` then joins the K shards in unit order, so the law is the one this
    function finds unsharded (the same fits in the same order), on one core or on K.

    ``exchange`` (the shards of a parallel search, :class:`~nnlab.symbolic.exchange.Exchange`): steps
    1–2 (a pure function of the rows, 0.4–0.6 s with 5–6 variables) are made once, by the first shard,
    and taken by the others, which usually start later (the workers free one after the other); and
    the units' fits are split into smaller tasks that each shard claims as it goes
    (:func:`_share_units`) instead of every K-th unit, so a shard that starts a job later makes fewer
    and the shards end together."""
    setup = _setup(Xtr, ytr) if exchange is None else exchange.take("composite-setup", lambda: _setup(Xtr, ytr))
    if shard is not None:
        n = 0 if setup is None else 4 * len(setup[-1])
        if n == 0:
            units: dict = {}
        elif exchange is not None and exchange.shared():
            units = _share_units(setup, shard, exchange, lib, max_samples, deadline)
        else:  # nothing shared: every K-th unit
            units = _fit_units(setup, range(shard[0], n, shard[1]), lib, max_samples, deadline)
        res.partial = {"structures": None if setup is None else setup[-1], "units": units}
        return
    if setup is None:
        res.note = _NO_STRUCTURE
        return
    part = {"structures": setup[-1], "units": _fit_units(setup, range(4 * len(setup[-1])), lib, max_samples,
                                                         deadline)}
    merge_composite(res, [part], Xtr, ytr, Xva, yva, variables, lib, grid=grid, k=k, snap_tol=snap_tol,
                    deadline=deadline, keep=keep)


_NO_STRUCTURE = "no direction beta makes y a monomial times a function of one monomial"

# how many tasks the library fits of one unit make for the shards of a parallel search (a unit's fits
# take 0.5–1.2 s: whole units left one shard fitting the last one while the other had nothing to do)
LIBRARY_TASKS = 3


def _share_units(setup: tuple, shard: tuple[int, int], exchange: Any, lib: Library, max_samples: int,
                 deadline: float | None) -> dict:
    """Every unit's fits through ``exchange`` (:func:`~nnlab.symbolic.exchange.share`): each unit's
    library fits as :data:`LIBRARY_TASKS` tasks (a run of library functions each), then each unit's
    univariate fits (which read its library fits: none where one fits exactly), each task made once, by
    the shard that claims it first; so the shards end together, one task apart. Returns the units of
    shard ``(j, K)``'s own share (``u mod K = j``): every shard has every value, and one share each is
    enough to join. Each task is a pure function of its unit: the merged law is the unsharded one."""
    from .exchange import share

    j, K = shard
    n = 4 * len(setup[-1])
    names = [f for f in lib if f not in _SKIP]
    runs = [list(r) for r in np.array_split(np.array(names, dtype=object), min(LIBRARY_TASKS, len(names)))]

    def fits(u: int, p: int) -> list:
        inputs = _unit_inputs(setup, u, max_samples)
        return [] if inputs is None else _library_fits(inputs, runs[p], lib, deadline)

    def univariate(u: int) -> list | None:
        inputs = _unit_inputs(setup, u, max_samples)
        if inputs is None:
            return None
        mine = [f for p in range(len(runs)) for f in exchange.take(_lib_task(u, p), lambda p=p: fits(u, p))]
        return _univariate_fits(inputs, mine, deadline)

    tasks = [(_lib_task(u, p), lambda u=u, p=p: fits(u, p)) for u in range(n) for p in range(len(runs))]
    tasks += [(f"composite-unit{u}-uni", lambda u=u: univariate(u)) for u in range(n)]
    values = share(exchange, tasks)
    P = len(runs)
    return {u: ([f for v in values[u * P:(u + 1) * P] for f in v], values[n * P + u]) for u in range(j, n, K)}


def _lib_task(u: int, p: int) -> str:
    return f"composite-unit{u}-lib{p}"


def _setup(Xtr: np.ndarray, ytr: np.ndarray) -> tuple | None:
    """Steps 1–2: the signs, the subsample and the (α, β) structures; None when none is found."""
    xs, ys, signed = _signs(Xtr, ytr)
    Xs, ya = Xtr * np.array(xs), ytr * ys
    if np.any(Xs <= 0):
        raise ValueError("the composite candidate needs every feature of fixed sign")
    rng = np.random.default_rng(0)
    sub = rng.choice(len(ya), size=min(len(ya), 240), replace=False)
    U = np.log(Xs)
    ly = None if signed else np.log(ya)
    structures: list[tuple[list[Fraction], list[Fraction]]] = []
    found = [d for d in find_signed(U[sub], ya[sub]) if d[0] < 1e-3] if signed else \
        [d for d in find_direction(U[sub], ly[sub]) if d[0] < 1e-3]
    for _, beta, alpha in found:
        bpow = [Fraction(int(b)) for b in beta]
        for j0 in np.nonzero(beta)[0]:
            apow = _snap_vector(alpha - alpha[j0] / beta[j0] * beta)
            if apow is not None and (apow, bpow) not in structures:
                structures.append((apow, bpow))
    if not structures:  # g may vanish somewhere (log|g| is singular; under noise a y ≥ 0 with zeros
        # dips below 0 and looks signed): search in raw space, where no log is taken
        structures = [([Fraction(int(a)) for a in alpha], [Fraction(int(b)) for b in beta])
                      for r, beta, alpha in find_raw(U[sub], ya[sub]) if r < 0.05]
    if not structures:
        return None
    return xs, ys, Xs, ya, sub, structures


def _signs(Xtr: np.ndarray, ytr: np.ndarray) -> tuple[list[int], int, bool]:
    """Sign of each column, of y, and whether y changes sign (then α is fitted in raw space, ys = 1)."""
    xs = [1 if np.all(Xtr[:, j] > 0) else -1 for j in range(Xtr.shape[1])]
    ys = 1 if np.all(ytr > 0) else -1
    signed = bool(np.any(ytr * ys <= 0))  # g changes sign: no log of y
    return xs, 1 if signed else ys, signed


def _exact_for(fits: list, apow: list[Fraction], bpow: list[Fraction]) -> bool:
    return any(f[0] < 1e-12 and f[5] == apow and f[6] == bpow for f in fits)


def _fit_units(setup: tuple, units: Any, lib: Library, max_samples: int, deadline: float | None) -> dict:
    """Step 3 for the units ``u`` (structure ``u // 4``, inner ``_INNERS[u % 4]``): ``{u: (library
    fits, univariate fits or None)}``; None where the univariate step does not run (φ not finite,
    past the deadline, or a library function already fits this unit exactly)."""
    names = [f for f in lib if f not in _SKIP]
    out: dict[int, tuple[list, list | None]] = {}
    for u in units:
        inputs = _unit_inputs(setup, u, max_samples)
        if inputs is None:
            out[u] = ([], None)
            continue
        fits = _library_fits(inputs, names, lib, deadline)
        out[u] = (fits, _univariate_fits(inputs, fits, deadline))
    return out


def _unit_inputs(setup: tuple, u: int, max_samples: int) -> tuple | None:
    """What unit ``u``'s fits read: M₁'s and M₂'s powers, the inner φ's name and sympy form, φ(t) and
    z = y / M₁ on the subsample, var z and the unit's cost; None where φ(t) is not finite."""
    _, _, Xs, ya, sub, structures = setup
    sub = sub[:max_samples]
    apow, bpow = structures[u // 4]
    iname, inum, isym = _INNERS[u % 4]
    t = _monomial(bpow, Xs)
    z = ya / _monomial(apow, Xs)
    zvar = float(np.var(z[sub])) or 1.0
    with np.errstate(all="ignore"):
        phi = inum(t)
    if not np.all(np.isfinite(phi)):
        return None
    icost = _INNER_COST[iname] + sum(p != 0 for p in apow)
    return apow, bpow, iname, isym, phi[sub], z[sub], zvar, icost


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _library_fits(inputs: tuple, names: list[str], lib: Library, deadline: float | None) -> list:
    """``z ≈ c·f(a·φ(t) + b) + d`` for each library function of ``names``, in their order (past the
    deadline, none after the first): ``(1 − r², cost, label, g(inner sympy) builder, KAN chain, apow,
    bpow)`` each."""
    apow, bpow, iname, isym, phi, z, _, icost = inputs
    fits: list = []
    for fname in names:
        if _late(deadline) and fits:
            break
        # canonical: sin/cos phases in [−π, π] (a phase off by 4π would snap to 10·√2)
        fit = canonical(fname, fit_affine(phi, z, fname, lib, grid_number=25))
        if not math.isfinite(fit.r2):
            continue
        fits.append((1.0 - fit.r2, lib[fname].complexity + icost, f"{fname}∘{iname}",
                     _affine_g(fname, fit, lib, isym), (iname, fname, fit), apow, bpow))
    return fits


def _univariate_fits(inputs: tuple, fits: list, deadline: float | None) -> list | None:
    """Rational functions of the atom, of its square root and of e^{a·atom} (univariate.py), the
    rational ones once (a rational of t is one of 1/t and t² too); None where a library function
    already fits this unit exactly (``fits``: the unit's library fits) or past the deadline."""
    apow, bpow, iname, isym, phi, z, zvar, icost = inputs
    if (_late(deadline) and fits) or _exact_for(fits, apow, bpow):
        return None
    uni = []
    for f in fit_univariate(phi, z, tol=1e-7, rational=iname == "x", deadline=deadline):
        loss = float(np.mean((z * f.error) ** 2)) / zvar if f.error > 0 else 0.0
        # one more than a library edge of the same size: on a tie the KAN chain is kept
        uni.append((min(loss, 1.0), f.cost + icost + 1, f"{f.label}∘{iname}",
                    (lambda T, f=f, isym=isym: f.build(isym(T))), None, apow, bpow))
    return uni


def check_shards(parts: list[dict]) -> None:
    """The shards must cover every unit (a lost shard is an error, never a gap). A unit fitted by two
    shards is allowed: its fits are a pure function of the unit (a shard that could not reach the
    exchange's folder, on another machine, fits every K-th unit while the others claim theirs)."""
    structures = parts[0]["structures"]
    units = sorted({u for p in parts for u in p["units"]})
    want = list(range(4 * len(structures or [])))
    if units != want:
        raise RuntimeError(f"the composite shards cover units {units}, not 0..{len(want) - 1}")


def merge_composite(res: Any, parts: list[dict], Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray,
                    yva: np.ndarray, variables: list[sympy.Symbol], lib: Library, *, grid: int, k: int,
                    snap_tol: float, deadline: float | None, keep: int = 3) -> None:
    """Step 4 on the units of every shard (``res.partial`` of :func:`run_composite`), in unit order:
    a unit's univariate fits count only when no earlier unit of its structure fits exactly (as in
    one pass). Fills ``res``."""
    structures = parts[0]["structures"]
    if structures is None:
        res.note = _NO_STRUCTURE
        return
    units = {u: v for p in parts for u, v in p["units"].items()}
    xs, ys, _ = _signs(Xtr, ytr)
    fits: list = []
    for u in range(4 * len(structures)):
        lib_fits, uni = units[u]
        fits += lib_fits
        if uni is not None and not _exact_for(fits, *structures[u // 4]):
            fits += uni
    good = [f for f in fits if f[0] < 1e-8]
    pool = sorted(good, key=lambda f: (f[1], f[0]))[:keep] if good else sorted(fits, key=lambda f: f[0])[:1]
    best_err, first = float("inf"), True
    for loss, _, label, g_of, chain, apow, bpow in pool:
        t_sym = monomial_sympy(bpow, variables, xs)
        expr = ys * monomial_sympy(apow, variables, xs) * g_of(t_sym)
        late = not first and deadline is not None and time.monotonic() > deadline
        if late:
            break
        first = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expr, _ = finish(expr, variables, Xtr, ytr, snap_tol=snap_tol)
        err = relative_rmse(evaluate(expr, variables, Xva), yva)
        if err < best_err * 0.5 or (err <= best_err * 2 + 1e-12 and complexity(expr) < res.complexity):
            best_err = min(err, best_err)
            res.expr, res.val_error, res.complexity, res.complete = expr, err, complexity(expr), True
            res.train_error = relative_rmse(evaluate(expr, variables, Xtr), ytr)
            res.model = None if chain is None else _chain_kan(*chain, lib, grid, k)
            res.note = f"y = M1(x)·g(M2(x)), M2 = {t_sym}, g = {label} (1 - r2 = {loss:.1e})"
        if best_err < EXACT_HELD_OUT:  # the search's own rule: the simpler fits came first (each later
            break  # one is a costlier form, a rational of the atom whose snap alone took 1.5–3.6 s)


def _affine_g(fname: str, fit: Any, lib: Library, inner: Any) -> Any:
    """``T ↦ c·f(a·inner(T) + b) + d`` as sympy."""
    F = sympy.Float
    return lambda T: F(fit.c) * lib[fname].sympy_fn(F(fit.a) * inner(T) + F(fit.b)) + F(fit.d)
