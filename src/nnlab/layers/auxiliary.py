"""Auxiliary classifiers on intermediate layers (lecture §4.1, GoogLeNet, Szegedy et al. 2015).

Extra heads g_j read the output h_j of intermediate layers and predict the target too; their
losses are added with a weight so that a gradient reaches the early layers directly:

    L = L(f(x), y) + Σ_j w_j · L(g_j(h_j(x)), y)          (GoogLeNet: w_j = 0.3)

At inference the heads are dropped: in ``eval()`` mode the wrapper returns ``model(x)`` and does
not even run them.

How the weighted losses enter ``nl.fit``: in ``train()`` mode ``forward`` returns the main output
tensor carrying the auxiliary outputs in its attribute ``aux_outputs``; :meth:`AuxiliaryHeads.loss`
builds the ``loss(output, y)`` callable that adds them::

    aux = nl.AuxiliaryHeads(mlp, at=[0, 1], n_classes=10, weight=0.3)
    nl.fit(aux, train, val, loss=aux.loss("cross_entropy"))
    model = aux.model          # the plain network, heads dropped

Outside ``nl.fit``, :meth:`AuxiliaryHeads.forward_all` returns ``(main, [aux_1, ...])`` explicitly.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

__all__ = ["AuxiliaryHeads", "auxiliary_loss"]

def auxiliary_loss(main: torch.Tensor, aux: Sequence[torch.Tensor], y: torch.Tensor,
                   weights: Sequence[float],
                   loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """L = loss(main, y) + Σ_j w_j · loss(aux_j, y) (§4.1); every output (batch, k), y (batch,...)."""
    if len(aux) != len(weights):
        raise ValueError(f"got {len(aux)} auxiliary outputs but {len(weights)} weights")
    total = loss(main, y)
    for out, w in zip(aux, weights):
        if w:
            total = total + w * loss(out, y)
    return total


def _width_upto(model: nn.Module, name: str) -> int:
    """Width of layer ``name``'s output: the last Linear/conv met in module order up to its end."""
    width, inside = None, False
    for n, m in model.named_modules():
        if n == name:
            inside = True
        elif inside and not n.startswith(name + "."):
            break
        if isinstance(m, nn.Linear):
            width = m.out_features
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            width = m.out_channels
    if width is None:
        raise ValueError(f"cannot tell the output width of layer {name!r} (no Linear/conv layer up to "
                         "it); pass heads=[...] explicitly")
    return width


class _PoolLinear(nn.Module):
    """Default auxiliary head: global average over spatial dims (if any), then a Linear."""

    def __init__(self, width: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim > 2:  # (batch, channels, *spatial) -> (batch, channels)
            h = h.flatten(2).mean(-1)
        return self.linear(h)


class AuxiliaryHeads(nn.Module):
    """Wrap ``model`` with classifiers on intermediate layers whose losses are added in training.

    Args:
        model: the network; it is not changed (hooks are attached only during a forward call).
        at: the intermediate layers, as submodule names (``"0"``, ``"encoder.layer.2"``) or, for a
            Sequential, child indices (``[0, 1]``; negative ones count from the end).
        n_classes: output size of the default heads (``nn.Linear(width, n_classes)``, with a global
            average pool first for (batch, C, ...) outputs; width read from the layer's last
            Linear/conv). Not needed when ``heads`` is given.
        heads: one module per entry of ``at``, mapping that layer's output to a prediction.
        weight: w_j, a number for all heads or one per head (>= 0; GoogLeNet used 0.3).

    Shapes: ``forward`` (batch, ...) -> the model's output; in training mode that tensor has an
    ``aux_outputs`` attribute, a tuple of the heads' outputs.
    """

    def __init__(self, model: nn.Module, at: Sequence[int | str], n_classes: int | None = None,
                 heads: Sequence[nn.Module] | None = None,
                 weight: float | Sequence[float] = 0.3) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if isinstance(at, (int, str)):
            at = [at]
        names = [self._resolve(model, a) for a in at]
        if not names:
            raise ValueError("at is empty: name at least one intermediate layer")
        if len(set(names)) != len(names):
            raise ValueError(f"at names a layer twice: {names}")
        if heads is None:
            if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes <= 0:
                raise ValueError("give n_classes (a positive int) for the default heads, or heads=")
            heads = [_PoolLinear(_width_upto(model, n), n_classes) for n in names]
        heads = list(heads)
        if len(heads) != len(names) or not all(isinstance(h, nn.Module) for h in heads):
            raise ValueError(f"heads must be {len(names)} nn.Module(s), one per entry of at={names}")
        ws = [weight] * len(names) if isinstance(weight, (int, float)) else list(weight)
        if len(ws) != len(names) or any(isinstance(w, bool) or not isinstance(w, (int, float))
                                        or not 0 <= w < float("inf") for w in ws):
            raise ValueError(f"weight must be a finite number >= 0 or {len(names)} of them, "
                             f"got {weight!r}")
        self.model = model
        self.heads = nn.ModuleList(heads)
        self.at = tuple(names)
        self.weights = tuple(float(w) for w in ws)

    @staticmethod
    def _resolve(model: nn.Module, a: int | str) -> str:
        if isinstance(a, bool):
            raise TypeError("at entries must be layer names or child indices, got a bool")
        if isinstance(a, int):
            children = [n for n, _ in model.named_children()]
            if not -len(children) <= a < len(children):
                raise ValueError(f"at index {a} is out of range for a model with {len(children)} "
                                 "children")
            return children[a]
        if isinstance(a, str):
            try:
                model.get_submodule(a)
            except AttributeError:
                children = [n for n, _ in model.named_children()]
                raise ValueError(f"the model has no layer {a!r}; its children are {children}") from None
            return a
        raise TypeError(f"at entries must be layer names or child indices, got {type(a).__name__}")

    def forward_all(self, x: torch.Tensor) -> tuple[Any, list[torch.Tensor]]:
        """Run the model once, returning ``(main_output, [head_j(h_j) for each layer in at])``."""
        captured: dict[str, torch.Tensor] = {}
        handles = []
        try:
            for name in self.at:
                def hook(_m: nn.Module, _inp: Any, out: Any, name: str = name) -> None:
                    captured[name] = out
                handles.append(self.model.get_submodule(name).register_forward_hook(hook))
            main = self.model(x)
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.at if n not in captured]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the model's forward")
        return main, [head(captured[n]) for n, head in zip(self.at, self.heads)]

    def forward(self, x: torch.Tensor) -> Any:
        if not self.training or not any(self.weights):
            return self.model(x)
        main, aux = self.forward_all(x)
        main.aux_outputs = tuple(aux)
        return main

    def loss(self, base: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy"
             ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The ``loss(output, y)`` callable for ``nl.fit``: base loss + Σ w_j·base(aux_j, y).

        On an output without ``aux_outputs`` (evaluation) it is the base loss alone, so the
        validation loss is the main network's.
        """
        from ..training.losses import get_loss, names

        if isinstance(base, str) and base not in names():
            raise ValueError(f"base loss must be one of {names()} or a callable, got {base!r}")
        if not isinstance(base, str) and not callable(base):
            raise TypeError(f"base loss must be a name or a callable, got {type(base).__name__}")
        fn = get_loss(base).fn
        weights = self.weights

        def loss_with_aux(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            aux = getattr(output, "aux_outputs", None)
            if aux is None:
                return fn(output, y)
            return auxiliary_loss(output, aux, y, weights, fn)

        return loss_with_aux

    def extra_repr(self) -> str:
        return f"at={list(self.at)}, weights={list(self.weights)}"
