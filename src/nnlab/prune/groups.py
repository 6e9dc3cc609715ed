"""Coupled units: which slices of which layers must be removed together (DepGraph-style, §5.5).

A hidden unit is one index of a feature axis. Removing index j of an axis removes row j of every
layer that *writes* it (``"out"``: ``nn.Linear``/LoRA rows and bias, KAN output nodes), column j
of every layer that *reads* it (``"in"``) and entry j of every per-channel module on it
(``"channel"``: ``BatchNorm1d``, ``LayerNorm``, ``PReLU(n)``). Element-wise modules keep the
axis; an addition ``a + b`` (a residual connection H(x) = F(x) + x, lecture §4.2) makes the
axes of a and b *one* axis, so a residual stream is one group: the skip, every block writing into
it and every layer reading it (Fang et al., "DepGraph", CVPR 2023). A concatenation
``torch.cat([a, b], -1)`` makes an axis of *segments*: a layer reading it reads a's units at
columns 0..|a|−1 and b's at |a|..|a|+|b|−1, so it joins both groups, each at its ``offset``
(``cat`` along another dimension makes the axes of a and b one, like an addition).

:func:`dependency_groups` traces the model with ``torch.fx`` (residual blocks of ``nl.Residual``
are expanded into F(x) + x), propagates axes through the graph with a union-find, and returns the
groups that can shrink. An axis is *fixed* (not prunable) when it is the model's input or output,
or passes through an operation this analysis does not understand (``reshape``, softmax,
an addition of differently concatenated axes, ...): such a group is left alone and listed in :attr:`Groups.fixed` with the reason.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["dependency_groups", "Group", "Groups", "Member", "ELEMENTWISE_MODULES"]

ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid,
    nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Threshold,
    nn.LogSigmoid, nn.Identity, nn.Dropout, nn.AlphaDropout)
_ELEMENTWISE_FUNCS = {
    torch.relu, torch.tanh, torch.sigmoid, torch.exp, torch.abs, torch.neg, torch.sin, torch.cos, torch.square,
    F.relu, F.gelu, F.silu, F.elu, F.leaky_relu, F.dropout, F.softplus, F.tanh, F.sigmoid, F.mish, F.hardtanh,
    operator.neg, operator.pos}
_BINARY_FUNCS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, torch.add, torch.sub,
                 torch.mul, torch.div, torch.maximum, torch.minimum}
_ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid", "exp", "abs", "neg", "clamp", "contiguous", "float", "double",
                        "sin", "cos", "square", "pow"}
_BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "mul_", "maximum", "minimum"}
_CAT_FUNCS = {torch.cat, torch.concat, torch.concatenate}


@dataclass(frozen=True, order=True)
class Member:
    """One slice of a group: ``module`` (a name from ``model.named_modules()``), ``role``:
    ``"out"`` (rows/output nodes), ``"in"`` (columns/input nodes) or ``"channel"``, and
    ``offset``: unit j of the group is index ``offset + j`` of that slice (non-zero where the
    module reads a concatenation)."""

    module: str
    role: str
    offset: int = 0


@dataclass
class Group:
    """Units that go together: index j of the group is index j of every member's slice."""

    width: int
    members: frozenset[Member]

    def names(self, role: str) -> list[str]:
        """Names of the member modules with ``role`` (sorted)."""
        return sorted(m.module for m in self.members if m.role == role)

    def __str__(self) -> str:
        parts = ", ".join(f"{r}: {' '.join(self.names(r))}" for r in ("out", "in", "channel") if self.names(r))
        return f"group of {self.width} units ({parts})"


class Groups(list):
    """The prunable groups (a list of :class:`Group`, in forward order) plus what was left alone.

    Attributes: ``fixed``, a list of ``(Group, reason)`` for the axes that cannot shrink, and
    ``calls``, the ``(module name, kind)`` of every layer call in forward order.
    """

    def __init__(self, groups=(), fixed=None, calls=None):
        list.__init__(self, groups)
        self.fixed = list(fixed or [])
        self.calls = list(calls or [])


def _is_residual(m: nn.Module) -> bool:
    return hasattr(m, "block") and hasattr(m, "projection") and isinstance(getattr(m, "block"), nn.Module)


def layer_kind(m: nn.Module) -> str | None:
    """``"linear"``, ``"lora"``, ``"kan"``, ``"channel"``, ``"elementwise"`` or None (unknown)."""
    from ..kan.layer import KANLayer
    from ..lora.layer import LoRALinear

    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, LoRALinear):
        return "lora"
    if isinstance(m, KANLayer):
        return "kan" if m.symbolic is None else None
    if isinstance(m, nn.BatchNorm1d) or (isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1):
        return "channel"
    if isinstance(m, nn.PReLU):
        return "channel" if m.num_parameters > 1 else "elementwise"
    if isinstance(m, ELEMENTWISE_MODULES):
        return "elementwise"
    from ..activations import Activation

    if isinstance(m, Activation) and all(p.numel() == 1 for p in m.parameters()):
        return "elementwise"
    return None


