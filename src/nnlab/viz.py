"""Figures for run folders and the lecture: loss curves, decision boundaries, activation gallery.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state,
no display needed); :func:`save_figure` writes it as PNG atomically.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
from matplotlib.figure import Figure

from nnlab._io import save_figure  # re-exported: nl.viz.save_figure

__all__ = ["loss_curves", "decision_boundary", "activation_gallery", "save_figure"]


def loss_curves(records: Sequence[dict[str, Any]], title: str = "") -> Figure:
    """Empirical and held-out risk (§1.1), accuracy, gradient norm and learning rate per epoch.

    The learning-rate panel is drawn only when the rate changes (a scheduler); a constant one is
    named in the title instead.

    ``records``: the lines of a run's ``metrics.jsonl``.
    """
    if not records:
        raise ValueError("no metrics to plot: metrics.jsonl is empty (did the run train any epoch?)")
    ep = [r["epoch"] for r in records]

    def series(key: str) -> tuple[list[Any], list[float]]:
        pts = [(e, r.get(key)) for e, r in zip(ep, records) if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    lr_x, lr_y = series("lr")
    flat_lr = len(set(lr_y)) <= 1  # a constant lr gets a note in the title, not a flat panel
    if flat_lr:
        fig = Figure(figsize=(12, 3.8), layout="constrained")
        panels = list(fig.subplots(1, 3))
    else:
        fig = Figure(figsize=(9, 6.5), layout="constrained")
        panels = list(fig.subplots(2, 2).ravel())
    ax = panels[0]
    for key, label in (("train_risk", "training risk"), ("val_risk", "validation risk")):
        x, y = series(key)
        if y:
            ax.plot(x, y, marker="." if len(x) < 30 else None, label=label)
    ax.set(xlabel="epoch", ylabel="loss", title="risk")
    if any(r.get("train_risk") and r["train_risk"] > 0 for r in records):
        ax.set_yscale("log")
    ax.legend()
    ax = panels[1]
    for key, label in (("train_accuracy", "training"), ("val_accuracy", "validation")):
        x, y = series(key)
        if y:
            ax.plot(x, y, label=label)
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    if ax.lines:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "regression: no accuracy", ha="center", va="center", transform=ax.transAxes)
    rows = [(panels[2], "grad_norm", "gradient norm ‖g‖")]
    if not flat_lr:
        rows.append((panels[3], "lr", "learning rate"))
    for ax, key, label in rows:
        x, y = series(key)
        if y:
            ax.plot(x, y)
            if key == "grad_norm" and min(y) > 0:
                ax.set_yscale("log")
        ax.set(xlabel="epoch", title=label)
    if flat_lr and lr_y:
        title = f"{title} (learning rate {lr_y[0]:g} throughout)" if title else f"learning rate {lr_y[0]:g}"
    if title:
        fig.suptitle(title)
    return fig


@torch.no_grad()
def decision_boundary(model: torch.nn.Module, X: Any, y: Any, resolution: int = 200,
                      title: str = "") -> Figure:
    """Predicted class over the plane of a 2-D classifier, with the data on top.

    ``X``: (n, 2) inputs, ``y``: (n,) integer labels; ``model`` maps (batch, 2) to (batch, classes).
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"a decision boundary needs 2-D inputs (n, 2); got shape {tuple(X.shape)}")
    lo, hi = X.min(0).values, X.max(0).values
    pad = 0.1 * (hi - lo).clamp_min(1e-6)
    gx = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), resolution)
    gy = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), resolution)
    xx, yy = torch.meshgrid(gx, gy, indexing="xy")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():  # the padded plane may leave a KAN's grid range: expected here
        warnings.simplefilter("ignore")
        out = model(grid)
    model.train(was_training)
    pred = out.argmax(1) if out.ndim == 2 and out.shape[1] > 1 else (out.reshape(-1) > 0).long()
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.subplots()
    n_cls = int(max(int(y.max()) + 1, int(pred.max()) + 1))
    ax.contourf(xx.numpy(), yy.numpy(), pred.reshape(resolution, resolution).numpy(),
                levels=torch.arange(n_cls + 1).float().sub(0.5).numpy(), cmap="coolwarm", alpha=0.35)
    ax.scatter(X[:, 0].numpy(), X[:, 1].numpy(), c=y.numpy(), cmap="coolwarm", s=10, edgecolors="k",
               linewidths=0.2)
    ax.set(xlabel="x1", ylabel="x2", title=title or "decision boundary")
    return fig


def activation_gallery(names: Sequence[str] | None = None, lo: float = -4.0, hi: float = 4.0,
                       params: dict[str, dict[str, Any]] | None = None) -> Figure:
    """f(x) and the analytic f'(x) of each activation (§3.8), one panel per function."""
    import nnlab as nl

    names = list(names or nl.activations.names())
    params = params or {}
    x = torch.linspace(lo, hi, 401)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        kw = params.get(name, {})
        spec = nl.activations.get(name)
        with torch.no_grad():
            f = spec.fn(x, **kw)
            d = nl.activations.derivative(name, x, **kw)
        ax.plot(x.numpy(), f.numpy(), label="f(x)")
        ax.plot(x.numpy(), d.numpy(), "--", label="f'(x)")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(name)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=8)
    return fig
