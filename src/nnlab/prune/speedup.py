"""Pruning to a speed target: remove coupled units until the model is ``speedup`` times faster (§5.5).

Speed is measured as FLOPs per sample (``measure="flops"``: deterministic) or as the median
latency of a forward pass on ``example_input`` (``measure="latency"``: elapsed time, what users
feel; ``measure="cpu"``: the CPU time of a one-thread forward pass, which on a shared machine
leaves out the waits for a core); the dense and the pruned model are timed interleaved. Every
group keeps the same fraction f of its original units (at least one); f is found by bisection on
the FLOPs, which depend on the widths only. The target is approached in ``steps`` steps of
geometrically growing speed-up s_t = speedup^(t/T), each followed by a short fine-tune
(:func:`nnlab.prune.finetune`: learning rate annealed by cosine and, with ``val``, the
best-by-validation weights), as in gradual pruning.

With ``measure="latency"`` or ``"cpu"`` the final widths are chosen *before* pruning, by timing:
latency depends on the widths only, and it is not proportional to FLOPs (a CPU matrix product
works in blocks of SIMD lanes, e.g. 16 floats with AVX-512, so widths 161-176 of a layer can cost
the same time and a FLOPs target overshoots the time target by a stair). A stand-in of every
candidate (the model cut to the first k units of each group) is timed interleaved with the dense
model, from wide to narrow in 2 % FLOPs steps, and the first one timed fast enough twice in a row
is kept (:func:`_measured_widths`); the steps then aim at its FLOPs. The pruned model is timed
again at the end; if noise made it fall short, the FLOPs target grows in small steps (≥ 2 %) until
the measured ratio reaches ``speedup``. When even one unit per group is not fast enough the error
says how far it got.
"""
from __future__ import annotations

import copy
import statistics
from typing import Any

import torch
from torch import nn

from ._common import LossFn, as_xy, dense_copy, resolve_loss
from .finetuning import finetune, split_off
from .groups import Groups
from .shrink import flops, flops_of_widths, latency, remove_units
from .structured import NeuronReport, _check_data, find_groups, label, prune_groups

__all__ = ["prune_to_speedup", "speed_ratio", "speed_report", "SpeedupError"]


class SpeedupError(ValueError):
    """The speed target cannot be reached (the message says how far pruning got)."""


def speed_ratio(dense: nn.Module, pruned: nn.Module, example_input: torch.Tensor, rounds: int = 7,
                clock: str = "wall") -> tuple[float, float, float]:
    """(latency of dense, latency of pruned, their ratio): medians over ``rounds`` interleaved timings."""
    a, b = [], []
    for _ in range(rounds):
        a.append(latency(dense, example_input, repeats=3, clock=clock))
        b.append(latency(pruned, example_input, repeats=3, clock=clock))
    la, lb = statistics.median(a), statistics.median(b)
    return la, lb, la / lb


def _finetune_split(X: torch.Tensor | None, y: torch.Tensor | None, val: Any, model: nn.Module,
                    finetune_epochs: int, fit_kwargs: dict[str, Any] | None) -> tuple[Any, Any]:
    """(train, val) for the fine-tunes: ``val`` as given, or that fraction of the data held out."""
    if val is None or X is None:
        return (X, y), None
    if not finetune_epochs:
        raise ValueError("val is used to keep the best weights of each fine-tune; it needs finetune_epochs > 0")
    if isinstance(val, float):
        return split_off(X, y, val, seed=(fit_kwargs or {}).get("seed") or 0)
    return (X, y), as_xy(val, model, name="val")


def _widths(model: nn.Module, groups: Groups, keep: list[int]) -> dict[str, tuple[int, int]]:
    mods = dict(model.named_modules())
    w: dict[str, list[int]] = {}
    for n, kind in groups.calls:
        m = mods[n]
        w[n] = [m.in_dim, m.out_dim] if kind == "kan" else [m.in_features, m.out_features]
    for g, k in zip(groups, keep):
        for mem in g.members:      # a layer reading a concatenation loses units of each group it reads
            if mem.module in w and mem.role in ("in", "out"):
                w[mem.module][0 if mem.role == "in" else 1] -= g.width - k
    return {n: (a, b) for n, (a, b) in w.items()}


def _plan(model: nn.Module, groups: Groups, orig: list[int], target_flops: float) -> list[int]:
    """The widths (same fraction f of each group's original width) with FLOPs ≤ target, largest f."""
    def keep(f: float) -> list[int]:
        return [max(1, min(g.width, int(round(f * w0)))) for g, w0 in zip(groups, orig)]

    def cost(f: float) -> int:
        return flops_of_widths(model, groups.calls, _widths(model, groups, keep(f)))

    lo, hi = 0.0, 1.0
    limit = target_flops * (1 + 1e-9)     # a target met exactly counts as met (f0 / speed-up rounds either way)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(mid) <= limit else (lo, mid)
    return keep(lo)


