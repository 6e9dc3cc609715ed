"""Activation functions of lecture §3 and §4.1: each one with its analytic derivative and sympy form.

Every activation is one :class:`ActivationSpec` that keeps side by side (lecture §3.8):

* ``fn(x, **params)``: the function f(x) on a tensor (elementwise, any shape);
* ``derivative(x, **params)``: the analytic f'(x) of the lecture's table (not autograd);
* ``sympy(x_symbol, **params)``: the same function as a sympy expression (reused by the
  symbolic-regression code);
* ``params``: the default parameters, e.g. ``alpha=0.01`` for leaky ReLU.

The specs live in the one function registry of :mod:`nnlab.functions`, which the symbolic
library (``nl.symbolic.LIBRARY``) reads too: ``tanh`` and ``arctan`` are one entry each, serving
as activation and as library function.

Use::

    import nnlab as nl
    act = nl.activation("leaky_relu", alpha=0.1)       # an nn.Module
    d = nl.activations.derivative("sigmoid", x)         # sigma(x) (1 - sigma(x))
    nl.activations.get("tanh").sympy(sympy.Symbol("x"))  # tanh(x)

``prelu`` is leaky ReLU with a learnable slope: its module holds ``alpha`` as an ``nn.Parameter``
and its spec also knows ∂f/∂alpha (``param_derivative``), which :class:`nnlab.Dense` uses.
``step`` (§3.1, f(x) = [x >= 0]) is not differentiable at 0 and its derivative is 0 everywhere else;
it is marked ``differentiable=False``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import functions as _functions
from .functions import FunctionSpec as ActivationSpec
from .functions import sp

__all__ = ["ActivationSpec", "Activation", "activation", "derivative", "get", "names", "register"]

Tensor = torch.Tensor


def register(spec: ActivationSpec) -> ActivationSpec:
    """Add ``spec`` to the one function registry (:mod:`nnlab.functions`); a name may be registered once."""
    return _functions.register(spec)


def names() -> list[str]:
    """Names of the registered activations, in lecture order."""
    return _functions.function_names(activation=True)


def get(name: str) -> ActivationSpec:
    """The :class:`ActivationSpec` called ``name``; unknown -> ``ValueError`` listing valid names."""
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, got {type(name).__name__}; "
                        f"valid names: {', '.join(names())}")
    key = name.lower()
    if key not in names():
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(names())}")
    return _functions.function(key)


def derivative(name: str, x: Any, **params: Any) -> Tensor:
    """Analytic derivative f'(x) of activation ``name`` (lecture §3.8); step: 0 almost everywhere."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    return get(name).derivative(x, **params)


class Activation(nn.Module):
    """An activation as an ``nn.Module``: ``forward(x) = spec.fn(x, **params)`` (one line, pure).

    Learnable parameters of the spec (prelu's ``alpha``) are registered as ``nn.Parameter``s;
    the others are plain floats shown in ``repr``.
    """

    def __init__(self, name: str, **params: Any) -> None:
        super().__init__()
        self.spec = get(name)
        resolved = self.spec.resolve(params)
        self.static = {k: v for k, v in resolved.items() if k not in self.spec.learnable}
        for k in self.spec.learnable:
            v = resolved[k]
            t = v.detach().clone() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
            self.register_parameter(k, nn.Parameter(t.to(torch.get_default_dtype())))

    @property
    def name(self) -> str:
        return self.spec.name

    def learnable_params(self) -> tuple[Tensor, ...]:
        """Learnable parameter tensors in ``spec.learnable`` order."""
        return tuple(getattr(self, k) for k in self.spec.learnable)

    def params(self) -> dict[str, Any]:
        """All parameters (floats and learnable tensors) as keywords for the spec's functions."""
        return {**self.static, **dict(zip(self.spec.learnable, self.learnable_params()))}

    def forward(self, x: Tensor) -> Tensor:
        return self.spec.raw_fn(x, **self.params())

    def derivative(self, x: Tensor) -> Tensor:
        """Analytic f'(x) with this module's parameters."""
        return self.spec.raw_derivative(x, **self.params())

    def extra_repr(self) -> str:
        parts = [self.spec.name] + [f"{k}={v}" for k, v in self.static.items()]
        parts += [f"{k}={float(getattr(self, k).detach().reshape(-1)[0]):.4g} (learnable)"
                  for k in self.spec.learnable if getattr(self, k).numel() == 1]
        return ", ".join(parts)


def activation(name: str, **params: Any) -> Activation:
    """A fresh activation module, e.g. ``nl.activation("elu", alpha=0.5)`` (lecture §3)."""
    return Activation(name, **params)


# --------------------------------------------------------------------------------------------
# The table (lecture §3.1–§3.8, §4.1). Forward and derivative side by side.
# --------------------------------------------------------------------------------------------

