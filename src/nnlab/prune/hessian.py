"""Diagonal Hessian estimators for OBD saliencies (lecture §5.5).

All are pure functions ``(model, X, y, loss, layers) -> {layer name: diag}``: each returned
tensor has the shape of that ``nn.Linear``'s weight and holds an estimate of
H_ii = ∂²L/∂a_i² for the mean loss L = (1/N) Σ_n ℓ(f(x_n), y_n). The model is not changed
(a dense copy is differentiated, so masked models work too).

* ``exact``: one extra backward pass per weight on top of a ``create_graph`` gradient;
  exact but O(#weights) passes, for small models.
* ``gauss_newton``: diag(Jᵀ·H_out·J) with J = ∂f/∂a per sample and H_out = ∂²ℓ/∂f²
  (positive semi-definite; equals the Hessian when f is linear in a).
* ``fisher``: the empirical Fisher (1/N) Σ_n (∂ℓ_n/∂a_i)².
* ``hutchinson``: E_z[z ⊙ Hz] with Rademacher z (Hessian-vector products; unbiased).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call, grad, hessian, jacrev, vmap

from ._common import LossFn, batches, dense_copy, prunable_layers, resolve_loss

__all__ = ["exact", "gauss_newton", "fisher", "hutchinson", "diagonal", "ESTIMATORS"]


def _setup(model: nn.Module, layers: Iterable[str] | None):
    m = dense_copy(model)
    m.eval()
    names = [n for n, _ in prunable_layers(m, layers)]
    base = {k: v.detach() for k, v in m.named_parameters()}
    base.update({k: v.detach() for k, v in m.named_buffers()})
    keys = [f"{n}.weight" if n else "weight" for n in names]
    ws = {k: base[k].clone() for k in keys}
    return m, names, keys, base, ws


def _full_loss(m, base, loss: LossFn, X, y) -> Callable[[dict], torch.Tensor]:
    def f(ws: dict) -> torch.Tensor:
        return loss(functional_call(m, {**base, **ws}, (X,)), y)
    return f


def exact(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
          layers: Iterable[str] | None = None, max_weights: int = 20_000) -> dict[str, torch.Tensor]:
    """Exact diagonal ∂²L/∂a_i² by double back-propagation, one weight at a time.

    That is one backward pass per weight: above ``max_weights`` weights it refuses (raise the
    limit to insist, or use ``gauss_newton`` / ``fisher`` / ``hutchinson``).
    """
    loss = resolve_loss(loss)
    m, names, keys, base, ws = _setup(model, layers)
    n = sum(v.numel() for v in ws.values())
    if n > max_weights:
        raise ValueError(f"the exact Hessian diagonal needs one backward pass per weight ({n} > max_weights="
                         f"{max_weights}); use hessian='gauss_newton', 'fisher' or 'hutchinson', or raise max_weights")
    ws = {k: v.requires_grad_(True) for k, v in ws.items()}
    g = torch.autograd.grad(_full_loss(m, base, loss, X, y)(ws), list(ws.values()), create_graph=True)
    out = {}
    for name, key, gk in zip(names, keys, g):
        w, flat, d = ws[key], gk.reshape(-1), torch.zeros(ws[key].numel())
        for i in range(flat.numel()):
            row = torch.autograd.grad(flat[i], w, retain_graph=True, allow_unused=True)[0]
            d[i] = 0.0 if row is None else row.reshape(-1)[i]
        out[name] = d.view_as(w).detach()
    return out


def gauss_newton(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
                 layers: Iterable[str] | None = None, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Gauss-Newton diagonal (1/N) Σ_n Σ_cd J_nci·[H_out]_ncd·J_ndi, per-sample Jacobians by ``vmap``."""
    loss = resolve_loss(loss)
    m, names, keys, base, ws = _setup(model, layers)

    def out1(w: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(m, {**base, **w}, (x[None],))[0]

    def loss1(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return loss(o[None], t[None])

    acc = {k: torch.zeros_like(v) for k, v in ws.items()}
    for sl in batches(X.shape[0], batch_size):
        xb, yb = X[sl], y[sl]
        J = vmap(jacrev(out1), in_dims=(None, 0))(ws, xb)            # name -> (B, C, *w.shape)
        O = vmap(out1, in_dims=(None, 0))(ws, xb)                    # (B, C)
        H = vmap(hessian(loss1))(O, yb)                              # (B, C, C)
        for k in keys:
            j = J[k].flatten(2)                                      # (B, C, P)
            acc[k] += (j * torch.einsum("bcd,bdp->bcp", H, j)).sum((0, 1)).view_as(acc[k])
    return {n: acc[k] / X.shape[0] for n, k in zip(names, keys)}


def fisher(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
           layers: Iterable[str] | None = None, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Empirical Fisher diagonal (1/N) Σ_n (∂ℓ_n/∂a_i)², per-sample gradients by ``vmap``."""
    loss = resolve_loss(loss)
    m, names, keys, base, ws = _setup(model, layers)

    def loss1(w: dict, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(m, {**base, **w}, (x[None],)), t[None])

    acc = {k: torch.zeros_like(v) for k, v in ws.items()}
    for sl in batches(X.shape[0], batch_size):
        g = vmap(grad(loss1), in_dims=(None, 0, 0))(ws, X[sl], y[sl])
        for k in keys:
            acc[k] += (g[k] ** 2).sum(0)
    return {n: acc[k] / X.shape[0] for n, k in zip(names, keys)}


def hutchinson(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
               layers: Iterable[str] | None = None, n_samples: int = 100, seed: int = 0,
               chunk: int = 64) -> dict[str, torch.Tensor]:
    """Hutchinson's estimator diag(H) ≈ (1/S) Σ_s z_s ⊙ (H z_s), z_s ∈ {−1, +1}ⁿ (Bekas et al., 2007).

    ``chunk`` Hessian-vector products are computed at once (batched double backward).
    """
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer (Hessian-vector products per batch), got {chunk!r}")
    loss = resolve_loss(loss)
    m, names, keys, base, ws = _setup(model, layers)
    ws = {k: v.requires_grad_(True) for k, v in ws.items()}
    params = [ws[k] for k in keys]
    g = torch.autograd.grad(_full_loss(m, base, loss, X, y)(ws), params, create_graph=True)
    gen = torch.Generator().manual_seed(seed)
    acc = [torch.zeros_like(p) for p in params]
    for start in range(0, n_samples, chunk):
        b = min(chunk, n_samples - start)
        zs = [(torch.randint(0, 2, (b, *p.shape), generator=gen) * 2 - 1).to(p) for p in params]
        hz = torch.autograd.grad(g, params, grad_outputs=zs, retain_graph=True, is_grads_batched=True)
        for a, z, h in zip(acc, zs, hz):
            a += (z * h).sum(0)
    return {n: (a / n_samples).detach() for n, a in zip(names, acc)}


ESTIMATORS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "exact": exact, "gauss_newton": gauss_newton, "fisher": fisher, "hutchinson": hutchinson,
}


def diagonal(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
             method: str = "gauss_newton", layers: Iterable[str] | None = None, **kwargs) -> dict[str, torch.Tensor]:
    """Dispatch to one of :data:`ESTIMATORS` by name."""
    if method not in ESTIMATORS:
        raise ValueError(f"unknown Hessian estimator {method!r}; use one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[method](model, X, y, loss, layers, **kwargs)
