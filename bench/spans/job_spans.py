"""Timed spans of a symbolic search, one JSON line each (process id, label, start, end, details),
appended to the file NNLAB_SPANS names: the candidates, the decomposition's surrogate and
power-factor fits, its leaves and joins, and the exchange's waits. Wraps functions in place; for
``bench/symbolic_spans.py`` only (never imported by nnlab)."""
from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import time


def _log(record: dict) -> None:
    with open(os.environ["NNLAB_SPANS"], "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


def _wrap(fn, label, details=None):
    @functools.wraps(fn)
    def spanned(*a, **k):
        t0 = time.time()
        try:
            return fn(*a, **k)
        finally:
            extra = {}
            raised = sys.exc_info()[0]
            if raised is not None:  # (a fit made ahead of need and dropped ends with Interrupted)
                extra["ended by"] = raised.__name__
            if details is not None:
                try:
                    extra.update(details(*a, **k))
                except Exception:  # noqa: BLE001 - details are best effort
                    pass
            _log({"pid": os.getpid(), "label": label, "t0": t0, "t1": time.time(), **extra})
    return spanned


def _replace(module: str, name: str, label: str, details=None) -> None:
    """Wrap ``module.name`` everywhere nnlab imported it by name."""
    old = getattr(importlib.import_module(module), name)
    new = _wrap(old, label, details)
    for m in list(sys.modules.values()):
        if getattr(m, "__name__", "").startswith("nnlab") and getattr(m, name, None) is old:
            setattr(m, name, new)


def install() -> None:
    for name in ("surrogate", "decompose", "decompose_candidate", "power_factor", "parallel", "exchange", "search"):
        importlib.import_module("nnlab.symbolic." + name)
    s = "nnlab.symbolic."
    _replace(s + "search", "run_candidate", "candidate",
             lambda cand, *a, **k: {"candidate": cand.name, "shard": k.get("shard"), "helper": k.get("helper", False)})
    _replace(s + "surrogate", "fit_surrogate", "surrogate fit",
             lambda X, y, **k: {"made here": k.get("exchange") is None, "log_inputs": k.get("log_inputs", True),
                                "log_target": k.get("log_target", False), "seed": k.get("seed", 0),
                                "columns": X.shape[1]})
    _replace(s + "power_factor", "fit_power_factors", "power-factor fit", lambda X, y, rest, **k: {"rest": rest})
    _replace(s + "decompose_candidate", "_finish", "decomposition's join")
    from nnlab.symbolic.decompose import _Decomposer
    from nnlab.symbolic.parallel import CandidateJob

    _Decomposer.leaf = _wrap(_Decomposer.leaf, "leaf", lambda self, node, info: {"variables": info.get("variables")})
    _Decomposer.exact_leaf = _wrap(_Decomposer.exact_leaf, "exact leaf")
    CandidateJob._join = _wrap(CandidateJob._join, "shards' join",
                               lambda self, mine, ex: {"candidate": self.candidate.name, "shard": self.shard})
