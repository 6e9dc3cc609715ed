"""Structured pruning: remove whole hidden units, so the model really shrinks (§5.5).

Units are removed by *coupled groups* (:func:`nnlab.prune.dependency_groups`): unit j of a group
is row j of every layer writing the group's axis, column j of every layer reading it and entry j
of its ``BatchNorm1d``/``LayerNorm``/``PReLU``: a hidden layer of a plain MLP, or the whole
residual stream of a residual one. Importance of unit j:

* ``"magnitude"``: ‖θ_j^in‖₂·‖θ_j^out‖₂, the norm of its incoming slices (rows and biases of the
  layers writing it, or the γ, β of its BatchNorm/LayerNorm/PReLU, which rescale them) times the
  norm of its outgoing columns (so a unit nothing reads scores 0);
* ``"taylor"``: |Σ_{θ∈θ_j} θ·∂L/∂θ|, the first-order loss change of setting them to 0
  (Molchanov et al., 2019);
* ``"obd"``: Σ_q ‖W_q[:, j]‖²·H_q,jj / 2 over the layers q reading the unit, with the layer-wise
  Hessian H_q = X_q·X_qᵀ/N of their inputs (the diagonal of the structured OBS below);
* ``"obs"``: structured Optimal Brain Surgeon (:mod:`nnlab.prune.group_obs`): removing block G
  costs Σ_q w_Gᵀ([H_q⁻¹]_GG)⁻¹w_G and the remaining columns of every reading layer move by
  δw = −H⁻¹_{:,G}([H⁻¹]_GG)⁻¹w_G. Units are chosen greedily one at a time with those updates;
  groups are processed in forward order and each reading layer is first refit (least squares) to
  reproduce, on the already pruned network's inputs, the outputs it had before this step.

The speed target (``speedup=``) is in :mod:`nnlab.prune.speedup`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._common import LossFn, as_xy, dense_copy, forward_with_hooks, resolve_loss
from .group_obs import greedy_select
from .groups import Group, Groups, dependency_groups, layer_kind
from .obs import damped_inverse
from .shrink import remove_units, unit_params

__all__ = ["neurons", "NeuronReport", "IMPORTANCES", "group_importance", "prune_groups", "example_for"]

IMPORTANCES = ("magnitude", "taylor", "obd", "obs")


@dataclass
class NeuronReport:
    """Widths, parameters, FLOPs (and latency) before/after, and the kept unit indices per group.

    Groups are named by their first writing layer; ``kept`` holds indices into the original model.
    """

    n_params_before: int
    n_params_after: int
    widths_before: dict[str, int] = field(default_factory=dict)
    widths_after: dict[str, int] = field(default_factory=dict)
    kept: dict[str, list[int]] = field(default_factory=dict)
    flops_before: int = 0
    flops_after: int = 0
    latency_before: float | None = None
    latency_after: float | None = None
    measure: str | None = None
    speedup: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        w = ", ".join(f"{n}: {self.widths_before[n]}->{self.widths_after[n]}" for n in self.widths_before)
        s = f"neurons: params {self.n_params_before} -> {self.n_params_after} ({w}); " \
            f"FLOPs/sample {self.flops_before} -> {self.flops_after}"
        if self.latency_before is not None and self.latency_after is not None:
            s += f"; latency {1e6 * self.latency_before:.1f} -> {1e6 * self.latency_after:.1f} µs"
        if self.speedup is not None:
            s += f"; speed-up {self.speedup:.2f}x ({self.measure})"
        return s


def example_for(model: nn.Module, X: torch.Tensor | None = None) -> torch.Tensor:
    """A small input batch for tracing: rows of ``X`` or zeros as wide as the first layer's input."""
    if X is not None:
        return X[:8]
    for m in model.modules():
        n = getattr(m, "in_features", None) or getattr(m, "in_dim", None)
        if isinstance(n, int):
            p = next(iter(model.parameters()))
            return torch.zeros(2, n, dtype=p.dtype, device=p.device)
    raise ValueError(f"cannot tell the input width of {type(model).__name__}; pass example_input")


def label(g: Group, groups: Groups) -> str:
    """A group's name: its first writing layer in forward order."""
    order = {n: i for i, (n, _) in enumerate(groups.calls)}
    return min(g.names("out"), key=lambda n: order.get(n, 0))