_SCAN = 1.02       # FLOPs ratio between successive stand-ins of the measured scan


def _candidates(groups: Groups, orig: list[int]) -> list[list[int]]:
    """Distinct width vectors keep(f) = round(f·w0) for f = k / max(w0), k = 1 … max(w0), narrowest first."""
    out: list[list[int]] = []
    top = max(orig)
    for k in range(1, top + 1):
        w = [max(1, min(g.width, int(round(k / top * w0)))) for g, w0 in zip(groups, orig)]
        if not out or w != out[-1]:
            out.append(w)
    return out


def _measured_widths(model: nn.Module, groups: Groups, orig: list[int], example_input: torch.Tensor,
                     speedup: float, clock: str) -> tuple[list[int], tuple[float, float, float]]:
    """The widest uniform widths whose *measured* speed-up over ``model`` reaches ``speedup``.

    Latency depends on the widths only, so each candidate is a stand-in: a copy of ``model`` cut to
    the first k units of every group, timed interleaved with ``model`` (:func:`speed_ratio`). The
    scan goes from wide to narrow: it starts at the widths with a FLOPs speed-up of speedup^¾ (time
    falls more slowly than FLOPs, but a latency stair can make it fall faster for a while) and
    steps down by 2 % of FLOPs until a stand-in is timed fast enough twice in a row (the re-measure
    guards against one lucky timing). A timing that is wrongly slow costs one 2 % step, never a
    jump (a bisection's wrong turn on a noisy machine can halve the widths). Returns the widths and
    the last measurement (dense, stand-in, ratio); raises :class:`SpeedupError` when even the
    narrowest stand-in is too slow.
    """
    cands = _candidates(groups, orig)
    cost = [flops_of_widths(model, groups.calls, _widths(model, groups, w)) for w in cands]
    f0 = flops(model, example_input)

    def measure(i: int) -> tuple[float, float, float]:
        stand = copy.deepcopy(model)
        remove_units(stand, groups, [torch.arange(k) for k in cands[i]])
        return speed_ratio(model, stand, example_input, clock=clock)

    got = measure(0)
    if got[2] < speedup:
        what = "CPU-time" if clock == "cpu" else "latency"
        raise SpeedupError(f"a {speedup:g}x {what} speed-up on inputs of shape {tuple(example_input.shape)} "
                           f"cannot be reached: even the narrowest model (widths {cands[0]} of {orig}) got to "
                           f"{got[2]:.2f}x; fixed costs (framework overhead, input/output layers) dominate. "
                           "Try a larger batch, measure='flops' or a smaller target")
    i = max([0] + [k for k, c in enumerate(cost) if c * speedup ** 0.75 <= f0])
    while i > 0:
        got = measure(i)
        if got[2] >= speedup:
            again = measure(i)
            if again[2] >= speedup:
                return cands[i], again
        i = max([0] + [k for k in range(i) if cost[k] * _SCAN <= cost[i]])
    return cands[0], got


