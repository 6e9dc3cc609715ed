"""Exports of a discovered formula: a numpy callable, a PyTorch module, standalone Python code.

All three evaluate the same sympy expression(s) ``y = f(x)`` as ``SymbolicRegressor.predict``
does, on ``X`` of shape (n, d) (columns in the order of the estimator's variables):

- :class:`NumpyFormula` — a vectorised callable ``X -> y`` (numpy, via :func:`polish.evaluate`);
- :class:`TorchFormula` — an ``nn.Module`` whose float constants are ``nn.Parameter`` (so the
  formula can be fine-tuned by gradient descent inside a larger model); integers, rationals and
  π stay exact;
- :func:`to_code` — the text of a standalone Python function that needs only numpy.

Several targets give (n, t) outputs. A formula that still holds spline placeholders
(``phi_l_o_i``) is not closed-form and cannot be exported: that raises ``ValueError``.
"""
from __future__ import annotations

import keyword
from typing import Callable, Sequence

import numpy as np
import sympy
import torch
from torch import nn

from .polish import evaluate, parametrize

__all__ = ["NumpyFormula", "TorchFormula", "to_code", "check_closed"]


def check_closed(exprs: Sequence[sympy.Expr]) -> None:
    for e in exprs:
        if e.atoms(sympy.core.function.AppliedUndef):
            raise ValueError("the formula still has spline edges (phi_l_o_i placeholders), so it has no closed form "
                             "to export; pick a closed row of equations_ with est.pick(i)")


class NumpyFormula:
    """``f(X)``: X (n, d) -> (n,) for one formula, (n, t) for several (NaN where undefined)."""

    def __init__(self, exprs: Sequence[sympy.Expr], variables: Sequence[str], multi: bool = False) -> None:
        check_closed(exprs)
        self.exprs = list(exprs)
        self.variables = list(variables)
        self.multi = multi
        self._syms = [sympy.Symbol(v) for v in self.variables]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.variables):
            raise ValueError(f"X must have shape (n, {len(self.variables)}) (columns {', '.join(self.variables)}), "
                             f"got {X.shape}")
        cols = [evaluate(e, self._syms, X) for e in self.exprs]
        return np.column_stack(cols) if self.multi else cols[0]

    def __repr__(self) -> str:
        return f"NumpyFormula({', '.join(map(str, self.exprs))})"


# sympy function -> torch function; anything else is refused with its name
_TORCH: dict[type, Callable[..., torch.Tensor]] = {
    sympy.sin: torch.sin, sympy.cos: torch.cos, sympy.tan: torch.tan, sympy.exp: torch.exp, sympy.log: torch.log,
    sympy.tanh: torch.tanh, sympy.sinh: torch.sinh, sympy.cosh: torch.cosh, sympy.asin: torch.asin,
    sympy.acos: torch.acos, sympy.atan: torch.atan, sympy.atanh: torch.atanh, sympy.asinh: torch.asinh,
    sympy.acosh: torch.acosh, sympy.Abs: torch.abs, sympy.sign: torch.sign, sympy.erf: torch.erf,
}


