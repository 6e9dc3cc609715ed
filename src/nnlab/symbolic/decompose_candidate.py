"""The decomposition as one candidate of the search (:mod:`nnlab.symbolic.search`): its own time
budget, the refit and snap of the composed law, and the join of its shards under ``n_jobs``.

The decomposition itself (surrogate, structure tests, recursion) is :mod:`nnlab.symbolic.decompose`.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import sympy

from .compose import choose_parts, finish
from .decompose import Decomposition, decompose
from .exact_parts import expand, resolve_variables
from .exchange import Exchange
from .finish import fill_result
from .library import Library
from .surrogate import help_decompose

__all__ = ["run_decompose", "merge_shards", "ShardsDisagree"]


class ShardsDisagree(RuntimeError):
    """The shards of one decomposition took different decisions (only a clock can part them: a time
    budget that ran out in one shard and not in another); the merge cannot join them."""


def run_decompose(res: Any, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                  variables: list[sympy.Symbol], lib: Library, *, snap_tol: float, deadline: float | None,
                  share: float = 0.6, min_seconds: float = 15.0, shard: tuple[int, int] | None = None,
                  exchange: Exchange | None = None, helper: bool = False) -> None:
    """Fill ``res`` (a :class:`~nnlab.symbolic.search.CandidateResult`) with the decomposition's law.

    Its own time budget: ``share`` of what is left before the search's ``deadline``, at least
    ``min_seconds`` (so it is never starved when it starts late, and the candidates after it keep
    the rest). Past the budget parts become leaves; choosing the leaves' fits may take 15% more,
    and past 25% more the law is only polished, not snapped.

    ``shard=(j, K)``: only the j-th share of the leaves, left in ``res.partial`` (no formula);
    :func:`merge_shards` joins the K shares into this function's unsharded result.

    ``exchange`` (parallel runs): the surrogate fits are shared with the other shards (or the helper
    job), each made once (the same law, sooner). A shard other than the first (or ``helper=True``) first
    fits the surrogate the decomposition needs second (raw inputs) while the first shard fits the
    first one (log inputs); a helper stops there (``res`` keeps no formula)."""
    if shard is not None and shard[0] > 0 and exchange is not None:
        help_decompose(Xtr, ytr, exchange)
    if helper:
        if exchange is None:
            raise ValueError("a helper of the decomposition needs an exchange to hand its fit over")
        given = help_decompose(Xtr, ytr, exchange)
        res.note = "helper: raw-input surrogate " + ("handed over" if given else "not needed")
        return
    t0 = time.monotonic()
    left = (float(deadline) - t0) if deadline is not None else min_seconds / share
    budget = max(share * left, min_seconds)
    end = t0 + budget
    d = decompose(Xtr, ytr, variables, lib, refit=False, deadline=end, shard=shard, exchange=exchange)
    end += d.oracle_seconds  # a poor oracle's extra work does not count against the budget
    if shard is not None:  # the end of the budget as wall-clock time: the merge may run in another process
        res.partial = {"decomposition": d, "end": time.time() + budget + d.oracle_seconds, "budget": budget}
        return
    _finish(res, d, Xtr, ytr, Xva, yva, variables, snap_tol, end, budget)


def merge_shards(res: Any, parts: list[dict], Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                 variables: list[sympy.Symbol], snap_tol: float, exchange: Exchange | None = None,
                 helping: bool = False) -> None:
    """Join the shards of :func:`run_decompose` (``res.partial`` of each, in shard order): every shard
    took the same decisions (same oracle, same random stream), so the template is shared; each leaf's
    fits come from the one shard that fitted it. Then the tail of the unsharded run.

    ``exchange``: the shards that join at once (each calls this) split the completion's fits
    (:meth:`Decomposition.completed`); ``helping``: this one only helps, up to that step (``res`` is
    left as it was), the other finishes."""
    ds = [p["decomposition"] for p in parts]
    d = ds[0]
    shape = [(None if e.template is None else sympy.srepr(e.template), None if e.parts is None else list(e.parts))
             for e in ds]
    if any(s != shape[0] for s in shape):
        raise ShardsDisagree("the shards of the decomposition split the law differently")
    if d.parts is not None:
        fits = {}
        for L in d.parts:
            owners = [e.parts[L] for e in ds if e.parts[L] is not None]
            if len(owners) != 1:
                raise ShardsDisagree(f"leaf {L} of the decomposition was fitted by {len(owners)} shards, not 1")
            fits[L] = owners[0]
        raw = resolve_variables(expand(d.template, d.splits), d.subs)
        raw = raw.xreplace({L: alts[0] for L, alts in fits.items()})
        d = Decomposition(raw, raw, _merge_trees([e.tree for e in ds]), d.surrogate_error, d.template, fits,
                          d.oracle_seconds, d.splits, d.subs, d.noisy)
    end = time.monotonic() + (parts[0]["end"] - time.time())
    _finish(res, d, Xtr, ytr, Xva, yva, variables, snap_tol, end, parts[0]["budget"], exchange, helping)


def _merge_trees(trees: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' trees have the same shape; at each leaf one shard has the fit, the others ``deferred``."""
    if "children" in trees[0]:
        kids = [t["children"] for t in trees]
        return {**trees[0], "children": [_merge_trees([k[i] for k in kids]) for i in range(len(kids[0]))]}
    done = [t for t in trees if "deferred" not in t]
    return done[0] if done else trees[0]


def _finish(res: Any, d: Decomposition, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
            variables: list[sympy.Symbol], snap_tol: float, end: float, budget: float,
            exchange: Exchange | None = None, helping: bool = False) -> None:
    if helping:  # only the completion's fits, shared with the shard that finishes
        if d.raw is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d.completed(Xtr, variables, deadline=end + 0.1 * budget, exchange=exchange)
        return
    res.tree = d.tree
    if d.raw is None:
        res.note = f"decompose: no split found (surrogate error {d.surrogate_error:.1e})"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template, fits = d.completed(Xtr, variables, deadline=end + 0.1 * budget, exchange=exchange)
        raw = choose_parts(template, fits, variables, Xtr, ytr, deadline=end + 0.15 * budget)
        expr = finish(raw, variables, Xtr, ytr, snap_tol, time.monotonic() > end + 0.25 * budget)
    fill_result(res, expr, variables, Xtr, ytr, Xva, yva,
                f"decompose: {d.tree['split']} (surrogate error {d.surrogate_error:.1e})",
                complete=not expr.atoms(sympy.core.function.AppliedUndef))