def prune_to_speedup(model: nn.Module, speedup: float, importance: str, data: Any, loss: str | LossFn,
                     example_input: torch.Tensor | None, measure: str, steps: int, finetune_epochs: int,
                     damp: float, max_samples: int | None, fit_kwargs: dict[str, Any] | None,
                     val: Any = None) -> tuple[nn.Module, NeuronReport]:
    """The ``speedup=`` path of :func:`nnlab.prune.neurons` (same arguments)."""
    if isinstance(speedup, bool) or not isinstance(speedup, (int, float)) or not float(speedup) > 1.0:
        raise ValueError(f"speedup must be a number > 1 (how many times faster the pruned model should be), "
                         f"got {speedup!r}")
    if measure not in ("latency", "cpu", "flops"):
        raise ValueError(f"measure must be 'latency' (elapsed time), 'cpu' (CPU time) or 'flops', got {measure!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    if example_input is None:
        raise ValueError("speedup needs example_input: a (batch, features) tensor the model is timed on "
                         "(and traced with); e.g. example_input=X[:256]")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    if importance != "magnitude" and data is None:
        raise ValueError(f"importance={importance!r} needs data=(X, y)")
    if finetune_epochs and data is None:
        raise ValueError("finetune_epochs > 0 needs data=(X, y) to fine-tune on")
    dense = dense_copy(model)
    cur = copy.deepcopy(dense)
    X, y = _check_data(data, cur, example_input)
    train, val = _finetune_split(X, y, val, cur, finetune_epochs, fit_kwargs)
    Xc, yc = (X, y) if X is None or max_samples is None else (X[:max_samples], y[:max_samples])
    lossf = None if data is None else resolve_loss(loss)
    groups = find_groups(cur, example_input)
    labels = [label(g, groups) for g in groups]
    orig = [g.width for g in groups]
    index = [torch.arange(w) for w in orig]        # kept indices into the original model
    f0 = flops(cur, example_input)
    f_min = flops_of_widths(cur, groups.calls, _widths(cur, groups, [1] * len(groups)))
    if measure == "flops" and f0 / max(f_min, 1) < speedup:
        raise SpeedupError(f"a {speedup:g}x FLOPs speed-up cannot be reached: even one unit per group leaves "
                           f"{f_min} of {f0} FLOPs per sample (at most {f0 / max(f_min, 1):.2f}x); the rest is in "
                           "layers whose widths are fixed (the model's input and output)")
    report = NeuronReport(sum(p.numel() for p in model.parameters()), 0, measure=measure, flops_before=f0)
    fit_kwargs = dict(fit_kwargs or {})

    def step(target: float) -> None:
        nonlocal groups
        groups = find_groups(cur, example_input)
        keep = _plan(cur, groups, orig, f0 / target)
        kept = prune_groups(cur, groups, keep, importance, Xc, yc, lossf, damp)
        for i, k in enumerate(kept):
            index[i] = index[i][k]
        rec: dict[str, Any] = {"target": target, "widths": [len(k) for k in kept],
                               "flops_speedup": f0 / flops(cur, example_input)}
        if finetune_epochs:
            hist, best = finetune(cur, train, val, loss=loss, epochs=finetune_epochs, **fit_kwargs)
            rec["train_loss"] = hist.train_loss[-1] if getattr(hist, "train_loss", None) else None
            rec["kept_epoch"] = best
        report.steps.append(rec)

    clock = "cpu" if measure == "cpu" else "wall"
    final = speedup                 # the FLOPs speed-up the steps aim at
    if measure != "flops":          # the widest widths whose measured time reaches the target, found by timing
        widths, _ = _measured_widths(cur, groups, orig, example_input, speedup, clock)
        final = f0 / flops_of_widths(cur, groups.calls, _widths(cur, groups, widths))
    for t in range(1, steps + 1):
        step(final ** (t / steps))
    target, reached = final, f0 / flops(cur, example_input)
    if measure != "flops":
        for _ in range(8):
            report.latency_before, report.latency_after, reached = speed_ratio(dense, cur, example_input, clock=clock)
            if reached >= speedup:
                break
            widths = [len(i) for i in index]
            if all(w == 1 for w in widths):
                break
            # the stand-in reached the target but the pruned model was timed short: timing noise, so go on in
            # small FLOPs steps rather than a stair at a time
            target = min(target * min(1.5, max(1.02, speedup / reached)), f0 / max(f_min, 1))
            step(target)
        if reached < speedup:
            what = "CPU-time" if measure == "cpu" else "latency"
            raise SpeedupError(f"a {speedup:g}x {what} speed-up on inputs of shape {tuple(example_input.shape)} "
                               f"was not reached: pruning got to {reached:.2f}x (FLOPs {f0 / flops(cur, example_input):.2f}x, "
                               f"widths {[len(i) for i in index]} of {orig}); fixed costs (framework overhead, "
                               "input/output layers) dominate. Try a larger batch, measure='flops' or a smaller target")
    report.speedup = reached
    for name, w0, idx in zip(labels, orig, index):
        report.widths_before[name], report.widths_after[name], report.kept[name] = w0, len(idx), idx.tolist()
    report.n_params_after = sum(p.numel() for p in cur.parameters())
    report.flops_after = flops(cur, example_input)
    return cur, report



def speed_report(dense: nn.Module, pruned: nn.Module, example_input: torch.Tensor, rounds: int = 7,
                 clocks: tuple[str, ...] = ("wall",)) -> str:
    """Parameters, FLOPs per sample and measured latency before and after, as a text table.

    One latency row per clock in ``clocks`` (interleaved medians of ``rounds`` timings, see
    :func:`speed_ratio`): ``"wall"`` is elapsed time with torch's threads, ``"cpu"`` the CPU time of
    a one-thread forward pass (:func:`nnlab.prune.latency`).
    """
    bad = [c for c in clocks if c not in ("wall", "cpu")]
    if bad or not clocks:
        raise ValueError(f"clocks must name 'wall' and/or 'cpu', got {clocks!r}")
    pa, pb = (sum(p.numel() for p in m.parameters()) for m in (dense, pruned))
    fa, fb = flops(dense, example_input), flops(pruned, example_input)
    rows = [f"{'':<30} {'before':>12} {'after':>12} {'ratio':>8}",
            f"{'parameters':<30} {pa:>12} {pb:>12} {pa / pb:>7.2f}x",
            f"{'FLOPs per sample':<30} {fa:>12} {fb:>12} {fa / fb:>7.2f}x"]
    for clock in clocks:
        la, lb, r = speed_ratio(dense, pruned, example_input, rounds, clock=clock)
        what = "wall latency" if clock == "wall" else "CPU time, 1 thread"
        rows.append(f"{what + ', batch ' + str(len(example_input)):<30} {1e6 * la:>10.1f}us {1e6 * lb:>10.1f}us "
                    f"{r:>7.2f}x")
    return "\n".join(rows)