class TorchFormula(nn.Module):
    """The formula(s) as a module: ``forward(X (n, d)) -> (n,)`` or (n, t); float constants are the
    parameters ``theta`` (``nn.Parameter``, float64), everything else is exact."""

    def __init__(self, exprs: Sequence[sympy.Expr], variables: Sequence[str], multi: bool = False) -> None:
        super().__init__()
        check_closed(exprs)
        self.variables = list(variables)
        self.multi = multi
        joined, consts, values = parametrize(sympy.Tuple(*exprs))
        self.exprs = list(joined)
        self._consts = [str(c) for c in consts]
        self.theta = nn.Parameter(torch.tensor(values, dtype=torch.float64))
        for e in self.exprs:  # refuse functions torch has no counterpart for, now rather than in forward
            for f in e.atoms(sympy.Function):
                if f.func not in _TORCH:
                    raise ValueError(f"cannot export {f.func.__name__} to PyTorch; supported: "
                                     f"{', '.join(sorted(k.__name__ for k in _TORCH))}")

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = torch.as_tensor(X, dtype=torch.float64)
        if X.ndim != 2 or X.shape[1] != len(self.variables):  # else extra columns were ignored silently
            raise ValueError(f"X must have shape (n, {len(self.variables)}) (columns {', '.join(self.variables)}), "
                             f"got {tuple(X.shape)}")
        env = {v: X[:, j] for j, v in enumerate(self.variables)}
        env.update({c: self.theta[k] for k, c in enumerate(self._consts)})
        outs = [torch.broadcast_to(_eval(e, env), (X.shape[0],)) for e in self.exprs]
        return torch.stack(outs, dim=1) if self.multi else outs[0]

    def extra_repr(self) -> str:
        return "; ".join(map(str, self.exprs))


def _eval(e: sympy.Basic, env: dict[str, torch.Tensor]) -> torch.Tensor:
    """Evaluate a sympy tree on tensors (Add, Mul, Pow, functions of :data:`_TORCH`, numbers)."""
    if e.is_Symbol:
        return env[str(e)]
    if e.is_Number or e.is_NumberSymbol:
        return torch.tensor(float(e), dtype=torch.float64)
    args = [_eval(a, env) for a in e.args]
    if e.is_Add:
        out = args[0]
        for a in args[1:]:
            out = out + a
        return out
    if e.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = out * a
        return out
    if e.is_Pow:
        base, ex = e.args
        if ex == sympy.S.Half:
            return torch.sqrt(args[0])
        if ex.is_Integer:
            return args[0] ** int(ex)
        return args[0] ** args[1]
    if e.func in _TORCH:
        return _TORCH[e.func](*args)
    raise ValueError(f"cannot export {type(e).__name__} to PyTorch")


def _names(variables: Sequence[str]) -> list[str]:
    """Python-safe argument names: the variable itself when it is a valid identifier, else ``x{j}``."""
    out = []
    for j, v in enumerate(variables):
        ok = v.isidentifier() and not keyword.iskeyword(v) and v not in ("np", "X", "out") and v not in out
        out.append(v if ok else f"x{j}")
    return out


def to_code(exprs: Sequence[sympy.Expr], variables: Sequence[str], name: str = "formula",
            multi: bool = False) -> str:
    """Source of a standalone ``def name(X):`` (numpy only): X (n, d) -> (n,) (or (n, t))."""
    from sympy.printing.numpy import NumPyPrinter

    check_closed(exprs)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    safe = _names(variables)
    syms = {sympy.Symbol(v): sympy.Symbol(s) for v, s in zip(variables, safe)}
    printer = NumPyPrinter()
    bodies = [printer.doprint(sympy.sympify(e).xreplace(syms)) for e in exprs]
    lines = ["import numpy", "", "", f"def {name}(X):",
             f'    """{"; ".join(str(e) for e in exprs)}', "",
             f"    X: array (n, {len(safe)}) with columns {', '.join(variables)}; returns "
             f"{'(n, ' + str(len(exprs)) + ')' if multi else '(n,)'}."
             '"""',
             "    X = numpy.asarray(X, dtype=numpy.float64)"]
    lines += [f"    {s} = X[:, {j}]" for j, s in enumerate(safe)]
    lines.append("    with numpy.errstate(all='ignore'):")
    outs = []
    for k, b in enumerate(bodies):
        lines.append(f"        y{k} = numpy.broadcast_to(numpy.asarray({b}, dtype=numpy.float64), (X.shape[0],))")
        outs.append(f"y{k}")
    lines.append(f"    return numpy.column_stack([{', '.join(outs)}])" if multi else "    return y0.copy()")
    return "\n".join(lines) + "\n"
