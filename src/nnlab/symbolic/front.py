"""The front of a symbolic search: every distinct formula found, from simplest to most complex.

A search tries several candidate KANs (see :mod:`nnlab.symbolic.search`); each leaves one
formula with its complexity (``sympy.count_ops`` + one per float constant) and its relative RMSE
on the held-out (validation) and training rows. :func:`build_front` keeps one row per distinct
formula (the one with the lowest validation error when two candidates agree), sorted by
complexity then validation error, and marks the rows on the accuracy/complexity Pareto front
(no simpler-or-equal formula is at least as accurate). The estimator's choice is one row
(``best_index_``); ``pick`` switches the row ``predict`` uses.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import sympy

from .._io import write_text
from .search import CandidateResult, complexity

__all__ = ["Equation", "Front", "build_front", "pick_row"]

COLUMNS = ("index", "chosen", "pareto", "candidate", "complexity", "val_error", "train_error", "closed", "formula")


@dataclass(frozen=True)
class Equation:
    """One row of the front. ``closed`` is False when some KAN edge kept its spline (the formula then
    holds ``phi_l_o_i(...)`` placeholders and ``predict`` evaluates the KAN)."""

    index: int
    candidate: str
    complexity: int
    val_error: float
    train_error: float
    formula: sympy.Expr
    closed: bool
    pareto: bool
    result: CandidateResult  # the candidate's full result (model, transform, edge fits)

    def as_dict(self, chosen: bool = False) -> dict[str, Any]:
        return {"index": self.index, "chosen": chosen, "pareto": self.pareto, "candidate": self.candidate,
                "complexity": self.complexity, "val_error": self.val_error, "train_error": self.train_error,
                "closed": self.closed, "formula": str(self.formula)}


class Front(Sequence[Equation]):
    """The rows of ``est.equations_`` (a read-only sequence of :class:`Equation`); ``chosen`` is the
    index of the row ``predict`` uses. ``str(front)`` is a table; ``to_csv(path)`` writes one."""

    def __init__(self, rows: Sequence[Equation], chosen: int | None) -> None:
        self._rows = list(rows)
        self.chosen = chosen

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        return self._rows[i]

    def __iter__(self) -> Iterator[Equation]:
        return iter(self._rows)

    def with_row(self, index: int, **changes: Any) -> "Front":
        """A copy of the front with row ``index`` changed (e.g. its refit, snapped ``formula``)."""
        rows = list(self._rows)
        rows[index] = replace(rows[index], **changes)
        return Front(rows, self.chosen)

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as JSON-able dicts (formula as a string)."""
        return [r.as_dict(r.index == self.chosen) for r in self._rows]

    def to_csv(self, path: str | Path | None = None) -> str:
        """The rows as CSV text (columns :data:`COLUMNS`); written atomically to ``path`` if given."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for d in self.to_dicts():
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in d.items()})
        text = buf.getvalue()
        if path is not None:
            write_text(path, text)
        return text

    def table(self, width: int = 100) -> str:
        """A plain-text table: ``>`` marks the row in use, ``*`` the Pareto rows."""
        head = f"{'':2}{'#':>3}  {'candidate':<14}{'complexity':>10}  {'val. error':>10}  {'train error':>11}  closed  formula"
        lines = [head, "-" * min(len(head) + 20, width)]
        room = max(width - len(head) + len("formula"), 20)
        for r in self._rows:
            f = str(r.formula)
            f = f if len(f) <= room else f[: room - 3] + "..."
            mark = (">" if r.index == self.chosen else " ") + ("*" if r.pareto else " ")
            lines.append(f"{mark}{r.index:>3}  {r.candidate:<14}{r.complexity:>10}  {_e(r.val_error):>10}  "
                         f"{_e(r.train_error):>11}  {'yes' if r.closed else 'no':<6}  {f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"Front({len(self)} formulas, chosen={self.chosen})\n{self.table()}"


def _e(v: float) -> str:
    return f"{v:.2e}" if math.isfinite(v) else "inf"


def _label(r: CandidateResult) -> str:
    c = r.candidate
    return c.name if c.seed == 0 else f"{c.name}#{c.seed}"


def build_front(results: Sequence[CandidateResult], to_user: Callable[[sympy.Expr], sympy.Expr] | None = None) -> Front:
    """One :class:`Equation` per distinct formula of ``results`` (failed candidates left out), sorted by
    complexity then validation error, Pareto rows marked. ``chosen`` is left None. ``to_user`` maps
    a candidate's formula (found on rescaled data) to the user's units."""
    best: dict[str, CandidateResult] = {}
    for r in results:
        if r.expr is None:
            continue
        key = str(r.expr)
        if key not in best or r.val_error < best[key].val_error:
            best[key] = r
    scored = [(r.complexity if r.complete else complexity(r.expr), r) for r in best.values()]
    scored.sort(key=lambda t: (t[0], t[1].val_error, _label(t[1])))
    rows, low = [], math.inf
    for i, (cx, r) in enumerate(scored):
        pareto = r.val_error < low
        low = min(low, r.val_error)
        expr = r.expr if to_user is None else to_user(r.expr)
        rows.append(Equation(i, _label(r), int(cx), float(r.val_error), float(r.train_error), expr,
                             bool(r.complete), pareto, r))
    return Front(rows, None)


def pick_row(front: Front, index: int | None = None, complexity: int | None = None) -> int:
    """The row to use: ``index`` itself, or the lowest validation error among rows of complexity ≤
    ``complexity`` (exactly one of the two)."""
    if (index is None) == (complexity is None):
        raise ValueError("pick needs exactly one of index or complexity=")
    if not len(front):
        raise ValueError("the front is empty: every candidate failed")
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, (int,)) and not hasattr(index, "__index__"):
            raise ValueError(f"index must be an int, got {index!r}")
        i = int(index)
        if not -len(front) <= i < len(front):
            raise ValueError(f"no row {i} in equations_: it has rows 0..{len(front) - 1}")
        return front[i].index
    rows = [r for r in front if r.complexity <= complexity]
    if not rows:
        raise ValueError(f"no formula has complexity <= {complexity}; the simplest has {front[0].complexity}")
    return min(rows, key=lambda r: (r.val_error, r.complexity)).index
