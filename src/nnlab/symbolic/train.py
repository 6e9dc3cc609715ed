"""Full-batch training of a (partly symbolic) KAN: steps 1 and 4 of lecture §6.3.

Loss ``L = mean((KAN(x) − y)²) + λ·R(x)`` with ``R`` the KAN's sparsity regulariser
(``model.regularization``, §6.3 step 1) when ``lamb > 0``. L-BFGS with strong-Wolfe line search:
on a few thousand rows and a small KAN this reaches the precision symbolic matching needs
much faster than Adam. The same routine refits the affine parameters ``a, b, c, d`` of symbolic
edges (step 4), since they are ordinary parameters of ``layer.symbolic``.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

__all__ = ["train_lbfgs", "Interrupted"]


class Interrupted(Exception):
    """A fit stopped by its ``stop`` test: no longer wanted, so it has no result."""


def train_lbfgs(model: Any, x: torch.Tensor, y: torch.Tensor, steps: int = 100, lamb: float = 0.0,
                update_grid_every: int = 0, deadline: float | None = None, lr: float = 1.0,
                stop: Callable[[], bool] | None = None) -> float:
    """Train ``model`` on (x (batch, in), y (batch, out)) for ``steps`` L-BFGS iterations.

    Stops early at ``deadline`` (a ``time.monotonic()`` value) or when the loss stops being finite
    (parameters are then restored to their last finite state). Returns the final MSE.
    ``stop``: asked every 10 iterations; when it says yes the fit is no longer wanted (a parallel
    search's fit made ahead of need, :mod:`~nnlab.symbolic.exchange`) and :class:`Interrupted` is raised.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or steps <= 0:
        with torch.no_grad():
            return float(torch.mean((model(x) - y) ** 2))
    chunk = 10  # L-BFGS iterations per optimizer call (history is kept across an optimizer's calls)
    use_reg = lamb > 0 and hasattr(model, "regularization")

    def make_opt() -> torch.optim.LBFGS:
        return torch.optim.LBFGS(params, lr=lr, max_iter=chunk, history_size=20, line_search_fn="strong_wolfe",
                                 tolerance_grad=1e-12, tolerance_change=1e-15)

    opt = make_opt()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        if use_reg:
            loss = loss + lamb * model.regularization(x)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    last = [p.detach().clone() for p in params]
    done = 0
    while done < steps:
        if update_grid_every and done % update_grid_every < chunk and done < steps // 2 and hasattr(model, "update_grid"):
            with torch.no_grad():
                model.update_grid(x)
            opt = make_opt()
        try:
            opt.step(closure)
            ok = all(bool(torch.isfinite(p).all()) for p in params)
        except (IndexError, ValueError):  # torch's strong-Wolfe search can fail on a non-finite bracket, and a
            ok = False  # deep KAN's trial step can overflow its hidden layer (its next layer refuses inf): stop there
        done += chunk
        if ok:
            try:
                with torch.no_grad():
                    loss = torch.mean((model(x) - y) ** 2)
                ok = bool(torch.isfinite(loss))
            except ValueError:
                ok = False
        if not ok:
            with torch.no_grad():
                for p, v in zip(params, last):
                    p.copy_(v)
            break
        last = [p.detach().clone() for p in params]
        if deadline is not None and time.monotonic() > deadline:
            break
        if stop is not None and stop():
            raise Interrupted("the fit is no longer wanted")
    with torch.no_grad():
        return float(torch.mean((model(x) - y) ** 2))
