"""Affine fit of a library function to an edge's samples (lecture §6.3, step 4).

Model: ``y ≈ c·f(a·x + b) + d``. For fixed ``(a, b)`` the best ``(c, d)`` is ordinary least
squares in closed form, ``c = cov(f, y) / var(f)``, ``d = ȳ − c·f̄``, and the fit's
``r² = corr(f(a·x + b), y)²``. So ``(a, b)`` are searched on a grid (on standardised ``x``,
which makes the grid scale-free), the grid is zoomed around the best cell, and the best few
starts are refined by least squares on all four parameters. Points where ``f`` is undefined
(log of a negative, division by zero, overflow) disqualify that ``(a, b)``: nothing raises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares

from .library import LIBRARY, Library, SymbolicFunction

__all__ = ["AffineFit", "fit_affine", "resolve_function", "canonical"]


@dataclass(frozen=True)
class AffineFit:
    """Result of :func:`fit_affine`: ``y ≈ c·f(a·x + b) + d`` with coefficient of determination ``r2``."""

    a: float
    b: float
    c: float
    d: float
    r2: float

    def as_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c": self.c, "d": self.d, "r2": self.r2}


def resolve_function(fn: str | SymbolicFunction, lib: Library | None = None) -> SymbolicFunction:
    """Accept a library name or a :class:`SymbolicFunction`."""
    if isinstance(fn, SymbolicFunction):
        return fn
    if isinstance(fn, str):
        lib = LIBRARY if lib is None else lib
        if fn not in lib:
            raise ValueError(f"unknown library function {fn!r}; valid names: {', '.join(lib)}")
        return lib[fn]
    raise TypeError(f"fn must be a library name or a SymbolicFunction, got {type(fn).__name__}")


def _as_1d(v: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64))
    if t.ndim != 1:
        t = t.reshape(-1)
    if t.numel() < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {t.numel()}")
    return t


def _r2_grid(f: SymbolicFunction, xs: torch.Tensor, y: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """r² of the closed-form (c, d) fit for every (a, b) pair; -1 where f is invalid. A, B: (G,)."""
    pre = A[:, None] * xs[None, :] + B[:, None]  # (G, N)
    F, ok = f.safe(pre)
    allok = ok.all(dim=1)
    Fc = F - F.mean(dim=1, keepdim=True)
    yc = y - y.mean()
    cov = (Fc * yc).sum(dim=1)
    vf = (Fc * Fc).sum(dim=1)
    vy = (yc * yc).sum()
    r2 = torch.where(vf > 1e-12 * F.abs().amax(dim=1).clamp_min(1.0) ** 2 * F.shape[1],
                     cov ** 2 / (vf * vy).clamp_min(1e-300), torch.zeros_like(cov))
    return torch.where(allok & torch.isfinite(r2), r2, torch.full_like(r2, -1.0))


def _closed_form(F: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    Fm, ym = F.mean(), y.mean()
    vf = ((F - Fm) ** 2).sum()
    vy = ((y - ym) ** 2).sum()
    if vf <= 1e-300:
        c, d = 0.0, float(ym)
    else:
        c = float(((F - Fm) * (y - ym)).sum() / vf)
        d = float(ym - c * Fm)
    res = ((c * F + d - y) ** 2).sum()
    r2 = 1.0 - res / vy if vy > 0 else (1.0 if res <= 1e-20 else 0.0)
    return c, d, float(r2)


def fit_affine(x: Any, y: Any, fn: str | SymbolicFunction, lib: Library | None = None, *,
               a_range: tuple[float, float] = (-10.0, 10.0), b_range: tuple[float, float] = (-10.0, 10.0),
               grid_number: int = 41, iterations: int = 3, refine: bool = True) -> AffineFit:
    """Fit ``y ≈ c·fn(a·x + b) + d`` (lecture §6.3 step 4); never raises on domain errors.

    Args:
        x, y: samples of one edge, shape (N,) (arrays or tensors), N >= 2, finite.
        fn: a library name (e.g. ``"sin"``) or a :class:`SymbolicFunction`.
        a_range, b_range: grid for ``(a, b)`` on *standardised* x (x' = (x − mean)/std).
        grid_number: grid points per axis; iterations: zoom rounds; refine: least-squares polish.

    Returns:
        :class:`AffineFit` in the original x units; ``r2 = -inf`` if ``fn`` is undefined for
        every tried ``(a, b)`` on these samples.
    """
    f = resolve_function(fn, lib)
    xt, yt = _as_1d(x, "x"), _as_1d(y, "y")
    if xt.shape != yt.shape:
        raise ValueError(f"x has {xt.numel()} samples but y has {yt.numel()}; they must match")
    if not (torch.isfinite(xt).all() and torch.isfinite(yt).all()):
        raise ValueError("x and y must be finite (drop NaN/inf samples first)")
    yn = yt.numpy()
    if f.name == "0":
        c, d, r2 = _closed_form(np.zeros_like(yn), yn)
        return AffineFit(0.0, 0.0, 0.0, d, r2)
    if f.name == "x":
        c, d, r2 = _closed_form(xt.numpy(), yn)
        return AffineFit(1.0, 0.0, c, d, r2)
    mu = float(xt.mean())
    sd = float(xt.std()) or 1.0
    xs = (xt - mu) / sd

    (a_lo, a_hi), (b_lo, b_hi) = a_range, b_range
    starts: list[tuple[float, float, float]] = []
    for it in range(max(1, iterations)):
        a_ax = torch.linspace(a_lo, a_hi, grid_number, dtype=torch.float64)
        b_ax = torch.linspace(b_lo, b_hi, grid_number, dtype=torch.float64)
        A, B = torch.meshgrid(a_ax, b_ax, indexing="ij")
        r2 = _r2_grid(f, xs, yt, A.reshape(-1), B.reshape(-1))
        if it == 0:
            top = torch.topk(r2, k=min(3, r2.numel())).indices
            starts = [(float(A.reshape(-1)[j]), float(B.reshape(-1)[j]), float(r2[j])) for j in top]
        j = int(torch.argmax(r2))
        if float(r2[j]) < 0:
            break
        ia, ib = divmod(j, grid_number)
        da = (a_hi - a_lo) / (grid_number - 1)
        db = (b_hi - b_lo) / (grid_number - 1)
        starts.append((float(a_ax[ia]), float(b_ax[ib]), float(r2[j])))
        a_lo, a_hi = float(a_ax[ia]) - da, float(a_ax[ia]) + da
        b_lo, b_hi = float(b_ax[ib]) - db, float(b_ax[ib]) + db

    starts = [s for s in starts if s[2] >= 0]
    if not starts:
        return AffineFit(float("nan"), float("nan"), 0.0, float(yn.mean()), float("-inf"))

    xsn = xs.numpy()

    def evaluate(a: float, b: float) -> tuple[np.ndarray, bool]:
        F, ok = f.safe(torch.from_numpy(a * xsn + b))
        return F.numpy(), bool(ok.all())

    best: tuple[float, float, float, float, float] | None = None
    for a0, b0, _ in sorted(set(starts), key=lambda s: -s[2])[:2]:
        F, ok = evaluate(a0, b0)
        if not ok:
            continue
        c0, d0, r0 = _closed_form(F, yn)
        cand = (a0, b0, c0, d0, r0)
        if refine:
            scale = float(np.abs(yn).max()) or 1.0

            def resid(p: np.ndarray) -> np.ndarray:
                Fp, okp = evaluate(p[0], p[1])
                if not okp:
                    return np.full_like(yn, 1e3 * scale)
                return p[2] * Fp + p[3] - yn

            try:
                sol = least_squares(resid, np.array([a0, b0, c0, d0]), method="trf", max_nfev=60)
                Fs, oks = evaluate(sol.x[0], sol.x[1])
                if oks and np.all(np.isfinite(sol.x)):
                    c1, d1, r1 = _closed_form(Fs, yn)
                    if r1 > r0:
                        cand = (float(sol.x[0]), float(sol.x[1]), c1, d1, r1)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                pass  # keep the grid start: refinement is optional
        if best is None or cand[4] > best[4]:
            best = cand
    if best is None:
        return AffineFit(float("nan"), float("nan"), 0.0, float(yn.mean()), float("-inf"))
    a_s, b_s, c, d, r2v = best
    # back to original x units: a_s·(x − mu)/sd + b_s = a·x + b
    a = a_s / sd
    b = b_s - a_s * mu / sd
    return AffineFit(float(a), float(b), float(c), float(d), float(r2v) if math.isfinite(r2v) else float("-inf"))


_POWERS = {"x^2": 2.0, "x^3": 3.0, "x^4": 4.0, "1/x": -1.0, "1/x^2": -2.0, "sqrt": 0.5, "1/sqrt": -0.5}


def canonical(fn: str | SymbolicFunction, fit: AffineFit) -> AffineFit:
    """Remove the scale redundancy of ``c·f(a·x + b) + d`` where ``f`` allows it, so the numbers
    that reach the formula are the identifiable ones (and can snap to simple values):

    * powers ``(a·x + b)^p = |a|^p·(sign(a)·x + b/|a|)^p``: ``a → ±1``;
    * ``exp(a·x + b) = e^b·exp(a·x)``: ``b → 0``;
    * ``log(a·x + b) = log|a| + log(sign(a)·x + b/|a|)``: ``a → ±1``.
    The function computed is unchanged (same ``r2``).
    """
    name = fn.name if isinstance(fn, SymbolicFunction) else fn
    a, b, c, d, r2 = fit.a, fit.b, fit.c, fit.d, fit.r2
    if not all(math.isfinite(v) for v in (a, b, c, d)) or a == 0:
        return fit
    if name in _POWERS:
        p = _POWERS[name]
        s = math.copysign(1.0, a)
        return AffineFit(s, b / abs(a), c * abs(a) ** p, d, r2)
    if name in ("sin", "cos"):
        if a < 0:  # sin(-u) = -sin(u), cos(-u) = cos(u)
            a, b, c = -a, -b, (-c if name == "sin" else c)
        b = math.remainder(b, 2 * math.pi)  # period 2π: b in [-π, π]
        return AffineFit(a, b, c, d, r2)
    if name == "exp":
        return AffineFit(a, 0.0, c * math.exp(b), d, r2) if abs(b) < 700 else fit
    if name == "log":
        s = math.copysign(1.0, a)
        return AffineFit(s, b / abs(a), c, d + c * math.log(abs(a)), r2)
    return fit
