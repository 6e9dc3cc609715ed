"""Full-batch L-BFGS fit of the decomposition's small tanh MLPs, in NumPy with lecture §2.7's backward.

The decomposition's oracle (:mod:`~nnlab.symbolic.surrogate`) and the power factors' partly linear
model (:mod:`~nnlab.symbolic.power_factor`) are the MLP

    ``h(u) = tanh(tanh(u·A₁ + b₁)·A₂ + b₂)·A₃ + b₃``

(an ``nn.Sequential`` Linear–Tanh–Linear–Tanh–Linear, built and initialised by torch), optionally plus
a linear term ``L·c`` and times a per-row weight ``w``: ``ŷ = w ⊙ (h(u) + L·c)``, fitted to ``t`` by
the mean squared error ``(1/N)·Σ(ŷ − t)²``. The gradient is lecture §2.7's, layer by layer (``S = X·A +
b``, ``Y = f(S)``): ``∂L/∂S = ∂L/∂Y ⊙ f'(S)`` (``tanh' = 1 − Y²``), ``∂L/∂A = Xᵀ·∂L/∂S``, ``∂L/∂b`` the
column sums of ``∂L/∂S``, ``∂L/∂X = ∂L/∂S·Aᵀ``; it is checked against autograd in the tests.

The minimiser is SciPy's L-BFGS-B (no bounds, 20 correction pairs as the torch fit had, no tolerance
stop: it runs its ``steps`` iterations unless the line search can no longer descend). On a few hundred
rows and 32 units every evaluation is a few dozen small kernels: with ``torch.optim.LBFGS`` and
autograd their dispatch and the optimizer's Python loop were the cost: a surrogate fit of 1500 + 250
iterations took 2.3–2.8 s there and 0.9–1.1 s here, 2.5× faster (median of 12 Feynman surrogates, the
same start and held-out errors of the same size: ``python bench/tanh_mlp_fit.py``), and that fit is on
the critical path of every decomposition.

Everything runs in float64 on one BLAS thread (the search's jobs limit it), so a fit is a pure
function of its inputs: the same in this process and in any worker.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn

from .train import Interrupted

__all__ = ["fit_tanh_mlp", "mlp_loss_and_grad"]


def _layers(net: nn.Sequential) -> list[nn.Linear]:
    mods = list(net)
    if len(mods) != 5 or not all(isinstance(m, nn.Linear) for m in mods[::2]) \
            or not all(isinstance(m, nn.Tanh) for m in mods[1::2]):
        raise ValueError("fit_tanh_mlp takes an nn.Sequential(Linear, Tanh, Linear, Tanh, Linear)")
    return mods[::2]


def _pack(net: nn.Sequential, linear: nn.Linear | None) -> np.ndarray:
    """The parameters as one float64 vector: ``A₁, b₁, A₂, b₂, A₃, b₃`` (each ``A`` as (in, out)), then ``c``."""
    parts = []
    for lin in _layers(net):
        parts += [lin.weight.detach().double().numpy().T.ravel(), lin.bias.detach().double().numpy()]
    if linear is not None:
        parts.append(linear.weight.detach().double().numpy().ravel())
    return np.concatenate(parts)


def _unpack(p: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, o = [], 0
    for s in shapes:
        size = int(np.prod(s))
        out.append(p[o:o + size].reshape(s))
        o += size
    return out


def _shapes(net: nn.Sequential, linear: nn.Linear | None) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for lin in _layers(net):
        shapes += [(lin.in_features, lin.out_features), (lin.out_features,)]
    if linear is not None:
        shapes.append((linear.in_features, 1))
    return shapes


def mlp_loss_and_grad(p: np.ndarray, shapes: list[tuple[int, ...]], U: np.ndarray, T: np.ndarray,
                      L: np.ndarray | None = None, w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The mean squared error of ``ŷ = w ⊙ (h(U) + L·c)`` against ``T`` (N, 1) at the flat parameters
    ``p`` (laid out by ``shapes``, see the module docstring), and its gradient (lecture §2.7)."""
    A1, b1, A2, b2, A3, b3, *rest = _unpack(p, shapes)
    Y1 = np.tanh(U @ A1 + b1)
    Y2 = np.tanh(Y1 @ A2 + b2)
    pred = Y2 @ A3 + b3
    if rest:
        pred = pred + L @ rest[0]
    if w is not None:
        pred = w * pred
    r = pred - T
    loss = float(np.mean(r * r))
    d = r * (2.0 / r.size)  # ∂L/∂ŷ
    if w is not None:
        d = d * w
    grads = [None] * len(shapes)
    grads[4], grads[5] = Y2.T @ d, d.sum(axis=0)
    dS2 = (d @ A3.T) * (1.0 - Y2 * Y2)
    grads[2], grads[3] = Y1.T @ dS2, dS2.sum(axis=0)
    dS1 = (dS2 @ A2.T) * (1.0 - Y1 * Y1)
    grads[0], grads[1] = U.T @ dS1, dS1.sum(axis=0)
    if rest:
        grads[6] = L.T @ d
    return loss, np.concatenate([g.ravel() for g in grads])


