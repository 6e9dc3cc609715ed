"""Structured Optimal Brain Surgeon: remove whole input units of a layer (lecture §5.5, blocks).

For one ``nn.Linear`` consumer with weight rows w (and the layer-wise Hessian H = X·Xᵀ/N + λI of
its inputs, as in :mod:`nnlab.prune.obs`), removing the *set* G of inputs (columns) costs

    L_G = Σ_rows w_Gᵀ · ([H⁻¹]_GG)⁻¹ · w_G

and the optimal change of the remaining weights of every row is

    δw = −H⁻¹_{:,G} · ([H⁻¹]_GG)⁻¹ · w_G,

the lecture's L_i = a_i²/[H⁻¹]_ii and δw = −(a_i/[H⁻¹]_ii)·H⁻¹e_i with the index i replaced by
the block G (Hassibi & Stork 1993; Kurtic et al. 2022 "oBERT"). Without damping the result is
exactly the least-squares refit of the kept columns, min ‖W·X − W'·X_K‖².

A unit of a coupled group is one column of *every* layer that reads the group, so its cost is the
sum over those layers. :func:`greedy_select` removes units one at a time: the unit with the
lowest summed L_j = ‖W[:, j]‖²/[H⁻¹]_jj goes, every reading layer gets δw, and each H⁻¹ is
downdated H⁻¹ ← H⁻¹ − H⁻¹e_j·e_jᵀH⁻¹/[H⁻¹]_jj (so later costs are those of the whole block).
"""
from __future__ import annotations

import torch

__all__ = ["block_saliency", "block_update", "unit_saliency", "greedy_select"]


def block_saliency(W: torch.Tensor, Hinv: torch.Tensor, G: torch.Tensor | list[int]) -> torch.Tensor:
    """L_G = Σ_rows w_Gᵀ([H⁻¹]_GG)⁻¹w_G for W (R, d), H⁻¹ (d, d) and column indices G."""
    G = torch.as_tensor(G, dtype=torch.long)
    WG = W[:, G]
    return (WG * torch.linalg.solve(Hinv[G][:, G], WG.T).T).sum()


def block_update(W: torch.Tensor, Hinv: torch.Tensor, G: torch.Tensor | list[int]) -> torch.Tensor:
    """W + δW with δW = −W_G·([H⁻¹]_GG)⁻¹·[H⁻¹]_{G,:}; the columns G of the result are 0."""
    G = torch.as_tensor(G, dtype=torch.long)
    out = W - torch.linalg.solve(Hinv[G][:, G], W[:, G].T).T @ Hinv[G]
    out[:, G] = 0.0
    return out


def unit_saliency(W: torch.Tensor, Hinv: torch.Tensor) -> torch.Tensor:
    """L_j = ‖W[:, j]‖² / [H⁻¹]_jj for every column j (the block formula with |G| = 1)."""
    return W.pow(2).sum(0) / Hinv.diagonal()


def greedy_select(Ws: list[torch.Tensor], Hinvs: list[torch.Tensor], n_remove: int, width: int,
                  cols: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Pick ``n_remove`` of ``width`` units for the layers (W_q, H⁻¹_q) that read them, with OBS updates.

    Args:
        Ws: weights (R_q, d_q) of the reading layers (float64; bias column included if any).
        Hinvs: their damped inverse Hessians (d_q, d_q).
        n_remove: units to remove. width: units in the group.
        cols: for each layer, the column of W_q holding unit j (default: column j).

    Returns ``(removed unit indices in removal order, updated Ws, cost of each removal)``.
    """
    Ws = [W.clone() for W in Ws]
    Hinvs = [H.clone() for H in Hinvs]
    cols = cols or [torch.arange(width)] * len(Ws)
    alive = torch.ones(width, dtype=torch.bool)
    removed, costs = [], []
    for _ in range(n_remove):
        sal = torch.zeros(width, dtype=Ws[0].dtype)
        for W, H, c in zip(Ws, Hinvs, cols):
            sal += W[:, c].pow(2).sum(0) / H.diagonal()[c].clamp_min(1e-300)
        sal[~alive] = float("inf")
        j = int(sal.argmin())
        for W, H, c in zip(Ws, Hinvs, cols):
            i = int(c[j])
            hcol = H[:, i].clone()
            dii = hcol[i].clamp_min(1e-300)
            W -= torch.outer(W[:, i] / dii, hcol)                 # δw = −(w_i/[H⁻¹]_ii)·H⁻¹e_i, every row
            W[:, i] = 0.0
            H -= torch.outer(hcol, hcol) / dii                  # H⁻¹ without unit i
        alive[j] = False
        removed.append(j)
        costs.append(float(sal[j]))
    return torch.tensor(removed, dtype=torch.long), Ws, torch.tensor(costs, dtype=Ws[0].dtype)
