"""Optimal Brain Surgeon, layer by layer (Hassibi & Stork, 1993; lecture §5.5).

The lecture's saliency of weight a_i, with H the Hessian of the loss,

    L_i = a_i² / [H⁻¹]_ii,

and the update of the remaining weights that compensates its removal,

    δw = −(a_i / [H⁻¹]_ii) · H⁻¹ e_i.

For a ``nn.Linear`` layer with output ``y = W·x + b`` we use the layer-wise objective of
Optimal Brain Compression / SparseGPT (Frantar & Alistarh, 2022/2023): keep the layer's
output on calibration inputs, ‖W·X − Ŵ·X‖². Every row of W then has the same Hessian

    H = X·Xᵀ / N + λ·I     (X: inputs with a row of ones for the bias; λ: damping),

so one H⁻¹ serves all rows. The bias is never pruned but is updated by δw like any
remaining weight. Two algorithms:

* ``"exact"`` (OBC): each row is pruned greedily one weight at a time with the formulas
  above and the rank-1 downdate of H⁻¹ after every removal; the number of weights removed per
  row is chosen jointly, so rows that matter keep more. O(rows · d³); rows in chunks.
* ``"blockwise"`` (SparseGPT): columns are processed left to right in blocks; inside a block
  the mask is the lowest L_i (with [H⁻¹]_ii of the not-yet-processed columns, read from the
  Cholesky factor of H⁻¹) and each removal's δw goes to the later columns. O(d³ + rows · d²).

With ``sequential=True`` the layers are processed in forward order, each on the inputs the
*already pruned* earlier layers produce, and the target stays the dense layer's output:
first W is refit by least squares to map the new inputs to the old outputs, then pruned.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Iterable

import torch
from torch import nn

from ._common import LossFn, as_xy, check_max_samples, check_sparsity, prunable_layers
from .masks import apply_mask, weight_of

__all__ = ["obs", "layer_hessian", "damped_inverse", "obs_saliency", "obs_update", "prune_layer_exact",
           "prune_layer_blockwise"]


def layer_hessian(X: torch.Tensor) -> torch.Tensor:
    """H = Xᵀ·X / N for layer inputs X (N, d) (the factor 2 of ‖·‖² is dropped: it scales all L_i)."""
    X = X.to(torch.float64)
    return X.T @ X / X.shape[0]


def damped_inverse(H: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, float]:
    """(H + λI)⁻¹ with λ = damp · mean(diag H), and λ.

    A singular H (inputs that are always 0 or collinear) has no inverse: with ``damp=0`` a
    warning is given and the smallest damping that makes H positive definite (1e-8 relative,
    growing ×10) is used.
    """
    if damp < 0:
        raise ValueError(f"damp must be >= 0 (relative damping λ/mean(diag H)), got {damp}")
    if not bool(torch.isfinite(H).all()):  # no damping makes it positive definite: refuse, not loop
        raise ValueError("the layer Hessian X·Xᵀ holds NaN/inf (the layer's inputs overflow or are "
                         "empty); check the calibration data")
    d = H.shape[0]
    scale = float(H.diagonal().mean()) or 1.0
    eye = torch.eye(d, dtype=H.dtype)
    rel = damp
    while True:
        L, info = torch.linalg.cholesky_ex(H + rel * scale * eye)
        if int(info) == 0:
            break
        new = 1e-8 if rel == 0 else rel * 10
        if damp == 0 and rel == 0:
            warnings.warn(f"the layer Hessian X·Xᵀ ({d}x{d}) is singular (some inputs are constant or "
                          f"collinear); adding damping λ = {new:g}·mean(diag H). Pass damp > 0 to choose it.",
                          RuntimeWarning, stacklevel=3)
        rel = new
    return torch.cholesky_inverse(L), rel * scale


def obs_saliency(w: torch.Tensor, hinv_diag: torch.Tensor) -> torch.Tensor:
    """L_i = a_i² / [H⁻¹]_ii (broadcasts over rows)."""
    return w.pow(2) / hinv_diag


def obs_update(w: torch.Tensor, hinv: torch.Tensor, i: int) -> torch.Tensor:
    """δw = −(a_i / [H⁻¹]_ii) · H⁻¹ e_i for one row ``w`` (d,); after it, w_i + δw_i = 0."""
    return -(w[i] / hinv[i, i]) * hinv[:, i]


def prune_layer_exact(W: torch.Tensor, Hinv: torch.Tensor, n_prune: int, protect: torch.Tensor | None = None,
                      row_chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """OBC: greedy OBS on every row of W (R, d), ``n_prune`` removals in total, spread over rows.

    Each row is pruned completely, one weight at a time: remove the i with the smallest
    L_i = a_i²/[H⁻¹]_ii, apply δw = −(a_i/[H⁻¹]_ii)·H⁻¹e_i, downdate
    H⁻¹ ← H⁻¹ − H⁻¹e_i·e_iᵀH⁻¹/[H⁻¹]_ii; every step's loss increase L_i/2 and the row after it are
    recorded. The ``n_prune`` smallest increases (made monotone per row) then decide how many
    weights each row loses. ``protect`` (d,) bool marks columns never pruned (the bias).
    Returns the new W and the keep-mask (1 = kept).
    """
    R, d = W.shape
    protect = torch.zeros(d, dtype=torch.bool) if protect is None else protect
    cand = int((~protect).sum())
    if not 0 <= n_prune <= R * cand:
        raise ValueError(f"cannot prune {n_prune} of {R * cand} weights")
    incs, snaps, orders = [], [], []
    for a in range(0, R, row_chunk):
        Wc = W[a:a + row_chunk].clone()
        r = Wc.shape[0]
        rows = torch.arange(r)
        Hb = Hinv.expand(r, d, d).clone()
        pruned = protect.expand(r, d).clone()
        inc = torch.zeros(r, cand, dtype=W.dtype)
        snap = torch.zeros(r, cand + 1, d, dtype=W.dtype)
        order = torch.zeros(r, cand, dtype=torch.long)
        snap[:, 0] = Wc
        for s in range(cand):
            diag = Hb.diagonal(dim1=1, dim2=2)
            sal = obs_saliency(Wc, diag).masked_fill(pruned, float("inf"))
            i = sal.argmin(1)
            dii = diag[rows, i].clone()
            col = Hb[rows, :, i].clone()                                  # H⁻¹e_i, (r, d)
            inc[:, s] = sal[rows, i] / 2
            Wc -= (Wc[rows, i] / dii)[:, None] * col                      # δw
            Wc[rows, i] = 0.0
            Hb.baddbmm_((col / dii[:, None])[:, :, None], col[:, None, :], alpha=-1.0)
            pruned[rows, i] = True
            order[:, s] = i
            snap[:, s + 1] = Wc
        incs.append(inc), snaps.append(snap), orders.append(order)
    inc, snap, order = torch.cat(incs), torch.cat(snaps), torch.cat(orders)
    key = torch.cummax(inc, dim=1).values.reshape(-1)
    chosen = torch.zeros(R * cand, dtype=torch.long)
    if n_prune:
        chosen[torch.topk(key, n_prune, largest=False).indices] = 1
    counts = chosen.view(R, cand).sum(1)
    Wn = snap[torch.arange(R), counts]
    keep = torch.ones(R, d, dtype=W.dtype)
    steps = torch.arange(cand).expand(R, cand) < counts[:, None]
    keep[torch.arange(R)[:, None].expand(R, cand)[steps], order[steps]] = 0.0
    return Wn * keep, keep


def prune_layer_blockwise(W: torch.Tensor, Hinv: torch.Tensor, sparsity: float, blocksize: int = 128,
                          protect: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT: prune the fraction ``sparsity`` of each column block of W (R, d) with OBS updates.

    With H⁻¹ = Uᵀ·U (U upper triangular), U_jj² = [H_F⁻¹]_jj for F = columns j..d−1, so
    inside the sweep L_j = w_j² / U_jj² and δw = −(w_j / U_jj)·U_{j,j:} are the lecture's
    formulas on the columns not yet processed. Returns the new W and the keep-mask.
    """
    R, d = W.shape
    protect = torch.zeros(d, dtype=torch.bool) if protect is None else protect
    W = W.clone()
    U = torch.linalg.cholesky(Hinv, upper=True)
    keep = torch.ones(R, d, dtype=W.dtype)
    for a in range(0, d, blocksize):
        b = min(a + blocksize, d)
        W1, U1 = W[:, a:b].clone(), U[a:b, a:b]
        sal = obs_saliency(W1, U1.diagonal().pow(2)).masked_fill(protect[a:b].expand(R, b - a), float("inf"))
        n_cand = R * int((~protect[a:b]).sum())
        k = int(round(sparsity * n_cand))
        m1 = torch.zeros(R * (b - a), dtype=torch.bool)
        if k:
            m1[torch.topk(sal.reshape(-1), k, largest=False).indices] = True
        m1 = m1.view(R, b - a)
        Err = torch.zeros_like(W1)
        for j in range(b - a):
            w = W1[:, j]
            err = torch.where(m1[:, j], w, torch.zeros_like(w)) / U1[j, j]
            W1[:, j:] -= err[:, None] * U1[j, j:][None, :]
            Err[:, j] = err
        W1[m1] = 0.0
        W[:, a:b] = W1
        W[:, b:] -= Err @ U[a:b, b:]
        keep[:, a:b] = (~m1).to(W.dtype)
    return W, keep


