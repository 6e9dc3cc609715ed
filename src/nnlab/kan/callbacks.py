"""Training helpers for ``nl.fit`` (callback contract: ``on_epoch_start(state)`` etc.)."""
from __future__ import annotations

import torch

__all__ = ["GridUpdate"]


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

    def on_epoch_start(self, state) -> None:
        if state.epoch < self.until and state.epoch % self.every == 0:
            model = state.model
            x = torch.as_tensor(self.x)
            p = next(model.parameters())
            model.update_grid(x.to(device=p.device, dtype=p.dtype))
