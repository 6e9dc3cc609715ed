"""Reports of a symbolic fit: per-edge plots with the matched function overlaid, and a folder
with ``result.json``, ``formula.txt``, ``equations.csv`` and ``edges.png`` (all files written atomically)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import save_figure, write_json, write_text
from .library import LIBRARY, Library
from .matching import EdgeMatch

__all__ = ["edge_figure", "write_report", "metrics"]


def metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """RMSE and R² (``1 − SS_res/SS_tot``) of predictions."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    m = float(np.max(np.abs(y_true))) if y_true.size else 0.0
    m = m if m > 0 and math.isfinite(m) else 1.0  # y near 1e±300: sums of squares on y/m, no overflow
    with np.errstate(all="ignore"):
        t, p = y_true / m, y_pred / m
    res = float(np.sum((t - p) ** 2))
    tot = float(np.sum((t - t.mean()) ** 2))
    return {"rmse": m * math.sqrt(res / max(len(t), 1)), "r2": 1.0 - res / tot if tot > 0 else float("nan")}


def edge_figure(matches: list[EdgeMatch], lib: Library | None = None, max_edges: int = 24,
                input_names: list[str] | None = None):
    """A matplotlib Figure: for each edge, the learned spline samples (dots) and the matched
    function ``c·f(a·x + b) + d`` (line), titled with the function and r²; unmatched edges say so.
    ``input_names`` label the x axis of first-layer edges."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lib = LIBRARY if lib is None else lib
    shown = [m for m in matches if m.samples is not None][:max_edges]
    n = max(len(shown), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no spline edges were matched\n(the formula came out directly)", ha="center",
                        va="center")
    for ax, m in zip(axes.ravel(), shown):
        xs, ys = np.asarray(m.samples[0]), np.asarray(m.samples[1])
        ax.plot(xs, ys, ".", ms=3, color="0.4", label="spline")
        if m.matched and m.fit is not None and m.name is not None:
            f = lib[m.name]
            with torch.no_grad():
                fx, ok = f.safe(torch.from_numpy(m.fit.a * xs + m.fit.b))
            yy = np.where(ok.numpy(), m.fit.c * fx.numpy() + m.fit.d, np.nan)
            ax.plot(xs, yy, "-", color="C3", lw=1.5, label=m.name)
            ax.set_title(f"φ[{m.layer},{m.out},{m.inp}] ≈ {m.name}  (r²={m.fit.r2:.6f})", fontsize=8)
        else:
            ax.set_title(f"φ[{m.layer},{m.out},{m.inp}]: spline kept", fontsize=8, color="C3")
        if m.layer == 0 and input_names is not None and m.inp < len(input_names):
            ax.set_xlabel(input_names[m.inp], fontsize=8)
        else:
            ax.set_xlabel(f"node {m.inp} of layer {m.layer}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def write_report(folder: str | Path, estimator: Any, held_out: dict[str, float] | None = None) -> Path:
    """Write ``result.json``, ``formula.txt``, ``equations.csv`` and ``edges.png`` of a fitted SymbolicRegressor."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result = dict(estimator.result_)
    if held_out is not None:
        result["held_out"] = held_out
    write_json(folder / "result.json", result)
    write_text(folder / "formula.txt", f"{estimator.formula_}\n\nLaTeX: {estimator.latex_}\n")
    if getattr(estimator, "equations_", None) is not None:
        estimator.equations_.to_csv(folder / "equations.csv")  # the front (nnlab.symbolic.front)
    best = getattr(estimator, "_chosen", None)
    names = None
    if best is not None:
        log = best.candidate.log_x
        used = [estimator.variables_[j] for j in getattr(estimator, "_keep", range(len(estimator.variables_)))]
        names = [f"{'log|' + v + '|' if log else v} (scaled to [-1, 1])" for v in used]
    fig = edge_figure(best.matches if best is not None else [], estimator.library, input_names=names)
    save_figure(fig, folder / "edges.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return folder
