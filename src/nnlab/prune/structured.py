"""Structured pruning: remove whole hidden units (neurons), so the model really shrinks (§5.5).

A hidden unit j between ``nn.Linear`` layers L_p and L_q (with only element-wise modules and
``BatchNorm1d`` between them) is row j of L_p (and its bias), entry j of the batch-norm and
column j of L_q. Removing it drops all three. Importance of unit j:

* ``"magnitude"``: ‖W_q[:, j]‖₂ · ‖(W_p[j, :], b_p[j])‖₂ (with batch-norm, |γ_j| replaces the
  incoming norm, since BN rescales it);
* ``"taylor"``: |Σ_n a_nj · ∂L/∂a_nj|, the first-order loss change from a_j → 0
  (Molchanov et al., 2017), a = the unit's activation (the input of L_q);
* ``"obd"``: Σ_i W_q[i, j]² · H_ii / 2, the OBD saliency of all its outgoing weights
  (Gauss-Newton diagonal).

Residual blocks tie a block's width to its input's, so their units are left alone (use
:func:`residual_blocks` for them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._common import LossFn, as_xy, dense_copy, resolve_loss
from .hessian import gauss_newton

__all__ = ["neurons", "hidden_units", "NeuronReport"]

_ELEMENTWISE_WITH_PARAMS = (nn.BatchNorm1d, nn.PReLU)


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Flatten nested ``nn.Sequential``s; any other module is an opaque leaf."""
    out = []
    for n, m in module.named_children():
        path = f"{prefix}{n}"
        if type(m) is nn.Sequential:
            out += _leaves(m, path + ".")
        else:
            out.append((path, m))
    return out


def hidden_units(model: nn.Module) -> list[dict[str, Any]]:
    """The prunable hidden layers: dicts with ``inp`` (L_p name), ``out`` (L_q name), ``between``
    (names of the element-wise modules in between) and ``width``."""
    if not isinstance(model, nn.Sequential):
        return []
    leaves = _leaves(model)
    groups = []
    for p, (pname, pm) in enumerate(leaves):
        if not isinstance(pm, nn.Linear):
            continue
        between = []
        for qname, qm in leaves[p + 1:]:
            if isinstance(qm, nn.Linear):
                ok = all(_elementwise(m, pm.out_features) for _, m in between)
                if ok and qm.in_features == pm.out_features:
                    groups.append({"inp": pname, "out": qname, "between": [n for n, _ in between],
                                   "width": pm.out_features})
                break
            between.append((qname, qm))
    return groups


def _elementwise(m: nn.Module, width: int) -> bool:
    if isinstance(m, nn.BatchNorm1d):
        return m.num_features == width
    if isinstance(m, nn.PReLU):
        return m.num_parameters in (1, width)
    return next(iter(m.parameters(recurse=True)), None) is None and not list(m.children())


def _importance(model: nn.Module, groups: list[dict], importance: str, data: Any, loss: Any) -> list[torch.Tensor]:
    mods = dict(model.named_modules())
    if importance == "magnitude":
        out = []
        for g in groups:
            p, q = mods[g["inp"]], mods[g["out"]]
            bns = [mods[n] for n in g["between"] if isinstance(mods[n], nn.BatchNorm1d)]
            if bns and bns[-1].weight is not None:
                inc = bns[-1].weight.detach().abs()
            else:
                rows = p.weight.detach()
                inc = torch.cat([rows, p.bias.detach()[:, None]], 1).norm(dim=1) if p.bias is not None \
                    else rows.norm(dim=1)
            out.append(q.weight.detach().norm(dim=0) * inc)
        return out
    if data is None:
        raise ValueError(f"importance={importance!r} needs data=(X, y) and a loss")
    lossf = resolve_loss(loss)
    X, y = as_xy(data, model)
    if importance == "obd":
        h = gauss_newton(model, X, y, lossf, [g["out"] for g in groups])
        return [(mods[g["out"]].weight.detach() ** 2 * h[g["out"]] / 2).sum(0) for g in groups]
    acts: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def f(m: nn.Module, args: tuple) -> None:
            args[0].retain_grad()
            acts[name] = args[0]
        return f

    hooks = [mods[g["out"]].register_forward_pre_hook(keep(g["out"])) for g in groups]
    was = model.training
    model.eval()
    try:
        model.zero_grad()
        lossf(model(X), y).backward()
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was)
    res = [(acts[g["out"]] * acts[g["out"]].grad).sum(0).abs().detach() for g in groups]
    model.zero_grad()
    return res