def _inputs(model: nn.Module, module: nn.Module, X: torch.Tensor) -> torch.Tensor:
    got: list[torch.Tensor] = []
    h = module.register_forward_pre_hook(lambda m, args: got.append(args[0].detach().reshape(-1, args[0].shape[-1])))
    try:
        with torch.no_grad():
            model(X)
    finally:
        h.remove()
    return torch.cat(got)


def obs(model: nn.Module, data: Any, loss: str | LossFn | None = None, sparsity: float = 0.5,
        damp: float = 0.01, algorithm: str = "blockwise", blocksize: int = 128, sequential: bool = True,
        allocation: str | dict[str, float] = "global_magnitude", layers: Iterable[str] | None = None,
        max_samples: int | None = 4096) -> nn.Module:
    """Prune the ``nn.Linear`` layers of ``model`` with layer-wise OBS, in place; returns the model.

    Per layer: H = X·Xᵀ/N + λI on its (pruned-network) inputs, remove the weights of lowest
    L_i = a_i²/[H⁻¹]_ii and move the rest (bias included) by δw = −(a_i/[H⁻¹]_ii)·H⁻¹e_i.

    Args:
        data: calibration ``(X, y)`` (or a Dataset / DataLoader); only X (n_samples, in_features)
            is used by the layer-wise objective (``y`` is checked for shape only).
        loss: accepted for a uniform signature with :func:`obd`; the layer-wise objective
            ‖W·X − Ŵ·X‖² does not need it.
        sparsity: fraction in [0, 1) of the weights to remove; ``allocation`` spreads it over layers.
        damp: λ / mean(diag H) added to the Hessian's diagonal (SparseGPT uses 0.01).
        algorithm: ``"exact"`` (OBC, greedy row by row) or ``"blockwise"`` (SparseGPT).
        blocksize: columns per block for ``"blockwise"``.
        sequential: take each layer's inputs from the network pruned so far (recommended).
        allocation: ``"uniform"`` (every layer at ``sparsity``), ``"global_magnitude"`` (the
            per-layer fractions that a global magnitude threshold would give), ``"erk"``
            (Erdős–Rényi: density ∝ (in + out)/(in·out), :func:`erk_allocation`) or a dict of
            per-layer fractions.
        layers: names of the ``nn.Linear`` modules to prune (default: all).
    """
    sparsity = check_sparsity(sparsity)
    if algorithm not in ("exact", "blockwise"):
        raise ValueError(f"algorithm must be 'exact' or 'blockwise', got {algorithm!r}")
    if not isinstance(blocksize, int) or blocksize < 1:
        raise ValueError(f"blocksize must be a positive integer, got {blocksize!r}")
    max_samples = check_max_samples(max_samples)
    mods = prunable_layers(model, layers)
    X, _ = as_xy(data, model)
    if max_samples is not None:
        X = X[:max_samples]
    fractions = _allocate(mods, sparsity, allocation)
    dense = copy.deepcopy(model)
    dense_mods = dict(dense.named_modules())
    was_training = model.training
    model.eval()
    dense.eval()
    try:
        for name, mod in mods:
            x_new = _inputs(model if sequential else dense, mod if sequential else dense_mods[name], X)
            W = weight_of(mod).to(torch.float64)
            has_b = mod.bias is not None
            Wa = torch.cat([W, mod.bias.detach().to(torch.float64)[:, None]], 1) if has_b else W
            Xa = torch.cat([x_new, torch.ones(len(x_new), 1)], 1) if has_b else x_new
            H = layer_hessian(Xa)
            Hinv, lam = damped_inverse(H, damp)
            if sequential:
                x_old = _inputs(dense, dense_mods[name], X)
                Xo = torch.cat([x_old, torch.ones(len(x_old), 1)], 1) if has_b else x_old
                # least-squares refit: W' = W·(X_old·X_newᵀ/N)·(H + λI)⁻¹ maps new inputs to old outputs
                Wa = Wa @ (Xo.to(torch.float64).T @ Xa.to(torch.float64) / len(Xa)) @ Hinv
            protect = torch.zeros(Wa.shape[1], dtype=torch.bool)
            if has_b:
                protect[-1] = True
            n_prune = int(round(fractions[name] * W.numel()))
            if algorithm == "exact":
                Wn, keep = prune_layer_exact(Wa, Hinv, n_prune, protect)
            else:
                Wn, keep = prune_layer_blockwise(Wa, Hinv, fractions[name], blocksize, protect)
            with torch.no_grad():
                if has_b:
                    mod.bias.copy_(Wn[:, -1].to(mod.bias.dtype))
                    Wn, keep = Wn[:, :-1], keep[:, :-1]
            apply_mask(mod, keep.to(W.dtype), values=(Wn * keep).to(mod.weight.dtype))
    finally:
        model.train(was_training)
    return model