def _sig(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _softplus(x: Tensor) -> Tensor:
    return torch.logaddexp(x, torch.zeros_like(x))  # ln(1 + e^x), stable for large |x|


def _pos(x: float) -> bool:
    return x > 0


def _slope(x: float) -> bool:
    return 0 <= x <= 1


register(ActivationSpec(
    "step", lambda x: (x >= 0).to(x.dtype if x.is_floating_point() else torch.get_default_dtype()),
    lambda x: torch.zeros_like(x, dtype=x.dtype if x.is_floating_point() else None),
    lambda x: sp.Heaviside(x, 1),
    "f(x) = [x >= 0]; f'(x) = 0 for x != 0 (undefined at 0)  (§3.1)",
    differentiable=False))
register(ActivationSpec(
    "sigmoid", _sig, lambda x: _sig(x) * (1 - _sig(x)), lambda x: 1 / (1 + sp.exp(-x)),
    "σ(x) = 1/(1+e^{-x}); σ'(x) = σ(x)(1-σ(x))  (§3.2)"))
def _s_tanh(x: Any) -> Any:
    return sp.tanh(x)


def _s_atan(x: Any) -> Any:
    return sp.atan(x)


register(ActivationSpec(
    "tanh", torch.tanh, lambda x: 1 - torch.tanh(x) ** 2, _s_tanh,
    "tanh(x) = 2σ(2x) - 1; tanh'(x) = 1 - tanh²(x)  (§3.3)", complexity=4))
register(ActivationSpec(
    "relu", torch.relu, lambda x: (x > 0).to(x.dtype), lambda x: sp.Max(0, x),
    "ReLU(x) = max(0, x); ReLU'(x) = [x > 0]  (§3.4)"))
register(ActivationSpec(
    "leaky_relu", lambda x, alpha: torch.where(x > 0, x, alpha * x),
    lambda x, alpha: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, alpha)),
    lambda x, alpha: sp.Piecewise((x, x > 0), (alpha * x, True)),
    "LReLU(x) = x if x > 0 else αx; LReLU'(x) = 1 if x > 0 else α  (§3.5)",
    params={"alpha": 0.01}, checks={"alpha": (_slope, "0 <= alpha <= 1")}))
register(ActivationSpec(
    "prelu", lambda x, alpha: torch.where(x > 0, x, alpha * x),
    lambda x, alpha: torch.where(x > 0, torch.ones_like(x), alpha * torch.ones_like(x)),
    lambda x, alpha: sp.Piecewise((x, x > 0), (alpha * x, True)),
    "PReLU(x) = x if x > 0 else αx, α learnable; ∂f/∂x = 1 or α, ∂f/∂α = min(x, 0)  (§3.5)",
    params={"alpha": 0.25}, learnable=("alpha",),
    param_derivatives={"alpha": lambda x, alpha: torch.clamp(x, max=0)}))
register(ActivationSpec(
    "elu", lambda x, alpha: torch.where(x >= 0, x, alpha * torch.expm1(torch.clamp(x, max=0))),
    lambda x, alpha: torch.where(x >= 0, torch.ones_like(x), alpha * torch.exp(torch.clamp(x, max=0))),
    lambda x, alpha: sp.Piecewise((x, x >= 0), (alpha * (sp.exp(x) - 1), True)),
    "ELU(x) = x if x >= 0 else α(e^x - 1); ELU'(x) = 1 or αe^x = f(x) + α  (§3.5)",
    params={"alpha": 1.0}, checks={"alpha": (_pos, "alpha > 0")}))
register(ActivationSpec(
    "softplus", _softplus, _sig, lambda x: sp.log(1 + sp.exp(x)),
    "Softplus(x) = ln(1 + e^x); Softplus'(x) = σ(x)  (§3.6)"))
register(ActivationSpec(
    "swish", lambda x, beta: x * _sig(beta * x),
    lambda x, beta: _sig(beta * x) + beta * x * _sig(beta * x) * (1 - _sig(beta * x)),
    lambda x, beta: x / (1 + sp.exp(-beta * x)),
    "Swish_β(x) = x σ(βx); Swish' = σ(βx) + βx σ(βx)(1 - σ(βx))  (§3.7)",
    params={"beta": 1.0}))
register(ActivationSpec(
    "silu", lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x))),
    lambda x: x / (1 + sp.exp(-x)),
    "SiLU(x) = x σ(x) = Swish_1; SiLU' = σ(x)(1 + x(1 - σ(x)))  (§3.7)"))
register(ActivationSpec(
    "mish", lambda x: x * torch.tanh(_softplus(x)),
    lambda x: torch.tanh(_softplus(x)) + x * (1 - torch.tanh(_softplus(x)) ** 2) * _sig(x),
    lambda x: x * sp.tanh(sp.log(1 + sp.exp(x))),
    "Mish(x) = x tanh(softplus(x)); Mish' = tanh(sp(x)) + x (1 - tanh²(sp(x))) σ(x)  (§3.7)"))
register(ActivationSpec(
    "arctan", torch.atan, lambda x: 1 / (1 + x ** 2), _s_atan,
    "atan(x); atan'(x) = 1/(1 + x²)  (§3.8)", complexity=4))
register(ActivationSpec(
    "softsign", lambda x: x / (1 + x.abs()), lambda x: 1 / (1 + x.abs()) ** 2,
    lambda x: x / (1 + sp.Abs(x)),
    "SoftSign(x) = x/(1 + |x|); SoftSign'(x) = 1/(1 + |x|)²  (§3.8)"))
register(ActivationSpec(
    "lecun_tanh", lambda x, a: torch.tanh(x) + a * x, lambda x, a: 1 - torch.tanh(x) ** 2 + a,
    lambda x, a: sp.tanh(x) + a * x,
    "f(x) = tanh(x) + a·x (LeCun 1998, linear bypass); f'(x) = 1 - tanh²(x) + a  (§4.1)",
    params={"a": 0.1}))