@dataclass
class NeuronReport:
    """Widths and parameter counts before/after, and the kept unit indices per hidden layer."""

    n_params_before: int
    n_params_after: int
    widths_before: dict[str, int] = field(default_factory=dict)
    widths_after: dict[str, int] = field(default_factory=dict)
    kept: dict[str, list[int]] = field(default_factory=dict)

    def __str__(self) -> str:
        w = ", ".join(f"{n}: {self.widths_before[n]}->{self.widths_after[n]}" for n in self.widths_before)
        return f"neurons: params {self.n_params_before} -> {self.n_params_after} ({w})"


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def neurons(model: nn.Module, amount: float, importance: str = "magnitude", data: Any = None,
            loss: str | LossFn = "cross_entropy") -> tuple[nn.Module, NeuronReport]:
    """Remove the fraction ``amount`` of the least important units of every hidden layer.

    Args:
        model: an ``nn.Sequential`` (nested ones too, e.g. ``nl.MLP``) of ``nn.Linear`` layers
            with element-wise modules / ``BatchNorm1d`` between them. Not modified.
        amount: fraction in [0, 1) of each hidden layer's units to remove (at least one stays).
        importance: ``"magnitude"`` | ``"taylor"`` | ``"obd"`` (the last two need ``data``).
        data: ``(X, y)`` for the data-driven importances.

    Returns ``(smaller_model, report)``: a new model with narrower ``Linear``/``BatchNorm1d``
    layers (masks, if any, are made permanent first) and a :class:`NeuronReport`.
    """
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= float(amount) < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1) of each hidden layer's units, got {amount!r}")
    if importance not in ("magnitude", "taylor", "obd"):
        raise ValueError(f"importance must be 'magnitude', 'taylor' or 'obd', got {importance!r}")
    small = dense_copy(model)
    groups = hidden_units(small)
    if not groups:
        raise ValueError(f"{type(model).__name__} has no prunable hidden units: expected an nn.Sequential of "
                         "nn.Linear layers with element-wise modules or BatchNorm1d between them (residual "
                         "blocks tie widths: use nl.prune.residual_blocks)")
    scores = _importance(small, groups, importance, data, loss)
    report = NeuronReport(sum(p.numel() for p in model.parameters()), 0)
    mods = dict(small.named_modules())
    for g, s in zip(groups, scores):
        n_keep = max(1, g["width"] - int(round(float(amount) * g["width"])))
        idx = torch.sort(torch.topk(s, n_keep).indices).values
        p, q = mods[g["inp"]], mods[g["out"]]
        newp = nn.Linear(p.in_features, n_keep, bias=p.bias is not None).to(p.weight)
        newq = nn.Linear(n_keep, q.out_features, bias=q.bias is not None).to(q.weight)
        with torch.no_grad():
            newp.weight.copy_(p.weight[idx])
            if p.bias is not None:
                newp.bias.copy_(p.bias[idx])
            newq.weight.copy_(q.weight[:, idx])
            if q.bias is not None:
                newq.bias.copy_(q.bias)
        _set(small, g["inp"], newp)
        _set(small, g["out"], newq)
        mods[g["out"]] = newq
        for n in g["between"]:
            m = mods[n]
            if isinstance(m, nn.BatchNorm1d):
                bn = nn.BatchNorm1d(n_keep, m.eps, m.momentum, m.affine, m.track_running_stats).to(p.weight)
                with torch.no_grad():
                    if m.affine:
                        bn.weight.copy_(m.weight[idx]), bn.bias.copy_(m.bias[idx])
                    if m.track_running_stats:
                        bn.running_mean.copy_(m.running_mean[idx]), bn.running_var.copy_(m.running_var[idx])
                        bn.num_batches_tracked.copy_(m.num_batches_tracked)
                _set(small, n, bn)
            elif isinstance(m, nn.PReLU) and m.num_parameters > 1:
                pr = nn.PReLU(n_keep).to(p.weight)
                with torch.no_grad():
                    pr.weight.copy_(m.weight[idx])
                _set(small, n, pr)
        report.widths_before[g["inp"]] = g["width"]
        report.widths_after[g["inp"]] = n_keep
        report.kept[g["inp"]] = idx.tolist()
    if hasattr(small, "sizes"):
        try:
            small.sizes = [small.sizes[0]] + [report.widths_after[g["inp"]] for g in groups] + [small.sizes[-1]]
        except (AttributeError, TypeError, IndexError):
            pass
    report.n_params_after = sum(p.numel() for p in small.parameters())
    return small, report
