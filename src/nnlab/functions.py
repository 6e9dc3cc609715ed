"""One registry of functions: each with its value, analytic derivative and sympy form.

The activations of lecture §3 (``nl.activation``, :mod:`nnlab.activations`) and the library of
simple functions that KAN edges are matched against in §6.3 (``nl.symbolic.LIBRARY``) are the same
concept, a name → (f, f', sympy form) table, so they live in one registry of
:class:`FunctionSpec`. A spec says where it serves: ``activation=True`` puts it in
``nl.activations.names()``, a ``complexity`` (with its safe ``domain``) in the symbolic library;
``tanh`` and ``arctan`` serve both. Elementary functions that only the symbolic library uses
(``x^2``, ``1/x``, ``sqrt``, ``exp``, ``log``, ``sin`` …) are registered at the bottom of this module,
each with its derivative (tested against autograd like the activations).

Importing this module does not import sympy: sympy forms call it on first use.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["FunctionSpec", "register", "function", "function_names"]

Tensor = torch.Tensor


class _LazySympy:
    """``sp.<name>`` imports sympy on first use, so ``import nnlab`` stays fast."""

    def __getattr__(self, name: str) -> Any:
        import sympy

        return getattr(sympy, name)


sp = _LazySympy()


@dataclass(frozen=True)
class FunctionSpec:
    """One function: value, analytic derivative, sympy form and parameters (lecture §3.8, §6.3).

    ``raw_fn``/``raw_derivative``/``raw_sympy`` take every parameter as a keyword; the public
    methods :meth:`fn`, :meth:`derivative` and :meth:`sympy` fill in defaults and check values.
    ``checks`` maps a parameter name to ``(predicate, "what is expected")``.
    ``learnable`` names parameters that the module holds as ``nn.Parameter`` (prelu's alpha) and
    ``param_derivatives`` gives ∂f/∂param for those.
    """

    name: str
    raw_fn: Callable[..., Tensor]
    raw_derivative: Callable[..., Tensor]
    raw_sympy: Callable[..., sp.Expr]
    formula: str
    params: dict[str, float] = field(default_factory=dict)
    checks: dict[str, tuple[Callable[[float], bool], str]] = field(default_factory=dict)
    learnable: tuple[str, ...] = ()
    param_derivatives: dict[str, Callable[..., Tensor]] = field(default_factory=dict)
    differentiable: bool = True
    activation: bool = True  # offered as an activation (nl.activation, nl.activations.names())
    # symbolic regression (lecture §6.3, step 3): complexity None keeps it out of the library
    complexity: int | None = None
    valid: Callable[[Tensor], Tensor] | None = None  # where f is defined and finite (None: all reals)
    fill: float = 0.0  # an input inside the domain, used in place of invalid ones
    domain: str = "all reals"

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown names -> ``TypeError``, bad values -> ``ValueError``."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            accepted = ", ".join(f"{k}={v}" for k, v in self.params.items()) or "no parameters"
            raise TypeError(f"activation {self.name!r} got unknown parameter(s) {unknown}; "
                            f"it accepts {accepted}")
        out = dict(self.params)
        for k, v in params.items():
            if isinstance(v, torch.Tensor):
                if v.numel() != 1 and k not in self.learnable:
                    raise ValueError(f"{self.name}: parameter {k} must be a scalar, got shape "
                                     f"{tuple(v.shape)}")
                check_val = float(v.detach().reshape(-1)[0]) if v.numel() == 1 else None
            elif isinstance(v, numbers.Real) and not isinstance(v, bool):
                check_val = float(v)
                v = float(v)
            else:
                raise TypeError(f"{self.name}: parameter {k} must be a real number, got "
                                f"{type(v).__name__} {v!r}")
            if check_val is not None:
                if not math.isfinite(check_val):
                    raise ValueError(f"{self.name}: parameter {k} must be finite, got {check_val}")
                if k in self.checks and not self.checks[k][0](check_val):
                    raise ValueError(f"{self.name}: parameter {k}={check_val} is out of range; "
                                     f"expected {self.checks[k][1]}")
            out[k] = v
        return out

    def fn(self, x: Tensor, **params: Any) -> Tensor:
        """f(x), elementwise; ``x`` a tensor of any shape."""
        return self.raw_fn(x, **self.resolve(params))

    def derivative(self, x: Tensor, **params: Any) -> Tensor:
        """Analytic f'(x) of lecture §3.8, elementwise (same shape as ``x``)."""
        return self.raw_derivative(x, **self.resolve(params))

    def param_derivative(self, name: str, x: Tensor, **params: Any) -> Tensor:
        """∂f/∂param at ``x`` for a learnable parameter (prelu: ∂f/∂alpha = min(x, 0))."""
        if name not in self.param_derivatives:
            raise ValueError(f"activation {self.name!r} has no learnable parameter {name!r}; "
                             f"learnable: {list(self.learnable) or 'none'}")
        return self.param_derivatives[name](x, **self.resolve(params))

    def sympy(self, x: sp.Symbol, **params: Any) -> sp.Expr:
        """The activation as a sympy expression in ``x`` (parameters as numbers)."""
        p = self.resolve(params)
        p = {k: (float(v.detach().reshape(-1)[0]) if isinstance(v, torch.Tensor) else v)
             for k, v in p.items()}
        return self.raw_sympy(x, **p)


_REGISTRY: dict[str, FunctionSpec] = {}


def register(spec: FunctionSpec) -> FunctionSpec:
    """Add ``spec`` to the registry under ``spec.name`` (a name may be registered once)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"function {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def function_names(*, activation: bool | None = None, symbolic: bool | None = None) -> list[str]:
    """Registered names in registration order, optionally only activations / library functions."""
    return [n for n, s in _REGISTRY.items()
            if (activation is None or s.activation == activation)
            and (symbolic is None or (s.complexity is not None) == symbolic)]


def function(name: str) -> FunctionSpec:
    """The :class:`FunctionSpec` called ``name`` (activation or library function)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown function {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# --------------------------------------------------------------------------------------------
# Elementary functions of the symbolic library (lecture §6.3). Named module-level functions (not
# lambdas), so libraries, fitted KANs and estimators pickle. Domains: where f is finite.
# --------------------------------------------------------------------------------------------
_EPS = 1e-6


def _nonzero(x: Tensor) -> Tensor: return x.abs() > _EPS
def _pos(x: Tensor) -> Tensor: return x > _EPS
def _nonneg(x: Tensor) -> Tensor: return x >= 0
def _unit_closed(x: Tensor) -> Tensor: return x.abs() <= 1
def _unit_open(x: Tensor) -> Tensor: return x.abs() < 1 - _EPS
def _tan_ok(x: Tensor) -> Tensor: return torch.cos(x).abs() > 1e-3
def _exp_ok(x: Tensor) -> Tensor: return x < 50


def _t_zero(x: Tensor) -> Tensor: return torch.zeros_like(x)
def _t_id(x: Tensor) -> Tensor: return x
def _t_one(x: Tensor) -> Tensor: return torch.ones_like(x)
def _t_sq(x: Tensor) -> Tensor: return x ** 2
def _t_cube(x: Tensor) -> Tensor: return x ** 3
def _t_quart(x: Tensor) -> Tensor: return x ** 4
def _t_inv(x: Tensor) -> Tensor: return 1 / x
def _t_inv2(x: Tensor) -> Tensor: return 1 / x ** 2
def _t_gauss(x: Tensor) -> Tensor: return torch.exp(-x ** 2)
def _d_sq(x: Tensor) -> Tensor: return 2 * x
def _d_cube(x: Tensor) -> Tensor: return 3 * x ** 2
def _d_quart(x: Tensor) -> Tensor: return 4 * x ** 3
def _d_inv(x: Tensor) -> Tensor: return -1 / x ** 2
def _d_inv2(x: Tensor) -> Tensor: return -2 / x ** 3
def _d_sqrt(x: Tensor) -> Tensor: return 0.5 / torch.sqrt(x)
def _d_rsqrt(x: Tensor) -> Tensor: return -0.5 * x ** -1.5
def _d_log(x: Tensor) -> Tensor: return 1 / x
def _d_sin(x: Tensor) -> Tensor: return torch.cos(x)
def _d_cos(x: Tensor) -> Tensor: return -torch.sin(x)
def _d_tan(x: Tensor) -> Tensor: return 1 / torch.cos(x) ** 2
def _d_arcsin(x: Tensor) -> Tensor: return 1 / torch.sqrt(1 - x ** 2)
def _d_arctanh(x: Tensor) -> Tensor: return 1 / (1 - x ** 2)
def _d_gauss(x: Tensor) -> Tensor: return -2 * x * torch.exp(-x ** 2)
def _s_zero(x: Any) -> Any: return sp.Integer(0)
def _s_id(x: Any) -> Any: return x
def _s_sq(x: Any) -> Any: return x ** 2
def _s_cube(x: Any) -> Any: return x ** 3
def _s_quart(x: Any) -> Any: return x ** 4
def _s_inv(x: Any) -> Any: return 1 / x
def _s_inv2(x: Any) -> Any: return x ** -2
def _s_sqrt(x: Any) -> Any: return sp.sqrt(x)
def _s_rsqrt(x: Any) -> Any: return 1 / sp.sqrt(x)
def _s_exp(x: Any) -> Any: return sp.exp(x)
def _s_log(x: Any) -> Any: return sp.log(x)
def _s_sin(x: Any) -> Any: return sp.sin(x)
def _s_cos(x: Any) -> Any: return sp.cos(x)
def _s_tan(x: Any) -> Any: return sp.tan(x)
def _s_asin(x: Any) -> Any: return sp.asin(x)
def _s_atanh(x: Any) -> Any: return sp.atanh(x)
def _s_abs(x: Any) -> Any: return sp.Abs(x)
def _s_sign(x: Any) -> Any: return sp.sign(x)
def _s_gauss(x: Any) -> Any: return sp.exp(-x ** 2)


def _elementary(name: str, fn: Callable, d: Callable, s: Callable, formula: str, complexity: int,
                valid: Callable | None = None, fill: float = 0.0, domain: str = "all reals",
                differentiable: bool = True) -> None:
    register(FunctionSpec(name, fn, d, s, formula, differentiable=differentiable, activation=False,
                          complexity=complexity, valid=valid, fill=fill, domain=domain))


_elementary("0", _t_zero, _t_zero, _s_zero, "f(x) = 0; f' = 0", 0)
_elementary("x", _t_id, _t_one, _s_id, "f(x) = x; f' = 1", 1)
_elementary("x^2", _t_sq, _d_sq, _s_sq, "f(x) = x²; f' = 2x", 2)
_elementary("x^3", _t_cube, _d_cube, _s_cube, "f(x) = x³; f' = 3x²", 3)
_elementary("x^4", _t_quart, _d_quart, _s_quart, "f(x) = x⁴; f' = 4x³", 3)
_elementary("1/x", _t_inv, _d_inv, _s_inv, "f(x) = 1/x; f' = -1/x²", 2, _nonzero, 1.0, "x != 0")
_elementary("1/x^2", _t_inv2, _d_inv2, _s_inv2, "f(x) = 1/x²; f' = -2/x³", 3, _nonzero, 1.0, "x != 0")
_elementary("sqrt", torch.sqrt, _d_sqrt, _s_sqrt, "f(x) = √x; f' = 1/(2√x)", 2, _nonneg, 1.0, "x >= 0")
_elementary("1/sqrt", torch.rsqrt, _d_rsqrt, _s_rsqrt, "f(x) = 1/√x; f' = -x^(-3/2)/2", 3, _pos, 1.0, "x > 0")
_elementary("exp", torch.exp, torch.exp, _s_exp, "f(x) = eˣ; f' = eˣ", 3, _exp_ok, 0.0, "x < 50 (overflow guard)")
_elementary("log", torch.log, _d_log, _s_log, "f(x) = ln x; f' = 1/x", 3, _pos, 1.0, "x > 0")
_elementary("sin", torch.sin, _d_sin, _s_sin, "f(x) = sin x; f' = cos x", 3)
_elementary("cos", torch.cos, _d_cos, _s_cos, "f(x) = cos x; f' = -sin x", 3)
_elementary("tan", torch.tan, _d_tan, _s_tan, "f(x) = tan x; f' = 1/cos²x", 4, _tan_ok, 0.0, "cos(x) != 0")
_elementary("arcsin", torch.arcsin, _d_arcsin, _s_asin, "f(x) = asin x; f' = 1/√(1-x²)", 4, _unit_closed, 0.0,
            "|x| <= 1")
_elementary("arctanh", torch.arctanh, _d_arctanh, _s_atanh, "f(x) = atanh x; f' = 1/(1-x²)", 4, _unit_open, 0.0,
            "|x| < 1")
_elementary("abs", torch.abs, torch.sign, _s_abs, "f(x) = |x|; f' = sign x (x != 0)", 4, differentiable=False)
_elementary("sgn", torch.sign, _t_zero, _s_sign, "f(x) = sign x; f' = 0 (x != 0)", 4, differentiable=False)
_elementary("gaussian", _t_gauss, _d_gauss, _s_gauss, "f(x) = exp(-x²); f' = -2x·exp(-x²)", 4)