class _Tracer(fx.Tracer):
    """fx tracer that keeps layers as leaves and expands ``nl.Residual`` into F(x) + skip(x)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if layer_kind(m) is not None or not list(m.children()):
            return True
        return False

    def call_module(self, m: nn.Module, forward, args, kwargs):
        if _is_residual(m) and len(args) == 1 and not kwargs:
            x = args[0]
            fx_ = self.call_module(m.block, m.block.forward, (x,), {})
            skip = x if m.projection is None else self.call_module(m.projection, m.projection.forward, (x,), {})
            return fx_ + skip
        return super().call_module(m, forward, args, kwargs)


Space = Union[int, tuple[tuple[int, int], ...]]   # an axis, or the (axis, width) segments of a concatenation


class _Axes:
    """Union-find over feature axes, each with its members and the reasons it is fixed."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.width: list[int | None] = []
        self.members: list[set[Member]] = []
        self.fixed: list[list[str]] = []

    def new(self, width: int | None, reason: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.width.append(width)
        self.members.append(set())
        self.fixed.append([reason] if reason else [])
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.members[a] |= self.members[b]
            self.fixed[a] += self.fixed[b]
            if self.width[a] is None:
                self.width[a] = self.width[b]
        return a

    def fix(self, a: Space, reason: str) -> None:
        for s, _ in segments(a, self):
            self.fixed[self.find(s)].append(reason)

    def add(self, a: Space, module: str, role: str) -> None:
        """``module`` reads (``"in"``) or rescales (``"channel"``) the axis/segments ``a``."""
        for s, o in segments(a, self):
            self.members[self.find(s)].add(Member(module, role, o))


def segments(a: Space, ax: _Axes) -> list[tuple[int, int]]:
    """``[(axis, offset), ...]`` of a space: one axis at offset 0, or the segments of a ``cat``."""
    if isinstance(a, int):
        return [(a, 0)]
    out, o = [], 0
    for s, w in a:
        out.append((s, o))
        o += w
    return out


def _pieces(a: Space, width: int | None) -> tuple[tuple[int, int], ...] | None:
    if isinstance(a, int):
        return None if width is None else ((a, width),)
    return a


def _union(ax: _Axes, a: Space, b: Space, width: int | None) -> Space | None:
    """a + b (or cat along the batch): one axis if both are plain, the same segments pairwise; else None."""
    if isinstance(a, int) and isinstance(b, int):
        return ax.union(a, b)
    pa, pb = _pieces(a, width), _pieces(b, width)
    if pa is None or pb is None or [w for _, w in pa] != [w for _, w in pb]:
        return None
    return tuple((ax.union(x, y), w) for (x, _), (y, w) in zip(pa, pb))


def _trace(model: nn.Module, example_input: torch.Tensor) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
        gm = fx.GraphModule(model, graph)
    except Exception as e:  # noqa: BLE001 - any tracing failure becomes one clear message
        raise ValueError(f"cannot trace {type(model).__name__} with torch.fx to find coupled units "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); structured pruning "
                         "needs a model whose forward has no data-dependent Python control flow (nn.Sequential, "
                         "nl.MLP, nl.KAN or an nn.Module of Linear and element-wise layers)") from None
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"example_input of shape {tuple(example_input.shape)} does not run through "
                         f"{type(model).__name__}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         ) from None
    return gm


