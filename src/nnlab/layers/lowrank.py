"""Low-rank (bottleneck) linear map n → k → m (lecture §2.9).

Instead of one matrix A ∈ R^{n×m} (n·m weights) use A₁ ∈ R^{n×k}, A₂ ∈ R^{k×m}: k(n+m) weights,
fewer when k(n+m) < n·m. :meth:`LowRank.from_dense` starts from the truncated SVD of a trained
weight W = U Σ Vᵀ: W_k = U_k Σ_k V_kᵀ is the best rank-k approximation in the Frobenius and
spectral norms (Eckart–Young), with ‖W − W_k‖_F² = Σ_{i>k} σ_i² and ‖W − W_k‖₂ = σ_{k+1}.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["truncated_svd", "LowRank"]


def _check_rank(rank: int, n: int, m: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an int, got {type(rank).__name__} {rank!r}")
    if not 1 <= rank <= min(n, m):
        raise ValueError(f"rank must be between 1 and min(n, m) = {min(n, m)} for a {n} → {m} map, "
                         f"got {rank}")
    return rank


def truncated_svd(W: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best rank-k factors of W (out, in): returns (U_k √Σ_k  (out, k), √Σ_k V_kᵀ  (k, in), σ (all)).

    Their product is W_k = U_k Σ_k V_kᵀ; the singular values σ (descending) are returned so the
    caller can read the error Σ_{i>k} σ_i².
    """
    if not isinstance(W, torch.Tensor) or W.ndim != 2:
        raise ValueError(f"W must be a 2-D tensor (out, in), got "
                         f"{tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__}")
    out_dim, in_dim = W.shape
    _check_rank(rank, in_dim, out_dim)
    if not bool(torch.isfinite(W).all()):
        raise ValueError("W contains NaN/inf; cannot factor it")
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    root = s[:rank].sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:rank], s


class LowRank(nn.Module):
    """y = up(down(x)): ``down = nn.Linear(n, rank, bias=False)``, ``up = nn.Linear(rank, m)``.

    Input (batch, n) -> output (batch, m). ``n_params`` = rank·(n + m) (+ m for the bias).
    """

    def __init__(self, n: int, m: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        for nm, v in (("n", n), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{nm} must be a positive integer, got {v!r}")
        self.n, self.m, self.rank = n, m, _check_rank(rank, n, m)
        self.down = nn.Linear(n, rank, bias=False)
        self.up = nn.Linear(rank, m, bias=bias)

    @property
    def n_params(self) -> int:
        """Number of trainable numbers: k(n + m) (+ m bias)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def weight(self) -> torch.Tensor:
        """The product matrix W_k = A₂ᵀA₁ᵀ in ``nn.Linear`` layout (m, n)."""
        return self.up.weight @ self.down.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    @classmethod
    def from_dense(cls, linear: nn.Linear | torch.Tensor, rank: int) -> "LowRank":
        """Best rank-``rank`` approximation of ``linear`` (an ``nn.Linear`` or an (out, in) weight).

        The bias, if any, is copied unchanged. Dtype and device follow the source weight.
        """
        if isinstance(linear, nn.Linear):
            W, b = linear.weight.detach(), linear.bias
        elif isinstance(linear, torch.Tensor):
            W, b = linear.detach(), None
        else:
            raise TypeError(f"from_dense expects an nn.Linear or a 2-D weight tensor, got "
                            f"{type(linear).__name__}")
        if W.ndim != 2:
            raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(W.shape)}")
        up_w, down_w, _ = truncated_svd(W, rank)
        out_dim, in_dim = W.shape
        layer = cls(in_dim, out_dim, rank, bias=b is not None).to(dtype=W.dtype, device=W.device)
        with torch.no_grad():
            layer.down.weight.copy_(down_w)
            layer.up.weight.copy_(up_w)
            if b is not None:
                layer.up.bias.copy_(b.detach())
        return layer

    def extra_repr(self) -> str:
        return f"n={self.n}, m={self.m}, rank={self.rank}"
