r"""Sparsity regularisation of a KAN (KAN paper §2.5.1; lecture §6.3, step 1 of symbolic regression).

For a layer with edge functions :math:`\phi_{o,i}` evaluated on samples :math:`x_s`:

.. math::
   |\phi|_1 = \frac{1}{N}\sum_s |\phi(x_s)|, \qquad |\Phi|_1 = \sum_{o,i} |\phi_{o,i}|_1, \qquad
   S(\Phi) = -\sum_{o,i} \frac{|\phi_{o,i}|_1}{|\Phi|_1}\log\frac{|\phi_{o,i}|_1}{|\Phi|_1}

and the penalty is :math:`\sum_l \lambda_1 |\Phi_l|_1 + \lambda_S S(\Phi_l)`, optionally plus
:math:`\lambda_c` × mean |c| and :math:`\lambda_{\Delta c}` × mean |c_{j+1} − c_j| per edge (as pykan).
"""
from __future__ import annotations

import math

import torch

__all__ = ["edge_l1", "entropy", "regularization"]

_EPS = 1e-12


def edge_l1(edges: torch.Tensor) -> torch.Tensor:
    r""":math:`|\phi_{o,i}|_1` from per-edge values (batch, out, in) -> (out, in)."""
    return edges.abs().mean(0)


def entropy(l1: torch.Tensor) -> torch.Tensor:
    r"""Entropy :math:`S` of the edge-importance distribution (out, in) -> scalar."""
    p = l1 / (l1.sum() + _EPS)
    return -(p * torch.log(p + _EPS)).sum()


def regularization(model, x: torch.Tensor, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
                   lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> torch.Tensor:
    """The penalty above for a :class:`~nnlab.kan.KAN` on inputs ``x`` (batch, width[0]); differentiable.

    Usable as ``nl.fit(..., penalty=lambda m, X: lam * m.regularization(X))``.
    """
    for name, lam in (("lamb_l1", lamb_l1), ("lamb_entropy", lamb_entropy), ("lamb_coef", lamb_coef),
                      ("lamb_coefdiff", lamb_coefdiff)):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam < math.inf:
            raise ValueError(f"{name} must be a finite number >= 0 (a weight of the penalty), got {lam!r}")
    total = x.new_zeros(()) if isinstance(x, torch.Tensor) else torch.zeros(())
    for layer_trace, layer in zip(model.trace(x), model.layers):
        l1 = edge_l1(layer_trace.edges)
        total = total + lamb_l1 * l1.sum() + lamb_entropy * entropy(l1)
        if lamb_coef:
            total = total + lamb_coef * layer.coef.abs().mean(-1).sum()
        if lamb_coefdiff:
            total = total + lamb_coefdiff * layer.coef.diff(dim=-1).abs().mean(-1).sum()
    return total
