r"""B-splines as pure functions on tensors (lecture §6.2: :math:`\phi(x) = \sum_j c_j B_j(x)`).

Conventions used throughout ``nnlab.kan``:

* A spline of order ``k`` (degree ``k``; ``k = 3`` is cubic) on ``G`` grid intervals lives on an
  *extended* knot vector ``t_0 < t_1 < ... < t_{G+2k}`` (``G + 2k + 1`` knots): the ``G + 1`` grid
  points plus ``k`` extra knots on each side. It has ``n_basis = G + k`` basis functions
  :math:`B_0 \dots B_{G+k-1}`.
* Knots are stored per input: ``knots`` has shape ``(in_dim, n_knots)``, and ``x`` has shape
  ``(batch, in_dim)``; input ``i`` uses row ``knots[i]``.
* Cox–de Boor recursion, with half-open spans :math:`[t_m, t_{m+1})`:

  .. math::
     B_{m,0}(x) = 1[t_m \le x < t_{m+1}], \qquad
     B_{m,p}(x) = \frac{x - t_m}{t_{m+p} - t_m} B_{m,p-1}(x)
                + \frac{t_{m+p+1} - x}{t_{m+p+1} - t_{m+1}} B_{m+1,p-1}(x).

  So every basis function is **zero outside** ``[t_0, t_{G+2k})``; inside the grid
  ``[t_k, t_{G+k})`` the basis sums to one (partition of unity).
* Derivative: :math:`B'_{m,p} = p\,[B_{m,p-1}/(t_{m+p}-t_m) - B_{m+1,p-1}/(t_{m+p+1}-t_{m+1})]`.

Two evaluation routes give the same numbers:

* :func:`cox_de_boor` / :func:`cox_de_boor_derivative`: the textbook dense recursion, an oracle.
* :func:`local_basis` (any knots) and :func:`local_basis_uniform` (closed form on a uniform grid):
  only the ``k + 1`` basis functions that are non-zero at each point (index of the first one and
  their values), as used by the fast layer. :func:`to_dense` scatters them into ``(batch, in, n_basis)``.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = [
    "n_basis", "uniform_knots", "extend_knots", "cox_de_boor", "cox_de_boor_derivative",
    "local_basis", "local_basis_uniform", "to_dense", "basis", "basis_derivative", "evaluate",
    "fit_coefficients", "uniform_basis_matrix", "is_uniform",
]


def n_basis(n_knots: int, k: int) -> int:
    """Number of order-``k`` basis functions on ``n_knots`` knots: ``n_knots - k - 1``."""
    return n_knots - k - 1


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"spline order k must be an integer >= 1 (3 = cubic), got {k!r}")


def uniform_knots(lo: float, hi: float, grid: int, k: int, *, dtype: torch.dtype | None = None,
                  device=None) -> torch.Tensor:
    """Extended uniform knots ``lo - k·h, ..., hi + k·h`` with ``h = (hi - lo) / grid``.

    Returns a 1-D tensor of ``grid + 2k + 1`` knots.
    """
    if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool) or grid < 1:
        raise ValueError(f"grid (number of intervals) must be an integer >= 1, got {grid!r}")
    _check_k(k)
    if not (float(hi) > float(lo)):
        raise ValueError(f"grid_range must satisfy lo < hi, got ({lo}, {hi})")
    h = (float(hi) - float(lo)) / grid
    j = torch.arange(-k, grid + k + 1, dtype=torch.float64, device=device)
    return (float(lo) + j * h).to(dtype or torch.get_default_dtype())


def extend_knots(grid_points: torch.Tensor, k: int) -> torch.Tensor:
    """Add ``k`` knots on each side of ``grid_points`` (..., G+1), spaced ``(last - first) / G``.

    This is the KAN paper's extension of a (possibly non-uniform) grid; returns (..., G+2k+1).
    """
    _check_k(k)
    g = grid_points.shape[-1] - 1
    if g < 1:
        raise ValueError("grid_points needs at least 2 points along its last axis")
    h = (grid_points[..., -1:] - grid_points[..., :1]) / g
    steps = torch.arange(1, k + 1, dtype=grid_points.dtype, device=grid_points.device)
    left = grid_points[..., :1] - h * steps.flip(0)
    right = grid_points[..., -1:] + h * steps
    return torch.cat([left, grid_points, right], dim=-1)


def _as_2d(x: torch.Tensor, knots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Accept 1-D ``x`` with 1-D ``knots`` as a single input; return (batch, in), (in, n), flag."""
    if knots.ndim == 1:
        if x.ndim != 1:
            raise ValueError("with 1-D knots, x must be 1-D (n_points,)")
        return x[:, None], knots[None, :], True
    if x.ndim != 2 or knots.ndim != 2 or x.shape[1] != knots.shape[0]:
        raise ValueError(f"x must be (batch, in_dim) and knots (in_dim, n_knots); got "
                         f"{tuple(x.shape)} and {tuple(knots.shape)}")
    return x, knots, False


