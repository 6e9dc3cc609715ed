"""Cutting units out of layers, and what the result costs: FLOPs and measured latency (§5.5).

:func:`unit_params` names the parameter slices of one group member (the ones removed with a
unit), :func:`remove_units` cuts the kept indices of every group out of the layers in place (the
modules keep their type: ``nn.Linear``, ``LoRALinear``, ``KANLayer``, ``BatchNorm1d``,
``LayerNorm``, ``PReLU``), :func:`flops` counts the multiply-adds of one forward pass and
:func:`latency` measures it (median of repeated timings).
"""
from __future__ import annotations

import statistics
import time
from typing import Iterable

import torch
from torch import nn

from ._common import forward_with_hooks
from .groups import Group, Member, layer_kind

__all__ = ["unit_params", "remove_units", "flops", "latency", "flops_of_widths"]


def unit_params(module: nn.Module, role: str) -> list[tuple[torch.Tensor, int]]:
    """The tensors that lose an index when a unit goes, with the axis: ``[(tensor, dim), ...]``."""
    kind = layer_kind(module)
    if kind == "linear":
        return [(module.weight, 0)] + ([(module.bias, 0)] if module.bias is not None else []) \
            if role == "out" else [(module.weight, 1)]
    if kind == "lora":
        base = module.base_layer
        if role == "out":
            return [(base.weight, 0), (module.lora_B, 0)] + ([(base.bias, 0)] if base.bias is not None else [])
        return [(base.weight, 1), (module.lora_A, 1)]
    if kind == "kan":
        d = 0 if role == "out" else 1
        out = [(module.coef, d), (module.scale_base, d), (module.scale_spline, d), (module.mask, d)]
        return out if role == "out" else out + [(module.knots, 0)]
    if isinstance(module, nn.BatchNorm1d):
        out = [(t, 0) for t in (module.weight, module.bias, module.running_mean, module.running_var) if t is not None]
        return out
    if isinstance(module, (nn.LayerNorm, nn.PReLU)):
        return [(t, 0) for t in (getattr(module, "weight", None), getattr(module, "bias", None)) if t is not None]
    raise ValueError(f"{type(module).__name__} has no prunable units")


def _replace(module: nn.Module, t: torch.Tensor, new: torch.Tensor) -> None:
    for owner in module.modules():
        for k, p in list(owner._parameters.items()):
            if p is t:
                owner._parameters[k] = nn.Parameter(new.contiguous(), requires_grad=p.requires_grad)
                return
        for k, b in list(owner._buffers.items()):
            if b is t:
                owner._buffers[k] = new.contiguous()
                return
    raise RuntimeError("tensor not found in its module")


def remove_units(model: nn.Module, groups: Iterable[Group], keep: Iterable[torch.Tensor]) -> nn.Module:
    """Keep only the indices ``keep[g]`` of every group ``g``; the model is changed in place.

    Indices are those of the model as it is now (a member's slice is cut at its ``offset``, so a
    layer reading a concatenation of several groups loses each group's units from its segment).

    Each member's slices (:func:`unit_params`) are cut and the size attributes updated
    (``in_features``/``out_features``, ``num_features``, ``normalized_shape``, ``in_dim``/``out_dim``…).
    """
    mods = dict(model.named_modules())
    alive: dict[tuple[str, str], torch.Tensor] = {}      # (module, role) -> kept indices of its slice
    for g, idx in zip(groups, keep):
        drop = torch.ones(g.width, dtype=torch.bool)
        drop[torch.as_tensor(idx, dtype=torch.long)] = False
        for mem in sorted(g.members):
            t, d = unit_params(mods[mem.module], mem.role)[0]
            mask = alive.setdefault((mem.module, mem.role), torch.ones(t.shape[d], dtype=torch.bool))
            mask[mem.offset:mem.offset + g.width] &= ~drop        # a concatenation reader: its segment only
    for (name, role), mask in alive.items():
        m, idx = mods[name], torch.nonzero(mask).flatten()
        with torch.no_grad():
            for t, d in unit_params(m, role):
                _replace(m, t, t.index_select(d, idx.to(t.device)))
        _resize(m, Member(name, role), len(idx))
    for m in model.modules():     # owners that remember their widths
        if hasattr(m, "sizes") and isinstance(m.sizes, list):
            from ..models_io import mlp_sizes

            try:
                m.sizes = mlp_sizes(m)
            except Exception:  # noqa: BLE001 - a custom model may keep .sizes for other reasons
                pass
        if hasattr(m, "width") and hasattr(m, "layers") and hasattr(m, "config"):
            m.width = [m.layers[0].in_dim] + [lay.out_dim for lay in m.layers]
            m.config["width"] = list(m.width)
    return model