def _slices(model: nn.Module, g: Group, grads: bool = False) -> torch.Tensor:
    """(width, k) matrix of all parameter values (or their gradients) that unit j owns."""
    mods = dict(model.named_modules())
    cols = []
    for mem in sorted(g.members):
        for t, d in unit_params(mods[mem.module], mem.role):
            if not isinstance(t, nn.Parameter):
                continue     # buffers (BN running stats, KAN mask/knots) are no importance
            v = t.grad if grads else t
            v = torch.zeros_like(t) if v is None else v
            cols.append(v.detach().movedim(d, 0).narrow(0, mem.offset, g.width).reshape(g.width, -1))
    return torch.cat(cols, 1) if cols else torch.zeros(g.width, 0)


def _magnitude(model: nn.Module, g: Group) -> torch.Tensor:
    """‖θ_j written‖·‖θ_j read‖: rows (or the per-channel γ, β when a norm rescales them) times columns."""
    def part(roles: set[str]) -> torch.Tensor:
        return _slices(model, Group(g.width, frozenset(m for m in g.members if m.role in roles))).norm(dim=1)

    norm = _slices(model, Group(g.width, frozenset(m for m in g.members if m.role == "channel")))
    return (norm.norm(dim=1) if norm.shape[1] else part({"out"})) * part({"in"})


def _layer_inputs(model: nn.Module, names: list[str], X: torch.Tensor) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    got: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    hooks = [mods[n].register_forward_pre_hook(
        lambda m, a, n=n: got[n].append(a[0].detach().reshape(-1, a[0].shape[-1]).to(torch.float64)))
        for n in names]
    forward_with_hooks(model, X, hooks)
    return {n: torch.cat(v) for n, v in got.items()}


def _readers(model: nn.Module, g: Group, importance: str) -> list[str]:
    mods = dict(model.named_modules())
    bad = [n for n in g.names("in") if layer_kind(mods[n]) not in ("linear", "lora")]
    if bad:
        raise ValueError(f"importance={importance!r} uses the layer-wise Hessian of nn.Linear inputs, but "
                         f"{bad} ({type(mods[bad[0]]).__name__}) read the {g.width} units written by "
                         f"{g.names('out')}; use importance='magnitude' or 'taylor' for this model")
    return g.names("in")