def cox_de_boor(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """Dense Cox–de Boor basis (the reference). x (batch, in), knots (in, n) -> (batch, in, n-k-1).

    1-D ``x`` (n,) with 1-D knots gives (n, n_basis).
    """
    _check_k(k)
    x2, t, one = _as_2d(x, knots)
    xe = x2[:, :, None]
    t = t[None]
    b = ((xe >= t[..., :-1]) & (xe < t[..., 1:])).to(x2.dtype)
    for p in range(1, k + 1):
        left = (xe - t[..., : -(p + 1)]) / (t[..., p:-1] - t[..., : -(p + 1)])
        right = (t[..., p + 1:] - xe) / (t[..., p + 1:] - t[..., 1:-p])
        b = left * b[..., :-1] + right * b[..., 1:]
    return b[:, 0] if one else b


def cox_de_boor_derivative(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """d/dx of :func:`cox_de_boor`, same shapes (the textbook derivative formula)."""
    _check_k(k)
    x2, t, one = _as_2d(x, knots)
    lower = cox_de_boor(x2, t, k - 1) if k > 1 else \
        ((x2[:, :, None] >= t[None, :, :-1]) & (x2[:, :, None] < t[None, :, 1:])).to(x2.dtype)
    d1 = t[None, :, k:-1] - t[None, :, : -(k + 1)]
    d2 = t[None, :, k + 1:] - t[None, :, 1:-k]
    d = k * (lower[..., :-1] / d1 - lower[..., 1:] / d2)
    return d[:, 0] if one else d


def local_basis(x: torch.Tensor, knots: torch.Tensor, k: int, derivative: bool = False):
    """The ``k+1`` basis functions that can be non-zero at each point, for any increasing knots.

    Finds the span ``s`` with ``t_s <= x < t_{s+1}`` (binary search) and runs the triangular
    de Boor recursion on that span only (The NURBS Book, algorithm A2.2).

    Args:
        x: (batch, in_dim). knots: (in_dim, n_knots), strictly increasing rows.
    Returns:
        ``first`` (batch, in) long: index of the first basis function, ``first = s - k``;
        ``values`` (batch, in, k+1): :math:`B_{first+r}(x)`; with ``derivative=True`` also
        ``dvalues`` (batch, in, k+1). Entries whose index falls outside ``[0, n_basis)`` (and all
        entries for x outside the knots) are zero.
    """
    _check_k(k)
    x, knots, _ = _as_2d(x, knots)
    n = knots.shape[1]
    nb = n_basis(n, k)
    s = torch.searchsorted(knots, x.t().contiguous(), right=True).t() - 1  # (batch, in)
    inside = (s >= 0) & (s <= n - 2)
    s = s.clamp(0, n - 2)
    # pad k virtual knots each side so that t_{s+1-j}, t_{s+j} always exist
    h0 = knots[:, 1:2] - knots[:, :1]
    h1 = knots[:, -1:] - knots[:, -2:-1]
    steps = torch.arange(1, k + 1, dtype=knots.dtype, device=knots.device)
    padded = torch.cat([knots[:, :1] - h0 * steps.flip(0), knots, knots[:, -1:] + h1 * steps], 1)
    pt = padded.t()  # (n + 2k, in)
    col = torch.arange(x.shape[1], device=x.device)
    left = [None] + [x - pt[s + k + 1 - j, col] for j in range(1, k + 1)]
    right = [None] + [pt[s + k + j, col] - x for j in range(1, k + 1)]
    N = [torch.ones_like(x)]
    lower = N
    for j in range(1, k + 1):
        if j == k:
            lower = list(N)
        saved = torch.zeros_like(x)
        new = []
        for r in range(j):
            temp = N[r] / (right[r + 1] + left[j - r])
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        new.append(saved)
        N = new
    first = s - k
    idx = first[..., None] + torch.arange(k + 1, device=x.device)
    valid = inside[..., None] & (idx >= 0) & (idx < nb)
    values = torch.stack(N, -1) * valid
    if not derivative:
        return first, values
    dv = []
    for r in range(k + 1):
        term = torch.zeros_like(x)
        if r >= 1:
            term = term + lower[r - 1] / (right[r] + left[k - r + 1])
        if r <= k - 1:
            term = term - lower[r] / (right[r + 1] + left[k - r])
        dv.append(k * term)
    return first, values, torch.stack(dv, -1) * valid


@functools.lru_cache(maxsize=None)
def _uniform_matrix_np(k: int) -> np.ndarray:
    """Rows p, columns r: :math:`B_{s-k+r}(x) = \\sum_p M[p, r] f^p` on span s, f = (x - t_s)/h."""
    P = np.polynomial.Polynomial
    f = P([0.0, 1.0])
    N = [P([1.0])]
    for j in range(1, k + 1):
        saved = P([0.0])
        new = []
        for r in range(j):
            temp = N[r] / j  # right[r+1] + left[j-r] = j·h on a uniform grid
            new.append(saved + (r + 1 - f) * temp)
            saved = (f + (j - r - 1)) * temp
        new.append(saved)
        N = new
    M = np.zeros((k + 1, k + 1))
    for r, poly in enumerate(N):
        c = poly.coef
        M[: len(c), r] = c
    return M


def uniform_basis_matrix(k: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """(k+1, k+1) coefficients of the uniform B-spline on one span in powers of f (closed form)."""
    _check_k(k)
    return torch.as_tensor(_uniform_matrix_np(int(k)), dtype=dtype, device=device)


def local_basis_uniform(x: torch.Tensor, t0: torch.Tensor, h: torch.Tensor, n_knots: int, k: int,
                        derivative: bool = False):
    """Closed-form :func:`local_basis` on uniform knots ``t0 + m·h`` (m = 0..n_knots-1) per input.

    No search and no recursion: ``u = (x - t0) / h``, ``s = floor(u)``, ``f = u - s`` and the
    ``k+1`` values are fixed polynomials in ``f`` (:func:`uniform_basis_matrix`), evaluated by
    Horner's rule. ``u`` is formed in float64 so float32 inputs keep ~1e-7 accuracy at large G.

    Args:
        x: (batch, in). t0, h: (in,) first knot and spacing. Returns as :func:`local_basis`.
    """
    _check_k(k)
    nb = n_knots - k - 1
    xd = x.double() if x.dtype != torch.float64 else x
    u = (xd - t0.double()) / h.double()
    u = u.clamp_(-1.0, float(n_knots))  # keeps huge inputs from overflowing the integer cast
    sf = u.floor()
    f = (u - sf).to(x.dtype)[..., None]
    first = sf.long() - k
    M = uniform_basis_matrix(k, x.dtype, x.device)
    vals = M[k].expand(*x.shape, k + 1)
    for p in range(k - 1, -1, -1):
        vals = torch.addcmul(M[p], vals, f)
    idx = first[..., None] + torch.arange(k + 1, device=x.device)
    valid = (idx >= 0) & (idx < nb)
    vals = vals * valid
    if not derivative:
        return first, vals
    dM = M[1:] * torch.arange(1, k + 1, dtype=x.dtype, device=x.device)[:, None]
    dv = dM[k - 1].expand(*x.shape, k + 1)
    for p in range(k - 2, -1, -1):
        dv = torch.addcmul(dM[p], dv, f)
    dv = dv * valid / h.to(x.dtype)[:, None]
    return first, vals, dv


def to_dense(first: torch.Tensor, values: torch.Tensor, nb: int) -> torch.Tensor:
    """Scatter local values (batch, in, k+1) into the dense basis (batch, in, nb); differentiable."""
    kp1 = values.shape[-1]
    idx = first[..., None] + torch.arange(kp1, device=first.device)
    valid = (idx >= 0) & (idx < nb)
    idx = torch.where(valid, idx, torch.full_like(idx, nb))  # park invalid ones in a spare slot
    out = values.new_zeros(*values.shape[:-1], nb + 1)
    out = out.scatter(-1, idx, values * valid)
    return out[..., :nb]


def is_uniform(knots: torch.Tensor, rtol: float = 1e-5) -> bool:
    """True if every row of ``knots`` (in, n) is equally spaced (to ``rtol`` of the spacing)."""
    d = knots[..., 1:] - knots[..., :-1]
    return bool(((d - d[..., :1]).abs() <= rtol * d[..., :1].abs()).all())


def basis(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """Dense basis (batch, in, n_basis) via the local route (fast); equals :func:`cox_de_boor`."""
    x2, t, one = _as_2d(x, knots)
    first, vals = local_basis(x2, t, k)
    out = to_dense(first, vals, n_basis(t.shape[1], k))
    return out[:, 0] if one else out


def basis_derivative(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """Dense d/dx of the basis (batch, in, n_basis) via the local route."""
    x2, t, one = _as_2d(x, knots)
    first, _, dv = local_basis(x2, t, k, derivative=True)
    out = to_dense(first, dv, n_basis(t.shape[1], k))
    return out[:, 0] if one else out


def evaluate(x: torch.Tensor, knots: torch.Tensor, coef: torch.Tensor, k: int) -> torch.Tensor:
    r""":math:`s_i(x_i) = \sum_j c_{\dots,i,j} B_j(x_i)`: x (batch, in), coef (..., in, n_basis).

    Returns (batch, ..., in); e.g. coef (out, in, n_basis) gives per-edge values (batch, out, in).
    1-D x with 1-D knots and coef (..., n_basis) gives (n, ...).
    """
    if knots.ndim == 1:
        return evaluate(x[:, None], knots[None], coef[..., None, :], k)[..., 0]
    B = basis(x, knots, k)
    if coef.shape[-2:] != B.shape[-2:]:
        raise ValueError(f"coef must end in (in_dim, n_basis) = {tuple(B.shape[-2:])}, "
                         f"got {tuple(coef.shape)}")
    lead = coef.shape[:-2]
    c = coef.reshape(-1, *coef.shape[-2:])
    y = torch.einsum("bij,oij->boi", B, c)
    return y.reshape(x.shape[0], *lead, x.shape[1])


def fit_coefficients(x: torch.Tensor, y: torch.Tensor, knots: torch.Tensor, k: int,
                     ridge: float = 1e-10) -> torch.Tensor:
    r"""Least-squares coefficients: :math:`\min_c \sum_b (\sum_j c_j B_j(x_{b,i}) - y_{b,\dots,i})^2`.

    Solved per input in float64 by the normal equations with a tiny ridge
    (``ridge`` × mean diagonal) so that basis functions with few samples stay finite.

    Args:
        x: (batch, in); y: (batch, ..., in) targets; knots (in, n_knots).
    Returns:
        coef (..., in, n_basis) in ``y``'s dtype, such that ``evaluate(x, knots, coef, k) ≈ y``.
    """
    if knots.ndim == 1:
        return fit_coefficients(x[:, None], y[..., None], knots[None], k, ridge)[..., 0, :]
    if y.shape[0] != x.shape[0] or y.shape[-1] != x.shape[1]:
        raise ValueError(f"y must be (batch, ..., in) matching x {tuple(x.shape)}, got {tuple(y.shape)}")
    A = basis(x.double(), knots.double(), k).permute(1, 0, 2)  # (in, batch, nb)
    lead = y.shape[1:-1]
    Y = y.double().reshape(y.shape[0], -1, y.shape[-1]).permute(2, 0, 1)  # (in, batch, L)
    AtA = A.transpose(1, 2) @ A
    lam = ridge * AtA.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-300)
    eye = torch.eye(AtA.shape[-1], dtype=AtA.dtype, device=AtA.device)
    c = torch.linalg.solve(AtA + lam[:, None, None] * eye, A.transpose(1, 2) @ Y)  # (in, nb, L)
    c = c.permute(2, 0, 1).reshape(*lead, x.shape[1], A.shape[-1])
    return c.to(y.dtype)