class _Stop(Exception):
    pass


def fit_tanh_mlp(net: nn.Sequential, U: np.ndarray, T: np.ndarray, steps: int, *,
                 linear: nn.Linear | None = None, L: np.ndarray | None = None, w: np.ndarray | None = None,
                 deadline: float | None = None, stop: Callable[[], bool] | None = None) -> float:
    """Train ``net`` (and ``linear``, the coefficients ``c`` of ``L``'s columns) in place on (U (N, n),
    T (N, 1)) for ``steps`` L-BFGS iterations; returns the final mean squared error.

    ``deadline`` (``time.monotonic()``): the fit ends at the first iteration past it. ``stop``: asked
    every 10 iterations; when it says yes the fit is no longer wanted and
    :class:`~nnlab.symbolic.train.Interrupted` is raised (as :func:`~nnlab.symbolic.train.train_lbfgs`).
    Parameters that would make the loss non-finite are never accepted (the line search backs off)."""
    U = np.ascontiguousarray(U, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64).reshape(len(U), 1)
    if (linear is None) != (L is None):
        raise ValueError("the linear term needs both its module (linear) and its columns (L)")
    L = None if L is None else np.ascontiguousarray(L, dtype=np.float64)
    w = None if w is None else np.asarray(w, dtype=np.float64).reshape(len(U), 1)
    shapes = _shapes(net, linear)
    p0 = _pack(net, linear)

    def fg(p: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            f, g = mlp_loss_and_grad(p, shapes, U, T, L, w)
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(g)  # the line search backs off from it
        return f, g

    best = [p0]
    count = [0]

    def callback(p: np.ndarray) -> None:
        best[0] = np.array(p, copy=True)
        count[0] += 1
        if deadline is not None and time.monotonic() > deadline:
            raise _Stop
        if stop is not None and count[0] % 10 == 0 and stop():
            raise Interrupted("the fit is no longer wanted")

    if steps > 0:
        try:
            r = minimize(fg, p0, jac=True, method="L-BFGS-B", callback=callback,
                         options=dict(maxiter=int(steps), maxcor=20, ftol=0.0, gtol=0.0, maxfun=20 * int(steps)))
            p = r.x
        except _Stop:
            p = best[0]
    else:
        p = p0
    loss = fg(p)[0]
    if not np.isfinite(loss):  # (never an accepted iterate: the last one the callback saw)
        p = best[0]
        loss = fg(p)[0]
    _write(net, linear, p, shapes)
    return float(loss)


def _write(net: nn.Sequential, linear: nn.Linear | None, p: np.ndarray, shapes: list[tuple[int, ...]]) -> None:
    values = _unpack(p, shapes)
    with torch.no_grad():
        for k, lin in enumerate(_layers(net)):
            lin.weight.copy_(torch.from_numpy(values[2 * k].T.copy()))
            lin.bias.copy_(torch.from_numpy(values[2 * k + 1].copy()))
        if linear is not None:
            linear.weight.copy_(torch.from_numpy(values[6].T.copy()))