def _last_dim(node: Any) -> int | None:
    meta = getattr(node, "meta", {}).get("tensor_meta") if isinstance(node, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return int(shape[-1]) if shape is not None and len(shape) > 0 else None


def dependency_groups(model: nn.Module, example_input: torch.Tensor) -> Groups:
    """Trace ``model`` on ``example_input`` and return its groups of coupled hidden units.

    Args:
        model: an ``nn.Module`` built from ``nn.Linear`` / LoRA / KAN layers, per-channel modules
            (``BatchNorm1d``, ``LayerNorm``, ``PReLU``), element-wise activations and additions
            (``nl.MLP`` plain or ``residual=True``, ``nl.KAN``, ``nn.Sequential``, your own modules).
        example_input: a (batch, features) tensor the model accepts.

    Returns:
        :class:`Groups`: a list of :class:`Group` (width + members) in forward order; ``.fixed``
        holds the axes that cannot shrink, with the reason (model input/output, unknown op).

    Raises ``ValueError`` when the model cannot be traced or does not run on ``example_input``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor (a batch of inputs), got {type(example_input).__name__}")
    was = model.training
    model.eval()
    try:
        gm = _trace(model, example_input)
    finally:
        model.train(was)
    mods = dict(model.named_modules())
    ax = _Axes()
    space: dict[fx.Node, int] = {}
    out_axis: dict[str, int] = {}
    in_axis: dict[str, int] = {}
    calls: list[tuple[str, str]] = []

    def tensor_args(node: fx.Node) -> list[fx.Node]:
        flat: list[Any] = []
        fx.node.map_arg((node.args, node.kwargs), flat.append)
        return [a for a in flat if a in space]

    def union_or_opaque(node: fx.Node, args: list[fx.Node], what: str) -> None:
        v = space[args[0]]
        for a in args[1:]:
            v = _union(ax, v, space[a], _last_dim(node)) if v is not None else None
        if v is None:
            opaque(node, what)
        else:
            space[node] = v

    def opaque(node: fx.Node, what: str) -> None:
        for a in tensor_args(node):
            ax.fix(space[a], f"it feeds {what}")
        space[node] = ax.new(_last_dim(node), f"it comes out of {what}")

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            space[node] = ax.new(_last_dim(node), "it is the model's input")
        elif node.op == "get_attr":
            space[node] = ax.new(_last_dim(node), f"it is the tensor attribute {node.target}")
        elif node.op == "output":
            for a in tensor_args(node):
                ax.fix(space[a], "it is the model's output")
        elif node.op == "call_module":
            name, m = str(node.target), mods[str(node.target)]
            kind = layer_kind(m)
            args = tensor_args(node)
            if kind in ("linear", "lora", "kan") and len(args) == 1:
                calls.append((name, kind))
                a = space[args[0]]
                if name in in_axis:          # a layer called twice reads one axis
                    a = _union(ax, in_axis[name], a, _last_dim(args[0]))
                    if a is None:
                        opaque(node, f"module {name!r} called on differently concatenated inputs")
                        continue
                ax.add(a, name, "in")
                in_axis[name] = a
                o = ax.new(_last_dim(node))
                ax.members[o].add(Member(name, "out"))
                out_axis[name] = ax.union(out_axis[name], o) if name in out_axis else o
                space[node] = out_axis[name]
            elif kind == "channel" and len(args) == 1 and _last_dim(node) == _last_dim(args[0]):
                ax.add(space[args[0]], name, "channel")
                space[node] = space[args[0]]
            elif kind == "elementwise" and len(args) == 1:
                space[node] = space[args[0]]
            else:
                opaque(node, f"module {name!r} ({type(m).__name__}), which this analysis does not understand")
        elif node.op in ("call_function", "call_method"):
            target = node.target
            args = tensor_args(node)
            tname = target if isinstance(target, str) else getattr(target, "__name__", str(target))
            if _last_dim(node) is None:          # x.shape, x.size(): no tensor comes out
                continue
            if len(args) == 1 and (target in _ELEMENTWISE_FUNCS or target in _BINARY_FUNCS
                                   or target in _ELEMENTWISE_METHODS or target in _BINARY_METHODS):
                space[node] = space[args[0]]     # x + scalar, relu(x), ...
            elif len(args) == 2 and (target in _BINARY_FUNCS or target in _BINARY_METHODS):
                da, db = _last_dim(args[0]), _last_dim(args[1])
                if da == db == _last_dim(node):
                    union_or_opaque(node, args, f"the operation {tname} on differently concatenated axes")
                else:
                    opaque(node, f"the broadcasting operation {tname}")
            elif target in _CAT_FUNCS and args:
                dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
                rank = len(node.meta["tensor_meta"].shape)
                if isinstance(dim, int) and dim % rank == rank - 1:        # features side by side: segments
                    space[node] = tuple(p for a in args for p in _pieces(space[a], _last_dim(a)) or ())
                    if sum(w for _, w in space[node]) != _last_dim(node):
                        opaque(node, f"the operation {tname} (inputs of unknown width)")
                elif isinstance(dim, int):                                    # rows stacked: one feature axis
                    union_or_opaque(node, args, f"the operation {tname} of differently concatenated axes")
                else:
                    opaque(node, f"the operation {tname}")
            else:
                opaque(node, f"the operation {tname}")
    groups, fixed, seen = [], [], set()
    for a in range(len(ax.parent)):
        r = ax.find(a)
        if r in seen or not ax.members[r]:
            continue
        seen.add(r)
        g = Group(int(ax.width[r] or 0), frozenset(ax.members[r]))
        roles = {m.role for m in g.members}
        if ax.fixed[r]:
            fixed.append((g, ax.fixed[r][0]))
        elif "out" not in roles or "in" not in roles:
            fixed.append((g, "no layer writes it" if "out" not in roles else "no layer reads it"))
        else:
            groups.append(g)
    order = {name: i for i, (name, _) in enumerate(calls)}
    key = lambda g: min(order.get(n, 0) for n in g.names("out"))  # noqa: E731
    return Groups(sorted(groups, key=key), fixed, calls)