def _resize(m: nn.Module, mem: Member, n: int) -> None:
    kind = layer_kind(m)
    if kind in ("linear", "lora"):
        lin = m if kind == "linear" else m.base_layer
        if mem.role == "out":
            lin.out_features = n
        else:
            lin.in_features = n
    elif kind == "kan":
        if mem.role == "out":
            m.out_dim = n
        else:
            m.in_dim = n
    elif isinstance(m, nn.BatchNorm1d):
        m.num_features = n
    elif isinstance(m, nn.LayerNorm):
        m.normalized_shape = (n,)
    elif isinstance(m, nn.PReLU):
        m.num_parameters = n


def _macs(m: nn.Module, n_in: int, n_out: int) -> int:
    kind = layer_kind(m)
    if kind == "kan":   # per edge: spline basis (k+1)² + G+k coefficients + base branch
        return n_in * n_out * (m.grid + m.k + (m.k + 1) ** 2 + 2)
    if kind == "lora":
        return n_in * n_out + (n_in + n_out) * m.rank
    return n_in * n_out


def flops(model: nn.Module, example_input: torch.Tensor) -> int:
    """Floating-point operations (2 × multiply-adds) of the layers for one sample.

    Counts ``nn.Linear`` (in·out), LoRA (in·out + r·(in+out)) and KAN layers (per edge: the
    B-spline basis, its G+k coefficients and the base branch); element-wise work is ignored.
    """
    total = [0]

    def hook(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        n_in, n_out = args[0].shape[-1], out.shape[-1]
        total[0] += 2 * _macs(m, n_in, n_out) * (args[0].numel() // n_in) // max(1, len(example_input))

    layers = [m for m in model.modules() if layer_kind(m) in ("lora", "kan")
              or (layer_kind(m) == "linear" and not _inside_lora(model, m))]
    hooks = [m.register_forward_hook(hook) for m in layers]
    try:
        forward_with_hooks(model, example_input, hooks)
    except RuntimeError as e:  # e.g. the wrong number of features: name the input, not torch.mm
        shape = tuple(getattr(example_input, "shape", ()))
        raise ValueError(f"example_input of shape {shape} does not run through "
                         f"{type(model).__name__}: {e}") from None
    return total[0]


def _inside_lora(model: nn.Module, lin: nn.Linear) -> bool:
    return any(layer_kind(m) == "lora" and m.base_layer is lin for m in model.modules())


def flops_of_widths(model: nn.Module, calls: list[tuple[str, str]], widths: dict[str, tuple[int, int]]) -> int:
    """FLOPs per sample when layer ``name`` (called as in ``calls``) has ``widths[name] = (in, out)``."""
    mods = dict(model.named_modules())
    return sum(2 * _macs(mods[n], *widths[n]) for n, _ in calls)


def latency(model: nn.Module, example_input: torch.Tensor, repeats: int = 15, number: int | None = None,
            clock: str = "wall") -> float:
    """Median seconds of one forward pass on ``example_input`` (inference mode, eval).

    Each of ``repeats`` timings runs the model ``number`` times (chosen so one timing takes ≈ 5 ms)
    after a warm-up; the median over timings is returned. Threads are whatever torch uses now
    (``torch.set_num_threads``). ``clock="wall"`` times elapsed time (``time.perf_counter``), what
    a user waits; ``clock="cpu"`` runs the model on one thread and times the CPU seconds that
    thread spends (``time.thread_time``), which on a machine shared with other jobs leaves out the
    time it waited for a core: the one-thread latency on an idle core. (Process CPU time would also
    count the busy-waiting of idle intra-op worker threads.)
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' (elapsed time) or 'cpu' (this process's CPU time), got {clock!r}")
    for name, v in (("repeats", repeats), ("number", number)):
        if not (v is None and name == "number") and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    now = time.perf_counter if clock == "wall" else time.thread_time
    was, threads = model.training, torch.get_num_threads()
    model.eval()
    if clock == "cpu":
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(3):
                model(example_input)
            if number is None:
                t0 = time.perf_counter()
                model(example_input)
                one = max(time.perf_counter() - t0, 1e-6)
                number = max(1, min(1000, int(0.005 / one)))
            times = []
            for _ in range(repeats):
                t0 = now()
                for _ in range(number):
                    model(example_input)
                times.append((now() - t0) / number)
    finally:
        model.train(was)
        torch.set_num_threads(threads)
    return statistics.median(times)
