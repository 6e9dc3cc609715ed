"""``nl.SymbolicRegressor``: lecture §6.3's six steps as a scikit-learn estimator.

``fit(X, y)`` runs several KAN candidates (see :mod:`nnlab.symbolic.search`): additive KANs
``[n, 1]`` in raw, log-target and log-log space (products become sums) and deeper ``[n, h, 1]``
KANs (raw and log-log), each trained,
matched edge by edge to the library, refit, composed into sympy, polished and snapped. The
winner is chosen on held-out rows as the simplest formula (``sympy.count_ops``) whose error is
within 10% (+1e-9) of the best: a Pareto choice of accuracy against complexity.

Around the search (issue 11): the data are rescaled by powers of ten (:mod:`~nnlab.symbolic.scale`),
columns that carry nothing about y are dropped (:mod:`~nnlab.symbolic.dependence`), and the chosen
closed form is refit on every row and judged exact, exact within noise, approximate or "no law
found" (:mod:`~nnlab.symbolic.verdict`).
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Sequence

import numpy as np
import sympy
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from .dependence import Relevance, relevant_columns
from .export import NumpyFormula, TorchFormula, to_code
from .finish import EXACT_HELD_OUT, gather_numbers, merge_numbers
from .front import build_front, pick_row
from .library import LIBRARY, Library
from .parallel import CandidateJob, check_n_jobs, run_jobs
from .polish import evaluate, relative_rmse
from .progress import SearchProgress, enabled, not_applicable_reason
from .scale import Scale
from .search import Candidate, CandidateResult
from .snap import snap_coefficients
from .transforms import fixed_sign
from .verdict import judge
from .warm import key, rescore

__all__ = ["SymbolicRegressor"]


class SymbolicRegressor(RegressorMixin, BaseEstimator):
    """Discover a closed-form law ``y = f(x)`` with KANs (lecture §6.3).

    Args:
        width: KAN width ``[n, …, 1]`` to use; None lets the search choose among candidates.
        grid, k: spline grid intervals and order of the KANs.
        steps: L-BFGS iterations of the first training (refits use a fraction of it).
        lamb: sparsity regularisation weight (deeper KANs, when the KAN provides ``regularization``).
        r2_threshold: minimum r² for an edge to become symbolic (else its spline is kept).
        search: ``"auto"`` (all candidates), ``"additive"`` (only ``[n, 1]`` KANs; fast) or a
            sequence of candidate names (``monomial``, ``rational``, ``dictionary``, ``loglog``, ``raw``, ``logy``,
            ``composite``, ``decompose``, ``deep_raw``, ``deep_loglog``). ``rational`` fits a sparse
            ``P(x)/Q(x)`` by linear algebra (see :mod:`nnlab.symbolic.rational`); ``dictionary`` (up to three
            variables) a sparse sum of products of ``x, √x, 1/x, x², sin x, cos x`` (see
            :mod:`nnlab.symbolic.dictionary`). ``monomial`` (positive data only) fits ``C·Π x^p``
            by least squares in log space: the noise-robust form of ``loglog``. ``composite`` (features
            of fixed sign) looks for ``y = M₁(x)·g(M₂(x))``,
            monomials ``M`` and a library function ``g`` (see :mod:`nnlab.symbolic.composite`).
            ``decompose`` splits the problem with a fitted surrogate as oracle (symmetries,
            separability, linearity; see :mod:`nnlab.symbolic.decompose`); its tree of
            decisions is in ``result_["chosen"]["tree"]``.
        seeds: restarts (different seeds) of the non-additive candidates.
        library: a :class:`~nnlab.symbolic.library.Library` (default :data:`LIBRARY`).
        snap_tol: allowed increase of relative RMSE when snapping constants.
        time_limit: seconds; no new candidate starts after it (the first always runs).
        validation_fraction: share of rows held out to choose among candidates.
        nan_policy: ``"raise"`` (default) or ``"drop"`` rows with NaN/inf (with a warning).
        variables: names of the features in the formula (default ``feature_names_in_`` or x0, x1…).
        random_state: seed of the held-out split.
        n_jobs: candidates (and restarts) run in parallel through joblib: 1 = this process, k = k
            processes, -1 = every core; None = 1 unless inside ``joblib.parallel_config`` (e.g.
            ``backend="dask"`` runs them on a Dask cluster). Same formula as ``n_jobs=1``.
        verbose: True, False or ``"auto"`` (on when stderr is a terminal): one line per candidate
            and a bar for the search (see :mod:`nnlab.symbolic.progress`); ``fit(verbose=...)`` overrides.
        warm_start: a second ``fit`` continues from the candidates already found (see
            :mod:`nnlab.symbolic.warm`) instead of starting over.
        units: optional ``{variable: unit}`` with the target's unit under ``"target"``: unit strings
            (``"kg*m^2/s^2"``, ``"m/s"``, ``"N"``, ``"1"``) or exponent vectors of one length. The
            search then runs on the dimensionless groups: ``y = M(x)·g(π₁, …)`` (see
            :mod:`nnlab.symbolic.units`; the groups are in ``result_["units"]``, the inner
            estimator in ``inner_``). With several targets, ``"target"`` is one unit or a list of one per target.

    Fitted attributes: ``formula_`` (always a closed-form sympy expression in the user's variables;
    the mean of y when no law was found), ``latex_``, ``model_`` (the chosen KAN), ``result_``
    (JSON-able: ``status`` "exact" / "exact within noise" / "approximate" / "no law found",
    ``reason``, ``error``, ``dropped`` variables, scale exponents, per-edge fits, candidates),
    ``complete_`` (True when the law is exact, or exact within the noise; when False ``predict``
    uses the KAN with its spline edges if that is more accurate than the formula),
    ``variables_``, ``n_features_in_``, ``equations_`` (the front: every distinct formula found, by
    complexity, in the user's units; see :mod:`nnlab.symbolic.front`), ``best_index_`` (the search's
    row). ``pick`` switches the row ``predict`` uses; ``to_numpy``/``to_torch``/``to_code`` export it.
    With a target ``Y`` of shape (n, t), ``formula_``, ``latex_``, ``equations_``, ``best_index_`` are
    lists (one per target), ``estimators_`` holds one fitted estimator per target and ``predict``
    returns (n, t).
    """

    def __init__(self, width: Sequence[int] | None = None, grid: int = 5, k: int = 3, steps: int = 60,
                 lamb: float = 1e-3, r2_threshold: float = 0.99, search: str | Sequence[str] = "auto",
                 seeds: int = 1, library: Library | None = None, snap_tol: float = 1e-6,
                 time_limit: float = 60.0, validation_fraction: float = 0.25, nan_policy: str = "raise",
                 variables: Sequence[str] | None = None, random_state: int = 0, n_jobs: int | None = None,
                 verbose: bool | str = False, warm_start: bool = False,
                 units: dict[str, Any] | None = None) -> None:
        self.width = width
        self.grid = grid
        self.k = k
        self.steps = steps
        self.lamb = lamb
        self.r2_threshold = r2_threshold
        self.search = search
        self.seeds = seeds
        self.library = library
        self.snap_tol = snap_tol
        self.time_limit = time_limit
        self.validation_fraction = validation_fraction
        self.nan_policy = nan_policy
        self.variables = variables
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.warm_start = warm_start
        self.units = units

    # ------------------------------------------------------------------ input checks
    def _check_params(self) -> None:
        if self.nan_policy not in ("raise", "drop"):
            raise ValueError(f"nan_policy must be 'raise' or 'drop', got {self.nan_policy!r}")
        if not (isinstance(self.grid, (int, np.integer)) and self.grid >= 1):
            raise ValueError(f"grid must be an int >= 1, got {self.grid!r}")
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise ValueError(f"k must be an int >= 1, got {self.k!r}")
        if not (isinstance(self.steps, (int, np.integer)) and self.steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {self.steps!r}")
        if not 0 < self.r2_threshold <= 1:
            raise ValueError(f"r2_threshold must be in (0, 1], got {self.r2_threshold}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not (self.time_limit > 0):
            raise ValueError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if not (isinstance(self.seeds, (int, np.integer)) and self.seeds >= 1):
            raise ValueError(f"seeds must be an int >= 1 (restarts of the deeper candidates), got {self.seeds!r}")
        for name in ("lamb", "snap_tol"):  # a negative snap_tol let no formula pass: a constant came back
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not (0 <= v < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.library is not None and not isinstance(self.library, Library):
            raise TypeError(f"library must be an nl.symbolic.Library (e.g. nl.symbolic.LIBRARY.subset([...])) "
                            f"or None, got {type(self.library).__name__}")
        if not isinstance(self.search, str) and len(list(self.search)) == 0:
            raise ValueError("search is an empty list; give 'auto', 'additive' or candidate names")
        check_n_jobs(self.n_jobs)

    def _names(self, n: int) -> list[str]:
        if self.variables is not None:
            names = [str(v) for v in self.variables]
            if len(names) != n:
                raise ValueError(f"variables has {len(names)} names but X has {n} columns")
            _check_distinct(names, "variables")
            return names
        fn = getattr(self, "feature_names_in_", None)
        if fn is not None:
            names = [str(v) for v in fn]
            _check_distinct(names, "the column names of X")
            return names
        return [f"x{j}" for j in range(n)]

    def _validate(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.nan_policy == "drop":
            Xa = check_array(X, ensure_all_finite=False, dtype=np.float64)
            ya = column_or_1d(np.asarray(y, dtype=np.float64))
            if len(ya) != len(Xa):
                raise ValueError(f"X has {len(Xa)} rows but y has {len(ya)}; they must match")
            ok = np.isfinite(Xa).all(axis=1) & np.isfinite(ya)
            if not ok.all():
                warnings.warn(f"dropped {int((~ok).sum())} row(s) with NaN/inf (nan_policy='drop')", stacklevel=3)
                X, y = Xa[ok], ya[ok]
        X, y = validate_data(self, X, y, y_numeric=True, ensure_all_finite=False, dtype=np.float64,
                             ensure_min_samples=1)
        names = self._names(X.shape[1])
        bad = ~np.isfinite(X)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"X contains NaN or inf in {len(rows)} row(s) (first: row {r}, column "
                             f"'{names[c]}'); clean them or pass nan_policy='drop'")
        need = max(8, X.shape[1] + 3)
        if X.shape[0] < need:
            raise ValueError(f"got {X.shape[0]} sample(s) (rows) but SymbolicRegressor needs at least {need} "
                             f"for {X.shape[1]} feature(s); provide more rows")
        if np.ptp(y) == 0:
            raise ValueError(f"y is constant (every value is {y[0]:g}): there is no law to discover")
        for j in range(X.shape[1]):
            if np.ptp(X[:, j]) == 0:
                raise ValueError(f"feature '{names[j]}' (column {j}) is constant ({X[0, j]:g}); "
                                 "drop it: it carries no information")
        return X, y

    # ------------------------------------------------------------------ candidates
    def _candidates(self, X: np.ndarray, y: np.ndarray, names: list[str]) -> list[Candidate]:
        """The candidates for the (relevant) columns of X, named ``names``."""
        n = X.shape[1]
        self._not_applicable: list[str] = []
        xpos = all(fixed_sign(X[:, j]) != 0 for j in range(n))
        ypos = fixed_sign(y) != 0
        if self.width is not None:
            w = [int(v) for v in self.width]
            if len(w) < 2 or w[0] != n or w[-1] != 1:
                raise ValueError(f"width must look like [{n}, ..., 1] (n features in, one output), got {w}")
            hidden = tuple(w[1:-1])
            out = [Candidate("raw", hidden=hidden)]
            if ypos:
                out.append(Candidate("logy", log_y=True, hidden=hidden))
            if xpos and ypos:
                out.insert(0, Candidate("loglog", log_x=True, log_y=True, hidden=hidden))
            return out
        h = min(n + 1, 5)
        table = {
            "monomial": (xpos and ypos, Candidate("monomial", log_x=True, log_y=True)),
            "rational": (True, Candidate("rational")),
            "dictionary": (n <= 3, Candidate("dictionary")),
            "loglog": (xpos and ypos, Candidate("loglog", log_x=True, log_y=True)),
            "logy": (ypos, Candidate("logy", log_y=True)),
            "raw": (True, Candidate("raw")),
            "composite": (xpos, Candidate("composite", log_x=True, log_y=ypos)),  # signed y: α fitted raw
            "decompose": (n >= 2, Candidate("decompose")),
            "deep_raw": (True, Candidate("deep_raw", hidden=(h,))),
            "deep_loglog": (xpos and ypos, Candidate("deep_loglog", log_x=True, log_y=True, hidden=(h,))),
        }
        if self.search == "auto":
            names = list(table)
        elif self.search == "additive":
            names = ["monomial", "loglog", "logy", "raw"]
        elif isinstance(self.search, str):
            raise ValueError(f"search must be 'auto', 'additive' or a list of candidate names ({', '.join(table)}), "
                             f"got {self.search!r}")
        else:
            names = list(self.search)
            for nm in names:
                if nm not in table:
                    raise ValueError(f"unknown candidate {nm!r}; valid: {', '.join(table)}")
        out = []
        for nm in names:
            ok, c = table[nm]
            if ok:
                out.append(c)
            else:
                self._not_applicable.append(not_applicable_reason(c, X, y, names))
        for s in range(1, int(self.seeds)):
            out += [Candidate(c.name, c.log_x, c.log_y, c.hidden, seed=s) for c in out if c.hidden]
        return out or [Candidate("raw")]

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, verbose: bool | str | None = None) -> "SymbolicRegressor":
        """Run the search on (X (n_samples, n_features), y (n_samples,) or (n_samples, n_targets));
        returns self. ``verbose`` overrides the constructor's for this call."""
        self._check_params()
        shape = getattr(y, "shape", None) or np.asarray(y).shape
        if len(shape) == 2 and shape[1] > 1:  # several targets: one search per column
            from .multi import fit_multi

            return fit_multi(self, X, y, verbose)
        self._units = None
        if self.units is not None:
            from .units import fit_units

            return fit_units(self, X, y, verbose)
        warm = self._warm_state()
        X, y = self._validate(X, y)
        t_start = time.monotonic()
        lib = LIBRARY if self.library is None else self.library
        names = self._names(X.shape[1])
        self.variables_ = names
        # powers of ten out (scale invariance), then columns that carry nothing out (relevance)
        self._scale = Scale.fit(X, y)
        Xs, ys = self._scale.x(X), self._scale.y(y)
        rel = relevant_columns(Xs, ys, seed=self.random_state) if X.shape[1] > 1 or len(y) >= 20 \
            else Relevance(tuple(range(X.shape[1])), ())
        self._keep = list(rel.keep)
        dropped = [{"variable": names[j], "knn_error_with": round(e0, 6), "knn_error_without": round(e1, 6),
                    "rank_correlation": round(r, 4)} for j, e0, e1, r in rel.dropped]
        variables = [sympy.Symbol(names[j]) for j in self._keep]
        Xk = Xs[:, self._keep]
        rng = np.random.default_rng(self.random_state)
        n = len(y)
        if n >= 20 and self.validation_fraction > 0:
            perm = rng.permutation(n)
            n_val = max(int(round(self.validation_fraction * n)), 5)
            va, tr = perm[:n_val], perm[n_val:]
        else:
            tr = va = np.arange(n)
        data = (Xk[tr], ys[tr], Xk[va], ys[va])
        cands = self._candidates(Xk, ys, [names[j] for j in self._keep]) if self._keep else []
        if not self._keep:
            self._not_applicable = []
        context = (names, tuple(self._keep), tuple(self._scale.x_exp), self._scale.y_exp)
        earlier = [] if warm is None or warm[0] != context else [rescore(r, variables, *data) for r in warm[1]]
        seen = {key(r.candidate) for r in earlier}
        todo = [] if any(_exact(r) for r in earlier) else [c for c in cands if key(c) not in seen]
        opts = (("grid", int(self.grid)), ("k", int(self.k)), ("steps", int(self.steps)), ("lamb", float(self.lamb)),
                ("r2_threshold", float(self.r2_threshold)), ("snap_tol", float(self.snap_tol)))
        deadline = time.time() + float(self.time_limit)
        jobs = [CandidateJob(i if not earlier else i + 1, c, data, tuple(variables), lib, opts, deadline)
                for i, c in enumerate(todo)]
        show = enabled(self.verbose if verbose is None else verbose)
        progress = SearchProgress(show, len(jobs), n_jobs=self.n_jobs)
        progress.not_applicable(self._not_applicable)
        new = run_jobs(jobs, self.n_jobs, stop=_exact, on_start=progress.start, on_end=progress.end)
        progress.close(new, todo)
        skipped = [r.candidate for r in new if r.note.startswith("skipped")]
        results = earlier + [r for r in new if not r.note.startswith("skipped")]
        self._context = context
        self._set_results(results, X, y, Xs, Xk, ys, va, variables, dropped, t_start, skipped, cands)
        return self

    def _warm_state(self) -> tuple[tuple, list[CandidateResult]] | None:
        if not self.warm_start or not hasattr(self, "candidates_") or getattr(self, "n_outputs_", 1) != 1:
            return None
        return self._context, list(self.candidates_)

    def _set_results(self, results: list[CandidateResult], X: np.ndarray, y: np.ndarray, Xs: np.ndarray,
                     Xk: np.ndarray, ys: np.ndarray, va: np.ndarray, variables: list[sympy.Symbol],
                     dropped: list[dict[str, Any]], t_start: float, skipped: list[Candidate],
                     planned: list[Candidate]) -> None:
        names = self.variables_
        every = [sympy.Symbol(v) for v in names]
        best = self._choose(results)
        self.candidates_ = results
        self._chosen = best
        self.n_iter_ = len(results)
        verdict = judge(best, results, Xk, ys, variables, va, X_all=Xs, dropped=[d["variable"] for d in dropped],
                        x_signs=[fixed_sign(Xk[:, j]) for j in range(Xk.shape[1])], y_sign=fixed_sign(ys))
        self._scaled_formula = verdict.formula
        self.formula_ = merge_numbers(self._scale.unscale(verdict.formula, every))
        if not self._scale.identity and self.formula_.atoms(sympy.Float):  # snap in the user's units
            user_X = X[:, self._keep]
            with np.errstate(all="ignore"):
                snapped = snap_coefficients(gather_numbers(self.formula_), user_X, y,
                                            tol=float(self.snap_tol) + 0.01 * verdict.error, variables=variables)
            if math.isfinite(snapped.error) and snapped.expr != self.formula_:
                self.formula_ = snapped.expr
                self._scaled_formula = self._scale.rescale(snapped.expr, every)
        self.complete_ = verdict.exact
        kan = verdict.kan
        self.model_ = kan.model if kan is not None else (best.model if best is not None else None)
        self._transform = kan.transform if kan is not None else None
        self.latex_ = sympy.latex(self.formula_)
        chosen = best.summary() if best is not None else {"note": "no candidate ran"}
        # the front, in the user's units; the search's row shows the verdict's (refit, snapped) formula
        front = build_front(results, to_user=lambda e: merge_numbers(self._scale.unscale(e, every)))
        self.n_outputs_ = 1
        self.best_index_ = next((row.index for row in front if row.result is best), None)
        if best is not None and self.best_index_ is None:  # the same formula came from a better-scored twin
            self.best_index_ = next(row.index for row in front if str(row.result.expr) == str(best.expr))
        if self.best_index_ is not None:
            front = front.with_row(self.best_index_, formula=self.formula_)
        front.chosen = self.best_index_
        self.equations_ = front
        self._search_state = (self.formula_, self._scaled_formula, self.complete_, self.model_, self._transform)
        ran = {key(r.candidate) for r in results}
        self.result_ = {
            "formula": str(self.formula_), "latex": self.latex_, "complete": self.complete_,
            "status": verdict.status, "reason": verdict.reason, "error": verdict.error,
            "variables": names, "used_variables": [names[j] for j in self._keep], "dropped": dropped,
            "scale": {"x_exponents": list(self._scale.x_exp), "y_exponent": self._scale.y_exp},
            "predict_with": "kan" if kan is not None else "formula",
            "chosen": chosen, "seconds": round(time.monotonic() - t_start, 3),
            "unmatched_edges": [m.as_dict() for m in (best.matches if best else []) if not m.matched],
            "candidates": [{k: v for k, v in r.summary().items() if k != "edges"} for r in results],
            "equations": front.to_dicts(), "best_index": self.best_index_,
            "skipped_by_time_limit": [c.name if c.seed == 0 else f"{c.name}#{c.seed}" for c in skipped],
            "not_run": [c.name for c in planned if key(c) not in ran and c not in skipped],
            "not_applicable": list(self._not_applicable),
        }

    def pick(self, index: int | None = None, *, complexity: int | None = None,
             target: int | None = None) -> "SymbolicRegressor":
        """Use row ``index`` of ``equations_`` for ``predict`` and the exports; or, with ``complexity=c``,
        the most accurate row (lowest validation error) of complexity ≤ c. ``target`` picks the
        estimator of one target when several were fitted. Returns self."""
        check_is_fitted(self, "equations_")
        if getattr(self, "_units", None) is not None:
            from .units import compose

            if self.inner_ is None:
                raise ValueError("with units and no dimensionless group the law is one constant: nothing to pick")
            self.inner_.pick(index, complexity=complexity)
            compose(self)
            return self
        if getattr(self, "n_outputs_", 1) > 1:
            if target is None:
                raise ValueError(f"this estimator has {self.n_outputs_} targets; say which with target=0..."
                                 f"{self.n_outputs_ - 1}")
            self.estimators_[target].pick(index, complexity=complexity)
            self._sync_multi()
            return self
        self.equations_.chosen = pick_row(self.equations_, index, complexity)
        if self.equations_.chosen == self.best_index_:  # the search's own choice, as the verdict left it
            self.formula_, self._scaled_formula, self.complete_, self.model_, self._transform = self._search_state
        else:  # every row is a closed form in the user's units: predict evaluates it
            row = self.equations_[self.equations_.chosen]
            every = [sympy.Symbol(v) for v in self.variables_]
            self.formula_, self.complete_, self.model_ = row.formula, row.closed, row.result.model
            self._scaled_formula, self._transform = self._scale.rescale(row.formula, every), None
        self.latex_ = sympy.latex(self.formula_)
        return self

    # ------------------------------------------------------------------ exports
    def _exprs(self) -> tuple[list[sympy.Expr], bool]:
        check_is_fitted(self, "formula_")
        multi = getattr(self, "n_outputs_", 1) > 1
        return (list(self.formula_) if multi else [self.formula_]), multi

    def to_numpy(self) -> NumpyFormula:
        """A vectorised numpy callable ``f(X (n, d)) -> (n,)`` (or (n, t)) equal to ``predict``."""
        exprs, multi = self._exprs()
        return NumpyFormula(exprs, self.variables_, multi)

    def to_torch(self) -> TorchFormula:
        """An ``nn.Module`` ``X (n, d) -> (n,)`` (or (n, t)), float64, constants as ``nn.Parameter``."""
        exprs, multi = self._exprs()
        return TorchFormula(exprs, self.variables_, multi)

    def to_code(self, name: str = "formula") -> str:
        """Source of a standalone Python function ``name(X)`` that needs only numpy."""
        exprs, multi = self._exprs()
        return to_code(exprs, self.variables_, name, multi)

    @staticmethod
    def _choose(results: list[CandidateResult]) -> CandidateResult | None:
        """Every candidate now ends in a closed form (incomplete ones with the closest library
        functions), so the choice is one Pareto rule: the simplest within 10% of the best error."""
        ok = [r for r in results if r.expr is not None and math.isfinite(r.val_error)]
        if not ok:
            return None
        best = min(r.val_error for r in ok)
        near = [r for r in ok if r.val_error <= best * 1.1 + 1e-9]
        return min(near, key=lambda r: (r.complexity, r.val_error))

    def predict(self, X: Any) -> np.ndarray:
        """Evaluate the formula (or, when no exact law was found and the KAN with its spline edges
        is more accurate, that KAN) on X (n, n_features)."""
        check_is_fitted(self, "formula_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if getattr(self, "n_outputs_", 1) > 1:
            return np.column_stack([e.predict(X) for e in self.estimators_])
        if getattr(self, "_units", None) is not None:
            from .units import predict_units

            return predict_units(self, X)
        Xk = self._scale.x(X)[:, self._keep]
        if self._transform is None:
            out = evaluate(self._scaled_formula, [sympy.Symbol(self.variables_[j]) for j in self._keep], Xk)
        else:
            tr = self._transform
            with torch.no_grad():
                t = self.model_(torch.from_numpy(tr.x(Xk))).numpy()[:, 0]
            out = tr.y_inverse(t)
        return np.asarray(self._scale.y_inverse(out), dtype=np.float64)

    def error(self, X: Any, y: Any) -> float:
        """Relative RMSE ``RMSE / RMS(y)`` of the predictions on (X, y)."""
        p, y = self.predict(X), np.asarray(y, dtype=np.float64)
        return relative_rmse(p, y.reshape(p.shape))

    def _sync_multi(self) -> None:
        from .multi import sync

        sync(self)


def _exact(r: CandidateResult) -> bool:
    """Stop rule of the search: a closed formula exact on the held-out rows (simpler ones came first)."""
    return r.complete and r.val_error < EXACT_HELD_OUT


def _check_distinct(names: list[str], what: str) -> None:
    """Each variable is one sympy Symbol: names must be distinct and non-blank."""
    blank = [i for i, v in enumerate(names) if not v.strip()]
    if blank:
        raise ValueError(f"{what} has blank name(s) at position(s) {', '.join(map(str, blank))}")
    dups = sorted({v for v in names if names.count(v) > 1})
    if dups:
        raise ValueError(f"{what} must be distinct; repeated: {', '.join(map(repr, dups))}")
