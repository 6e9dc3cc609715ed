"""Several targets: ``SymbolicRegressor.fit(X, Y)`` with ``Y`` of shape (n, t).

As scikit-learn's multi-output convention (``MultiOutputRegressor``): one independent search per
target column, each a clone of the estimator with the same parameters (so the same
``random_state``, ``n_jobs``, time limit per target). The parent keeps the clones in
``estimators_`` and exposes lists: ``formula_``, ``latex_``, ``complete_``, ``equations_``,
``best_index_`` (one entry per target); ``predict`` returns (n, t).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import validate_data

__all__ = ["fit_multi", "sync"]


def fit_multi(est: Any, X: Any, Y: Any, verbose: Any = None) -> Any:
    """Fit one clone of ``est`` per column of ``Y``; returns ``est``."""
    X, Y = validate_data(est, X, Y, multi_output=True, y_numeric=True, ensure_all_finite=False, dtype=np.float64)
    names = est._names(X.shape[1])
    t = Y.shape[1]
    old = getattr(est, "estimators_", None)
    warm = est.warm_start and old is not None and len(old) == t and list(est.variables_) == names
    subs = []
    for j in range(t):
        if warm:
            sub = old[j]
            sub.set_params(**{k: v for k, v in est.get_params(deep=False).items() if k != "variables"})
        else:
            sub = clone(est)
        sub.set_params(variables=names, units=_target_units(est.units, j, t))
        try:
            sub.fit(X, Y[:, j], verbose=verbose)
        except ValueError as e:
            raise ValueError(f"target {j}: {e}") from None
        subs.append(sub)
    est.estimators_ = subs
    est.variables_ = names
    est.n_outputs_ = t
    sync(est)
    return est


def _target_units(units: Any, j: int, t: int) -> Any:
    """Target ``j``'s units: ``units["target"]`` is one unit for every target or a list of ``t`` units
    (strings or exponent vectors)."""
    if not isinstance(units, dict) or "target" not in units:
        return units  # None, or an error the single-target fit reports
    u = units["target"]
    if isinstance(u, (list, tuple)) and u and not all(isinstance(e, (int, float, np.number)) for e in u):
        if len(u) != t:
            raise ValueError(f"units['target'] lists {len(u)} unit(s) but Y has {t} target(s); give one per "
                             "target or one unit for all")
        return {**units, "target": u[j]}
    return units


def sync(est: Any) -> None:
    """Copy the per-target fitted attributes of ``est.estimators_`` into lists on ``est``."""
    subs = est.estimators_
    est.formula_ = [s.formula_ for s in subs]
    est.latex_ = [s.latex_ for s in subs]
    est.complete_ = [s.complete_ for s in subs]
    est.equations_ = [s.equations_ for s in subs]
    est.best_index_ = [s.best_index_ for s in subs]
    est.candidates_ = [s.candidates_ for s in subs]
    est.n_iter_ = sum(s.n_iter_ for s in subs)
    est.result_ = {"targets": [s.result_ for s in subs], "formula": [str(f) for f in est.formula_],
                   "variables": est.variables_}