def _allocate(mods: list[tuple[str, nn.Module]], sparsity: float,
              allocation: str | dict[str, float]) -> dict[str, float]:
    names = [n for n, _ in mods]
    if isinstance(allocation, dict):
        missing = [n for n in names if n not in allocation]
        if missing:
            raise ValueError(f"allocation has no fraction for layers {missing}")
        return {n: check_sparsity(allocation[n], f"allocation[{n!r}]") for n in names}
    if allocation == "uniform":
        return {n: sparsity for n in names}
    if allocation == "global_magnitude":
        flat = torch.cat([weight_of(m).abs().reshape(-1) for _, m in mods])
        k = int(round(sparsity * flat.numel()))
        if k == 0:
            return {n: 0.0 for n in names}
        thr = torch.topk(flat, k, largest=False).values.max()
        return {n: min(float((weight_of(m).abs() <= thr).float().mean()), 0.999) for n, m in mods}
    if allocation == "erk":
        return erk_allocation([tuple(weight_of(m).shape) for _, m in mods], sparsity, names)
    raise ValueError(f"allocation must be 'uniform', 'global_magnitude', 'erk' or a dict, got {allocation!r}")


def erk_allocation(shapes: list[tuple[int, int]], sparsity: float, names: list[str]) -> dict[str, float]:
    """Erdős–Rényi sparsities: layer (out, in) keeps a density ε·(in + out)/(in·out), ε set so that
    a fraction ``sparsity`` of all weights goes; a layer whose density would pass 1 stays dense
    and ε is re-solved for the rest (Mocanu et al. 2018; Evci et al. 2020, "RigL").

    Small layers (the head, the input layer) stay denser than under one global threshold, which at
    high sparsity can starve a whole layer (98 % of the digits MLP: 37 of 32768 weights left in
    its middle layer by a global magnitude threshold, ~460 by ERK)."""
    sizes = [o * i for o, i in shapes]
    raw = [(o + i) / (o * i) for o, i in shapes]
    keep_total = (1.0 - sparsity) * sum(sizes)
    dense: set[int] = set()
    while True:
        free = [k for k in range(len(shapes)) if k not in dense]
        budget = keep_total - sum(sizes[k] for k in dense)
        eps = budget / max(sum(raw[k] * sizes[k] for k in free), 1e-300)
        over = [k for k in free if eps * raw[k] > 1.0]
        if not over:
            break
        dense.update(over)
    return {n: 0.0 if k in dense else min(max(1.0 - eps * raw[k], 0.0), 0.999) for k, n in enumerate(names)}