def _weight(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Effective (W, b) of a reading layer in float64 (LoRA: W₀ + ΔW unless merged)."""
    if layer_kind(m) == "lora":
        W = m.base_layer.weight.detach() + (0 if m.merged else m.delta_weight().detach())
        b = m.base_layer.bias
    else:
        W, b = m.weight.detach(), m.bias
    return W.to(torch.float64), None if b is None else b.detach().to(torch.float64)


def _set_weight(m: nn.Module, W: torch.Tensor, b: torch.Tensor | None) -> None:
    with torch.no_grad():
        if layer_kind(m) == "lora":
            lin = m.base_layer
            W = W - (0 if m.merged else m.delta_weight().detach().to(W))
        else:
            lin = m
        lin.weight.copy_(W.to(lin.weight.dtype))
        if b is not None:
            lin.bias.copy_(b.to(lin.bias.dtype))


def group_importance(model: nn.Module, groups: Groups, importance: str, X: torch.Tensor | None = None,
                     y: torch.Tensor | None = None, loss: LossFn | None = None) -> list[torch.Tensor]:
    """One score per unit (higher = keep) for ``"magnitude"``, ``"taylor"`` or ``"obd"``."""
    if importance == "magnitude":
        return [_magnitude(model, g) for g in groups]
    if X is None or y is None or loss is None:
        raise ValueError(f"importance={importance!r} needs data=(X, y)")
    if importance == "taylor":
        was = model.training
        model.eval()
        try:
            model.zero_grad()
            loss(model(X), y).backward()
            out = [(_slices(model, g) * _slices(model, g, grads=True)).sum(1).abs() for g in groups]
        finally:
            model.zero_grad()
            model.train(was)
        return out
    if importance == "obd":
        mods = dict(model.named_modules())
        names = [n for g in groups for n in _readers(model, g, importance)]
        xs = _layer_inputs(model, names, X)
        return [sum((_weight(mods[m.module])[0].pow(2).sum(0) * xs[m.module].pow(2).mean(0) / 2)
                    [m.offset:m.offset + g.width] for m in g.members if m.role == "in") for g in groups]
    raise ValueError(f"importance must be one of {', '.join(IMPORTANCES)}, got {importance!r}")


def _obs_group(cur: nn.Module, ref: nn.Module, g: Group, n_keep: int, X: torch.Tensor, damp: float) -> torch.Tensor:
    """Structured OBS on one group of ``cur`` (refit to ``ref``'s outputs first); returns the kept indices.

    Each reading layer q is first refit by least squares so that, on the already pruned network's
    inputs X_q, it reproduces the outputs W_q^ref·X_q^ref (+ b) it had in ``ref`` (the model before
    this pruning call): W_q = W_q^ref·C_q·H_q⁻¹ with C_q = X_q^ref·X_qᵀ/N; then the units are
    removed greedily with the OBS update (:func:`greedy_select`), bias column included.
    """
    _readers(cur, g, "obs")
    readers = sorted(m for m in g.members if m.role == "in")
    names = [m.module for m in readers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"importance='obs' cannot remove units that {twice} read twice (an axis concatenated "
                         "with itself); use importance='magnitude', 'taylor' or 'obd' for this model")
    mods, rmods = dict(cur.named_modules()), dict(ref.named_modules())
    xn, xo = _layer_inputs(cur, names, X), _layer_inputs(ref, names, X)
    Ws, Hinvs, has_b, cols = [], [], [], []
    for mem in readers:
        n = mem.module
        Wr, br = _weight(rmods[n])
        one = torch.ones(len(xn[n]), 1, dtype=torch.float64)
        Xa = torch.cat([xn[n], one], 1) if br is not None else xn[n]
        Xo = torch.cat([xo[n], one], 1) if br is not None else xo[n]
        Wa = torch.cat([Wr, br[:, None]], 1) if br is not None else Wr
        Hinv, _ = damped_inverse(Xa.T @ Xa / len(Xa), damp)
        Wa = Wa @ (Xo.T @ Xa / len(Xa)) @ Hinv          # refit: new inputs -> this layer's old outputs
        Ws.append(Wa), Hinvs.append(Hinv), has_b.append(br is not None)
        cols.append(mem.offset + torch.arange(g.width))
    removed, Ws, _ = greedy_select(Ws, Hinvs, g.width - n_keep, g.width, cols)
    for n, Wa, hb in zip(names, Ws, has_b):
        _set_weight(mods[n], Wa[:, :-1] if hb else Wa, Wa[:, -1] if hb else None)
    mask = torch.ones(g.width, dtype=torch.bool)
    mask[removed] = False
    return torch.nonzero(mask).flatten()


def prune_groups(model: nn.Module, groups: Groups, n_keep: list[int], importance: str, X: torch.Tensor | None,
                 y: torch.Tensor | None, loss: LossFn | None, damp: float = 0.01) -> list[torch.Tensor]:
    """Shrink group i of ``model`` to ``n_keep[i]`` units in place; returns the kept indices per group."""
    if importance == "obs":
        if X is None:
            raise ValueError("importance='obs' needs data=(X, y) (calibration inputs for the layer Hessians)")
        ref = copy.deepcopy(model)
        kept: list[torch.Tensor] = []
        for i, k in enumerate(n_keep):
            g = groups[i]
            idx = _obs_group(model, ref, g, k, X, damp) if k < g.width else torch.arange(g.width)
            remove_units(model, [g], [idx])
            kept.append(idx)
            if any(m.offset for h in groups[i + 1:] for m in h.members):    # concatenation offsets moved
                groups = dependency_groups(model, X[:8])
        return kept
    scores = group_importance(model, groups, importance, X, y, loss)
    kept = [torch.sort(torch.topk(s, k).indices).values for s, k in zip(scores, n_keep)]
    remove_units(model, groups, kept)
    return kept


def _check_data(data: Any, model: nn.Module, example: torch.Tensor | None):
    if data is None:
        return None, None
    X, y = as_xy(data, model)
    if example is not None and X.shape[1] != example.shape[-1]:
        raise ValueError(f"data X has {X.shape[1]} columns but example_input has {example.shape[-1]}; they must match")
    return X, y


def neurons(model: nn.Module, amount: float | None = None, importance: str = "magnitude", data: Any = None,
            loss: str | LossFn = "cross_entropy", *, speedup: float | None = None,
            example_input: torch.Tensor | None = None, measure: str = "latency", steps: int = 1,
            finetune_epochs: int = 0, damp: float = 0.01, max_samples: int | None = 4096,
            fit_kwargs: dict[str, Any] | None = None, val: Any = None) -> tuple[nn.Module, NeuronReport]:
    """Remove whole units: a fraction ``amount`` of every group, or enough for a ``speedup``.

    Args:
        model: any model :func:`dependency_groups` can trace (``nl.MLP`` plain or residual,
            ``nl.KAN``, ``nn.Sequential``/``nn.Module`` of Linear and element-wise layers).
            Not modified.
        amount: fraction in [0, 1) of each group's units to remove (at least one stays).
        importance: ``"magnitude"`` | ``"taylor"`` | ``"obd"`` | ``"obs"`` (the last three need ``data``).
        data: ``(X, y)`` for the data-driven importances (calibration) and for fine-tuning.
        speedup: instead of ``amount``: remove units (the same fraction of every group) until the
            model is this many times faster, by ``measure``: ``"latency"`` (elapsed time on
            ``example_input``), ``"cpu"`` (CPU time of that forward pass: steadier on a shared
            machine) or ``"flops"``. In ``steps`` steps of geometrically growing
            speed-up, each followed by ``finetune_epochs`` of :func:`nnlab.prune.finetune` on
            ``data`` (``nl.fit`` with the learning rate annealed to 0 by cosine; ``fit_kwargs``
            passed on). See :mod:`nnlab.prune.speedup`.
        val: with ``speedup`` and ``finetune_epochs``: validation data held out from the training
            data (never the test set), ``(X, y)`` or a fraction of ``data`` to hold out (e.g.
            0.1); each fine-tune keeps its best-by-validation weights, the starting ones included.
        example_input: a (batch, features) input; its batch size is the one latency is measured at.
        damp: OBS damping λ/mean(diag H). max_samples: calibration rows used for Hessians.

    Returns ``(smaller_model, report)``: a new plain model with narrower layers (masks, if any,
    made permanent first) and a :class:`NeuronReport`.
    """
    if importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {', '.join(map(repr, IMPORTANCES))}, got {importance!r}")
    if speedup is not None:
        if amount is not None:
            raise ValueError("pass either amount (a fraction of units) or speedup (a speed target), not both")
        from .speedup import prune_to_speedup

        return prune_to_speedup(model, speedup, importance, data, loss, example_input, measure, steps,
                                finetune_epochs, damp, max_samples, fit_kwargs, val)
    if val is not None:
        raise ValueError("val chooses the best weights of the fine-tunes of a speedup= run (with finetune_epochs > 0); "
                         "amount= prunes once without fine-tuning, so it has no use for val")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= float(amount) < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1) of each hidden layer's units, got {amount!r}")
    if importance != "magnitude" and data is None:
        raise ValueError(f"importance={importance!r} needs data=(X, y)")
    small = dense_copy(model)
    X, y = _check_data(data, small, example_input)
    if X is not None and max_samples is not None:
        X, y = X[:max_samples], y[:max_samples]
    example = example_input if example_input is not None else example_for(small, X)
    groups = find_groups(small, example)
    from .shrink import flops

    report = NeuronReport(sum(p.numel() for p in model.parameters()), 0, flops_before=flops(small, example))
    n_keep = [max(1, g.width - int(round(float(amount) * g.width))) for g in groups]
    kept = prune_groups(small, groups, n_keep, importance, X, y, None if data is None else resolve_loss(loss), damp)
    for g, idx in zip(groups, kept):
        name = label(g, groups)
        report.widths_before[name], report.widths_after[name], report.kept[name] = g.width, len(idx), idx.tolist()
    report.n_params_after = sum(p.numel() for p in small.parameters())
    report.flops_after = flops(small, example)
    return small, report


def find_groups(model: nn.Module, example: torch.Tensor) -> Groups:
    """:func:`dependency_groups`, refusing a model with nothing to prune."""
    groups = dependency_groups(model, example)
    if not groups:
        why = "; ".join(f"{g.width} units of {', '.join(g.names('out') or g.names('in'))}: {r}"
                        for g, r in groups.fixed[:4])
        raise ValueError(f"{type(model).__name__} has no prunable hidden units: no feature axis between two "
                         f"layers can shrink ({why or 'no nn.Linear, LoRA or KAN layers'})")
    return groups
