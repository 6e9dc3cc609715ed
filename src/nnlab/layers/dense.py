"""The basic learnable transformation with its explicit backward (lecture §2.5–§2.7).

Forward on a batch X of shape (batch, n_in), weights A (n_in, n_out), bias b (n_out,)::

    M = X·A,   S = M + b,   Y = f(S)

Backward, given ∂L/∂Y (batch, n_out), exactly the formulas of §2.7::

    ∂L/∂S = ∂L/∂Y ⊙ f'(S)          (f' the analytic derivative from nnlab.activations)
    ∂L/∂b = Σ_batch ∂L/∂S          (b is shared by the batch)
    ∂L/∂A = Xᵀ · ∂L/∂S             (∂L/∂M = ∂L/∂S)
    ∂L/∂X = ∂L/∂S · Aᵀ

For an activation with learnable parameters (prelu's α) the backward also returns
∂L/∂α = Σ ∂L/∂Y ⊙ ∂f/∂α(S), with ∂f/∂α from the activation's spec (prelu: min(S, 0)).
:func:`dense_forward` and :func:`dense_backward` are the pure math; :class:`DenseFunction` wires
them into autograd and :class:`Dense` holds the parameters.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .. import activations as _acts
from .. import init as _init

__all__ = ["dense_forward", "dense_backward", "DenseFunction", "Dense"]

Tensor = torch.Tensor


def dense_forward(X: Tensor, A: Tensor, b: Tensor | None, spec: _acts.ActivationSpec,
                  params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Y = f(X·A + b) (§2.5). Shapes: X (batch, n_in), A (n_in, n_out), b (n_out,). Returns (Y, S)."""
    S = X @ A if b is None else torch.addmm(b, X, A)  # addmm: S = b + X·A in one kernel
    return spec.raw_fn(S, **params), S


def dense_backward(dY: Tensor, X: Tensor, A: Tensor, S: Tensor, spec: _acts.ActivationSpec,
                   params: dict[str, Any], needs: tuple[bool, bool, bool] = (True, True, True),
                   ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor]:
    """The §2.7 backward. Returns (∂L/∂X, ∂L/∂A, ∂L/∂b, ∂L/∂S) for ∂L/∂Y = ``dY`` (batch, n_out).

    ``needs`` = which of (∂L/∂X, ∂L/∂A, ∂L/∂b) to compute; the others come back as None.
    """
    dS = dY * spec.raw_derivative(S, **params)               # ∂L/∂S = ∂L/∂Y ⊙ f'(S)
    db = dS.sum(dim=0) if needs[2] else None                 # ∂L/∂b = Σ_batch ∂L/∂S
    dA = X.transpose(0, 1) @ dS if needs[1] else None        # ∂L/∂A = Xᵀ·∂L/∂M, ∂L/∂M = ∂L/∂S
    dX = dS @ A.transpose(0, 1) if needs[0] else None        # ∂L/∂X = ∂L/∂M·Aᵀ
    return dX, dA, db, dS


class DenseFunction(torch.autograd.Function):
    """autograd wrapper: ``DenseFunction.apply(X, A, b, spec, static_params, *learnable)``.

    ``learnable`` are the activation's learnable parameter tensors in ``spec.learnable`` order.
    Once differentiable (no double backward).
    """

    @staticmethod
    def forward(ctx, X, A, b, spec, static, *learnable):  # type: ignore[override]
        params = {**static, **dict(zip(spec.learnable, learnable))}
        Y, S = dense_forward(X, A, b, spec, params)
        ctx.spec, ctx.static, ctx.has_bias = spec, static, b is not None
        ctx.save_for_backward(X, A, S, *learnable)
        return Y

    @staticmethod
    @once_differentiable
    def backward(ctx, dY):  # type: ignore[override]
        X, A, S, *learnable = ctx.saved_tensors
        spec = ctx.spec
        params = {**ctx.static, **dict(zip(spec.learnable, learnable))}
        need = ctx.needs_input_grad
        dX, dA, db, _ = dense_backward(dY, X, A, S, spec, params,
                                       needs=(need[0], need[1], ctx.has_bias and need[2]))
        d_learn = []
        for name, p in zip(spec.learnable, learnable):
            g = (dY * spec.param_derivatives[name](S, **params))  # ∂L/∂α = Σ ∂L/∂Y ⊙ ∂f/∂α(S)
            d_learn.append(g.sum().reshape(p.shape) if p.numel() == 1 else g.sum(dim=0).reshape(p.shape))
        return (dX, dA, db, None, None, *d_learn)


class Dense(nn.Module):
    """Y = f(X·A + b) with the hand-written backward of §2.7 (the teaching layer).

    Args:
        n_in, n_out: widths; ``A`` has shape (n_in, n_out) as in the lecture (note: ``nn.Linear``
            stores the transpose), ``b`` has shape (n_out,).
        activation: a name from ``nl.activations.names()``.
        init: "he" (Var = 2/n_in), "xavier" (Var = 2/(n_in+n_out)) or "default" (PyTorch's
            U(-1/sqrt(n_in), 1/sqrt(n_in))); the bias starts at zero for he/xavier.
        bias: whether to learn b.
        activation_params: parameters of the activation, e.g. ``{"alpha": 0.1}``.

    Input (batch, n_in) -> output (batch, n_out). With ``activation="prelu"`` the slope α is a
    learnable parameter (``layer.activation.alpha``) whose gradient is computed in the same
    explicit backward (∂f/∂α = min(S, 0)). ``step`` has derivative 0, so nothing trains through it.
    """

    def __init__(self, n_in: int, n_out: int, activation: str = "relu", init: str = "he",
                 bias: bool = True, activation_params: dict[str, Any] | None = None) -> None:
        super().__init__()
        for nm, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{nm} must be a positive integer, got {v!r}")
        if init not in _init.SCHEMES:
            raise ValueError(f"unknown init scheme {init!r}; valid: {', '.join(_init.SCHEMES)}")
        self.n_in, self.n_out, self.init = n_in, n_out, init
        self.activation = _acts.activation(activation, **(activation_params or {}))
        self.A = nn.Parameter(torch.empty(n_in, n_out))
        self.b = nn.Parameter(torch.empty(n_out)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw A (and b) according to ``self.init``."""
        with torch.no_grad():
            if self.init == "he":
                _init.he_(self.A.T)  # A is (n_in, n_out); its transpose has nn.Linear's layout
            elif self.init == "xavier":
                _init.xavier_(self.A.T)
            else:
                bound = self.n_in ** -0.5
                self.A.uniform_(-bound, bound)
            if self.b is not None:
                if self.init == "default":
                    self.b.uniform_(-self.n_in ** -0.5, self.n_in ** -0.5)
                else:
                    self.b.zero_()

    def forward(self, X: Tensor) -> Tensor:
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"Dense expects a torch.Tensor of shape (batch, {self.n_in}), "
                            f"got {type(X).__name__}")
        if X.ndim != 2 or X.shape[1] != self.n_in:
            hint = " (a single sample? use X.reshape(1, -1))" if X.ndim == 1 else ""
            raise ValueError(f"Dense expects X of shape (batch, {self.n_in}) but got "
                             f"{tuple(X.shape)}{hint}")
        if X.dtype != self.A.dtype:
            raise TypeError(f"X has dtype {X.dtype} but the layer's weights are {self.A.dtype}; "
                            f"convert one of them (X.to({self.A.dtype}) or layer.to({X.dtype}))")
        act = self.activation
        return DenseFunction.apply(X, self.A, self.b, act.spec, act.static, *act.learnable_params())

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, bias={self.b is not None}, init={self.init}"
