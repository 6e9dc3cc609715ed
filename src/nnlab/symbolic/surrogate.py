"""A smooth float64 surrogate ``f̂ ≈ f`` of the data: the oracle of the decomposition.

The raw data can only be read where it was sampled; ``f̂`` can be evaluated anywhere inside the
data's box, which is what the separability and symmetry tests of
:mod:`nnlab.symbolic.separability` need (AI Feynman, Udrescu & Tegmark 2020). ``f̂`` is an MLP
``[n, h, h, 1]`` with tanh units (lecture §2: a smooth universal approximator, so finite
differences of ``f̂`` behave), trained full-batch by L-BFGS on inputs mapped to ``[-1, 1]`` (fixed-
sign columns as ``log|x|``: products of powers, the common physical case, are far smoother there)
and a standardised target. A share of the rows is held out; the surrogate's error on them, ``σ``
(absolute RMSE in the units of ``y``), sets the tolerance of every test.

A target of one sign may also be fitted in log space (``log_target``): ``log|y| = a·u + b + g(u)``
with ``u`` the network's inputs, the power law ``a·u + b`` by least squares and the MLP ``g`` on
what it leaves. A law that is a product of powers times a few factors (``Z²α²ħ²c²/(E² sin⁴(θ/2))``,
5 orders of magnitude over its box) is then a small correction to a plane, where the raw fit
spreads its 32 units over the whole range: held-out error 0.3 → 1.3e-3 on that law. Its error
grows with ``|y|``, so the decomposition takes it only when the plain fit is poor.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .exchange import value_name
from .tanh_mlp import fit_tanh_mlp
from .transforms import fixed_sign

__all__ = ["Surrogate", "fit_surrogate", "best_surrogate", "looks_noisy", "surrogate_name", "help_decompose",
           "surrogate_tries"]


@dataclass
class Surrogate:
    """A fitted surrogate. ``sigma``: absolute RMSE on held-out rows; ``error``: ``sigma / RMS(y)``;
    ``lo``, ``hi``: the data's box (per column), where the surrogate may be trusted."""

    net: nn.Module
    lo: np.ndarray
    hi: np.ndarray
    y_mean: float
    y_std: float
    sigma: float
    error: float
    signs: np.ndarray  # per column: +1/-1 when its values have that fixed sign (fed as log|x|), else 0
    y_sign: float = 0.0  # fitted in log space (``log_target``): the sign of every y, else 0
    plane: np.ndarray | None = None  # log-space fits: the power law's coefficients on the inputs, then b

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """The network's inputs: ``log|x|`` for fixed-sign columns, ``x`` otherwise, mapped to [-1, 1]."""
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            U = np.where(self.signs != 0, np.log(np.maximum(X * self.signs, 1e-300)), X)
        return 2 * (U - self.lo) / (self.hi - self.lo) - 1

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Evaluate ``f̂`` on X (M, n) → (M,)."""
        U = self.inputs(X)
        with torch.no_grad():
            t = self.net(torch.from_numpy(U)).numpy()[:, 0] * self.y_std + self.y_mean
        if not self.y_sign:
            return t
        log_y = t + U @ self.plane[:-1] + self.plane[-1]
        return self.y_sign * np.exp(np.clip(log_y, -745.0, 709.0))


def _mlp(n: int, hidden: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 1)).double()


def fit_surrogate(X: np.ndarray, y: np.ndarray, hidden: int = 32, steps: int = 600, holdout: float = 0.2,
                  seed: int = 0, log_inputs: bool = True, deadline: float | None = None,
                  exchange: Any = None, log_target: bool = False, ahead: Sequence[dict[str, Any]] = (),
                  stop: Callable[[], bool] | None = None, then: Sequence[Any] = ()) -> Surrogate:
    """Fit ``f̂`` to (X (N, n), y (N,)); ``holdout`` of the rows measure its error ``σ``.

    ``log_inputs``: feed fixed-sign columns as ``log|x|``. ``log_target``: fit ``log|y|`` (a power law
    plus the network) when every y has the same sign (otherwise the plain fit is made). After the error is measured the network is trained a little more on all rows (the tests then
    use every sample; ``σ`` stays the honest held-out figure).

    ``exchange`` (an :class:`~nnlab.symbolic.exchange.Exchange`, parallel searches only): the fit may
    come from a helper job that made the same fit (same data and arguments, :func:`surrogate_name`)
    in another process meanwhile; the value is the same, only the wall time changes. ``ahead``: the
    arguments of fits that may be asked for next; while another job makes this one, this job makes
    those (:meth:`~nnlab.symbolic.exchange.Exchange.take`'s ``meanwhile``), and then the values
    ``then`` (``(name, compute(stop))``). ``stop``: see :func:`~nnlab.symbolic.train.train_lbfgs`.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if exchange is not None and deadline is None:  # a fit cut short by a clock is no pure function
        args = dict(hidden=hidden, steps=steps, holdout=holdout, seed=seed, log_inputs=log_inputs,
                    log_target=log_target)
        later = [(surrogate_name(X, y, **a), lambda stop, a=a: fit_surrogate(X, y, **a, stop=stop)) for a in ahead]
        later += list(then)
        return exchange.take(surrogate_name(X, y, **args), lambda: fit_surrogate(X, y, **args), meanwhile=later)
    signs = np.where(X.min(axis=0) > 0, 1.0, np.where(X.max(axis=0) < 0, -1.0, 0.0)) * float(log_inputs)
    with np.errstate(all="ignore"):
        V = np.where(signs != 0, np.log(np.abs(X)), X)  # products of powers are smoother in log|x|
    lo, hi = V.min(axis=0), V.max(axis=0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    big = float(np.max(np.abs(y))) or 1.0  # scales y in two steps so 1e300-sized data does not overflow
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    n_val = max(int(holdout * len(y)), 4) if len(y) >= 20 else 0
    va, tr = perm[:n_val], perm[n_val:]
    Un = 2 * (V - lo) / (hi - lo) - 1
    y_sign, plane = (float(fixed_sign(y)) if log_target else 0.0), None
    if y_sign:
        target = np.log(np.abs(y))
        A = np.column_stack([Un, np.ones(len(y))])
        plane = np.linalg.lstsq(A[tr], target[tr], rcond=None)[0]
        target = target - A @ plane  # the network fits what the power law leaves
        y_mean, y_std = float(target[tr].mean()), float(target[tr].std()) or 1.0
    else:
        ys = y / big
        y_mean, y_std = float(ys.mean()) * big, (float(ys.std()) or 1.0) * big
        target = y
    T = ((target - y_mean) / y_std)[:, None]
    net = _mlp(X.shape[1], hidden, seed)
    fit_tanh_mlp(net, Un[tr], T[tr], steps, deadline=deadline, stop=stop)
    sur = Surrogate(net, lo, hi, y_mean, y_std, 0.0, 0.0, signs, y_sign, plane)
    rms = float(np.sqrt(np.mean((y / big) ** 2))) * big
    if n_val:
        sigma = float(np.sqrt(np.mean((sur(X[va]) - y[va]) ** 2)))
    else:
        sigma = float(np.sqrt(np.mean((sur(X) - y) ** 2)))
    if not math.isfinite(sigma):
        sigma = rms
    fit_tanh_mlp(net, Un, T, max(steps // 6, 10), deadline=deadline, stop=stop)
    sur.sigma, sur.error = max(sigma, 1e-15 * rms), sigma / (rms or 1.0)
    return sur


def surrogate_tries(X: np.ndarray, y: np.ndarray, seed: int) -> list[dict[str, Any]]:
    """The fits :func:`best_surrogate` may make, in order (arguments of :func:`fit_surrogate`): log
    inputs; raw inputs (when some column has a fixed sign, else that is the first fit); log inputs from
    another start; log target (when y has one sign)."""
    some_sign = bool(np.any((X.min(axis=0) > 0) | (X.max(axis=0) < 0)))
    tries = [(True, seed, False)] + [(log_inputs, start, log_target) for log_inputs, start, log_target in
                                     ((False, seed, False), (True, seed + 1, False), (True, seed, True))
                                     if (log_inputs or some_sign) and (not log_target or fixed_sign(y))]
    return [dict(hidden=32, steps=1500, holdout=0.2, seed=start, log_inputs=log_inputs, log_target=log_target)
            for log_inputs, start, log_target in tries]


def best_surrogate(X: np.ndarray, y: np.ndarray, seed: int, exchange: Any = None,
                   noise: float | None = None, then: Callable[[Surrogate], Sequence[Any]] | None = None) -> Surrogate:
    """The oracle of a problem: the log-input fit, and when it is poor (above 1 %) other tries, the
    best held-out error kept. Differences (x_i − x_j) are smoother in raw x; L-BFGS from one start
    can stall far from the fit another start reaches (0.12 against 0.005); last, a target of one sign
    in log space, where a product of powers is a plane (0.3 → 1.3e-3 for a 7-variable law over 5
    orders of magnitude; last, since a log fit's error grows with |y| and loosens the tests where y
    is small: near a pole ω⁴/(ω² − ω₀²)² it passes false splits). The log fit is not tried when the
    data are noisy (``noise``, the noise level's estimate, within 1.5 times the fit's error): the
    error is then the noise's, which no other fit removes.

    ``exchange`` (parallel searches): the tries are shared, and run ahead of need (a job waiting for
    one makes the next); those the chain will not ask for are dropped at the end. ``then``: given the
    best fit so far (a poor one: another try is asked for), the fits the caller will ask for next if
    no try is better, as ``(name, compute(stop))``; a job waiting for the last tries makes those too."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    tries = surrogate_tries(X, y, seed)
    sur, k = None, 0
    for k, args in enumerate(tries):
        if sur is not None and (sur.error <= 1e-2 or (args["log_target"] and looks_noisy(noise, sur))):
            break
        after = [] if exchange is None or then is None or sur is None else list(then(sur))
        other = fit_surrogate(X, y, exchange=exchange, ahead=tries[k + 1:], then=after, **args)
        sur = other if sur is None or other.error < sur.error else sur
    else:
        k = len(tries)
    if exchange is not None:
        exchange.drop(surrogate_name(X, y, **a) for a in tries[k:])
    return sur


def looks_noisy(noise: float | None, sur: Surrogate) -> bool:
    """Whether a surrogate's error is mostly the data's noise: an estimate of the noise level
    (:func:`~nnlab.symbolic.noise.noise_level`) at most 1.5 times its held-out error. An estimate far
    above the error is the estimator fooled by a hard exact law (an interference pattern), not noise:
    no fit can be closer to noisy rows than the noise."""
    return noise is not None and noise <= 1.5 * sur.sigma


def surrogate_name(X: np.ndarray, y: np.ndarray, **args: Any) -> str:
    """The name of a surrogate fit in an :class:`~nnlab.symbolic.exchange.Exchange`: a digest of the
    data and every argument of :func:`fit_surrogate` (two fits with the same name are the same fit)."""
    return value_name("surrogate", X, y, **args)


def help_decompose(X: np.ndarray, y: np.ndarray, exchange: Any, seed: int = 0, steps: int = 1500) -> bool:
    """The decomposition's helper job: the fit it needs second when its first surrogate (log inputs) is
    not accurate enough, the one on raw inputs, made meanwhile and handed over through ``exchange``.
    Nothing to do without a fixed-sign column (the raw-input fit would be the first one). Returns
    whether it was handed over (not when the owner took it on itself, declined it or dropped it first:
    the fit stops when its first surrogate turns out accurate enough)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    raw = next((dict(a, steps=steps) for a in surrogate_tries(X, y, seed) if not a["log_inputs"]), None)
    if raw is None or os.path.exists(exchange.declined_path):
        return False
    return exchange.speculate(surrogate_name(X, y, **raw), lambda stop: fit_surrogate(X, y, **raw, stop=stop))
