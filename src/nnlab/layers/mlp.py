"""Multilayer perceptron (lecture §2.4–§2.5): X_{i+1} = σ(X_i·A_i + b_i), then a linear head.

Layout (the contract other parts of nnlab build on)::

    MLP(sizes=[d0, d1, ..., dL]) is an nn.Sequential with L children:
      child i < L-1 : nn.Sequential(nn.Linear(d_i, d_{i+1}), [nn.BatchNorm1d], activation, [nn.Dropout])
                      wrapped in nl.Residual(block, projection) when residual=True
                      (projection = nn.Linear(d_i, d_{i+1}, bias=False) if d_i != d_{i+1}, else None)
      child L-1     : nn.Linear(d_{L-1}, d_L), the head (no activation)

So ``mlp[:-1]`` is a feature extractor, ``mlp[-1]`` the head, and every weight is a plain
``nn.Linear``. The cures for vanishing gradients of §2.10/§4 are switches: ReLU + He init,
``batchnorm=True``, ``residual=True``.
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Callable, Sequence

from torch import nn

from .. import activations as _acts
from .. import init as _init
from .residual import Residual

__all__ = ["MLP"]


def _make_activation(activation: str | Callable[[], nn.Module]) -> nn.Module:
    if isinstance(activation, str):
        return _acts.activation(activation)
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory must return an nn.Module, got {type(module).__name__}")
        return module
    raise TypeError(f"activation must be a name ({', '.join(_acts.names())}) or a zero-argument "
                    f"callable returning an nn.Module (e.g. nn.ReLU), got {type(activation).__name__}")


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a list of layer widths such as [2, 16, 1], got "
                        f"{type(sizes).__name__}")
    out = []
    for s in sizes:
        try:
            if isinstance(s, bool):
                raise TypeError
            out.append(operator.index(s))
        except TypeError:
            raise TypeError(f"every width in sizes must be an int, got {list(sizes)}") from None
    if len(out) < 2:
        raise ValueError(f"sizes needs at least 2 widths (input and output), got {out}")
    if min(out) < 1:
        raise ValueError(f"every width in sizes must be >= 1, got {out}")
    return out


class MLP(nn.Sequential):
    """A fully connected network with widths ``sizes`` (input, hidden..., output).

    Args:
        sizes: widths, at least two positive ints, e.g. ``[2, 16, 16, 1]``.
        activation: activation name (``nl.activations.names()``) or a factory like ``nn.ReLU``;
            a fresh module per hidden layer (so each prelu has its own α). For non-default
            parameters pass a factory: ``lambda: nl.activation("leaky_relu", alpha=0.2)``.
        init: "he" (Var = 2/fan_in), "xavier" (Var = 2/(fan_in+fan_out)) or "default" (PyTorch's);
            applied to every ``nn.Linear`` including the head and projections; biases start at 0.
        batchnorm: insert ``nn.BatchNorm1d`` after each hidden ``nn.Linear``.
        residual: wrap each hidden block as ``nl.Residual`` (§4.2).
        dropout: dropout probability after each hidden activation (0 = none).

    Input (batch, sizes[0]) -> output (batch, sizes[-1]). Attribute ``.sizes`` (a list).
    """

    def __init__(self, sizes: Sequence[int], activation: str | Callable[[], nn.Module] = "relu",
                 init: str = "he", batchnorm: bool = False, residual: bool = False,
                 dropout: float = 0.0) -> None:
        sizes = _check_sizes(sizes)
        if init not in _init.SCHEMES:
            raise ValueError(f"unknown init scheme {init!r}; valid: {', '.join(_init.SCHEMES)}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if isinstance(activation, str):
            _acts.get(activation)  # fail early with the list of valid names
        children: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
            parts: list[nn.Module] = [nn.Linear(d_in, d_out)]
            if batchnorm:
                parts.append(nn.BatchNorm1d(d_out))
            parts.append(_make_activation(activation))
            if dropout > 0:
                parts.append(nn.Dropout(dropout))
            block: nn.Module = nn.Sequential(*parts)
            if residual:
                proj = nn.Linear(d_in, d_out, bias=False) if d_in != d_out else None
                block = Residual(block, projection=proj)
            children.append(block)
        children.append(nn.Linear(sizes[-2], sizes[-1]))
        super().__init__(*children)
        self.sizes = sizes
        _init.initialize_(self, init)

    def __getitem__(self, idx: int | slice) -> nn.Module:
        """``mlp[i]`` is a child; ``mlp[a:b]`` a plain ``nn.Sequential`` of those children
        (e.g. ``mlp[:-1]``, the feature extractor) sharing their parameters."""
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)
