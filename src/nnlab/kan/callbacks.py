"""Training helpers for ``nl.fit`` (callback contract: ``on_epoch_start(state)`` etc.)."""
from __future__ import annotations

import torch

__all__ = ["GridUpdate", "GridExtend", "grid_schedule", "grid_at"]


class GridUpdate:
    """Re-place a KAN's grid on the training inputs at the start of early epochs.

    ``nl.fit(model, (X, y), callbacks=[GridUpdate(X, every=5, until=50)])`` calls
    ``model.update_grid(X)`` at the start of epochs 0, 5, ..., < ``until`` (KAN paper §2.4).
    The update is in place (same parameters), so the optimizer keeps working.
    """

    def __init__(self, x, every: int = 5, until: int = 50):
        if every < 1 or until < 0:
            raise ValueError(f"every must be >= 1 and until >= 0, got every={every}, until={until}")
        self.x = x
        self.every = int(every)
        self.until = int(until)

    def on_fit_start(self, state) -> None:
        """Check ``x`` against the model now, not at the first update (possibly epochs later)."""
        x = torch.as_tensor(self.x)
        width = getattr(state.model, "width", None)
        if not callable(getattr(state.model, "update_grid", None)) or width is None:
            raise TypeError(f"GridUpdate needs a KAN, got {type(state.model).__name__}")
        if x.ndim != 2 or x.shape[1] != width[0] or x.shape[0] == 0:
            raise ValueError(f"GridUpdate's x must be (batch >= 1, {width[0]}) (the KAN's width[0]), "
                             f"got shape {tuple(x.shape)}")

    def on_epoch_start(self, state) -> None:
        if state.epoch < self.until and state.epoch % self.every == 0:
            model = state.model
            x = torch.as_tensor(self.x)
            p = next(model.parameters())
            model.update_grid(x.to(device=p.device, dtype=p.dtype))


def grid_schedule(grids: list[int], epochs: int) -> dict[int, int]:
    """Coarse-to-fine stages: ``grids[i]`` takes over at epoch ``1 + round(i·epochs/len(grids))``.

    ``grids[0]`` is the starting grid (not in the result); e.g. ``grid_schedule([5, 10, 20], 90)``
    is ``{31: 10, 61: 20}``.
    """
    if not grids or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in grids):
        raise ValueError(f"grids must be positive integers such as [5, 10, 20], got {grids!r}")
    if any(b <= a for a, b in zip(grids, grids[1:])):
        raise ValueError(f"grid extension goes from coarse to fine: the grids must increase, got {grids}")
    if epochs < len(grids):
        raise ValueError(f"{len(grids)} grid stages need at least {len(grids)} epochs, got {epochs}")
    return {1 + round(i * epochs / len(grids)): g for i, g in enumerate(grids) if i > 0}


def grid_at(grids: list[int], epochs: int, epoch: int) -> int:
    """The grid in use after ``epoch`` finished epochs under :func:`grid_schedule`."""
    current = grids[0]
    for start, g in sorted(grid_schedule(grids, epochs).items()):
        if start <= epoch:
            current = g
    return current


class GridExtend:
    """Refine a KAN's grid at the start of the scheduled epochs (coarse-to-fine, KAN paper §2.5).

    ``nl.fit(model, data, epochs=90, callbacks=[GridExtend({31: 10, 61: 20})])`` calls
    ``model.extend_grid(10)`` before epoch 31 and ``extend_grid(20)`` before epoch 61 (see
    :func:`grid_schedule`). The function is preserved; the spline coefficients become new
    Parameters, which replace the old ones in the optimizer (their moment estimates restart).
    Not under DDP (the wrapper holds the old parameters).
    """

    def __init__(self, schedule: dict[int, int]):
        if not isinstance(schedule, dict) or not all(isinstance(e, int) and e >= 1 for e in schedule):
            raise ValueError(f"schedule maps epochs (>= 1) to grid sizes, got {schedule!r}")
        self.schedule = dict(schedule)

    def on_epoch_start(self, state) -> None:
        grid = self.schedule.get(state.epoch)
        if grid is None:
            return
        if state.world_size > 1:
            raise ValueError("grid extension replaces parameters, which DistributedDataParallel does not "
                             "allow; extend the grid in a one-process run")
        model, opt = state.model, state.optimizer
        before = dict(model.named_parameters())
        model.extend_grid(grid)
        after = dict(model.named_parameters())
        swap = {id(before[n]): after[n] for n in before if n in after and after[n] is not before[n]}
        for group in opt.param_groups:
            for i, p in enumerate(group["params"]):
                if id(p) in swap:
                    opt.state.pop(p, None)
                    group["params"][i] = swap[id(p)]
