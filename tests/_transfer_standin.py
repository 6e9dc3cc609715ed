"""Test-only stand-in for ``nl.fit`` (contract in the brief) while branch `training` is unmerged.

``ensure_fit_and_mlp(monkeypatch)`` uses the real ``nnlab.training.fit`` when it exists; otherwise
it installs a tiny loop with the same signature subset for the duration of one test.
"""
from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F


class _History:
    def __init__(self) -> None:
        self.train_loss, self.val_loss, self.train_acc, self.val_acc, self.epochs = [], [], [], [], []


def _fit(model, train, val=None, loss="mse", optimizer="adam", lr=1e-3, epochs=10, batch_size=64,
         seed=None, progress=True, callbacks=(), penalty=None, **_):
    X, y = train
    fn = {"mse": F.mse_loss, "cross_entropy": F.cross_entropy}.get(loss, loss)
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[optimizer]
        opt = cls([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(0 if seed is None else seed)
    h = _History()
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            out = model(X[idx])
            L = fn(out, y[idx])
            if penalty is not None:
                L = L + penalty(model, X[idx])
            L.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            h.train_loss.append(float(fn(model(X), y)))
            if val is not None:
                h.val_loss.append(float(fn(model(val[0]), val[1])))
        h.epochs.append(e)
    return h


def ensure_fit_and_mlp(monkeypatch) -> None:
    try:
        from nnlab.training import fit  # noqa: F401
        return
    except ImportError:
        pass
    import nnlab

    mod = types.ModuleType("nnlab.training")
    mod.fit = _fit
    monkeypatch.setitem(sys.modules, "nnlab.training", mod)
    monkeypatch.setattr(nnlab, "training", mod, raising=False)
