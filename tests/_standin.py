"""A tiny stand-in for the foundation API (nl.MLP, nl.fit, nl.data) used ONLY by the CLI tests
while the `blocks`/`training` branches are not merged. Once they are, nothing here is used."""
from __future__ import annotations

import json
import math
import types
from pathlib import Path

import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, block, projection=None):
        super().__init__()
        self.block, self.projection = block, projection

    def forward(self, x):
        return self.block(x) + (x if self.projection is None else self.projection(x))


class MLP(nn.Sequential):
    def __init__(self, sizes, activation="relu", init="he", batchnorm=False, residual=False, dropout=0.0):
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            blk = [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if batchnorm else []) + [acts[activation]()]
            blk = nn.Sequential(*blk)
            layers.append(Residual(blk, None if a == b else nn.Linear(a, b, bias=False)) if residual else blk)
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        super().__init__(*layers)
        self.sizes = list(sizes)


class History:
    def __init__(self):
        self.train_loss, self.val_loss, self.train_acc, self.val_acc, self.epochs = [], [], [], [], []


def fit(model, train, val=None, loss="mse", optimizer="adam", lr=1e-3, epochs=10, batch_size=64, clip=None,
        seed=None, progress=True, callbacks=(), checkpoint_dir=None, resume=None, penalty=None, distributed=None):
    lf = nn.CrossEntropyLoss() if loss == "cross_entropy" else nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam" else torch.optim.SGD(model.parameters(), lr=lr)
    X, y = train
    g = torch.Generator().manual_seed(seed or 0)
    start = 0
    if resume:
        st = torch.load(Path(resume) / "ck.pt")
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"]); start = st["epoch"]
        g.set_state(st["g"])
    h = History()
    state = types.SimpleNamespace(model=model, optimizer=opt, history=h, logs={}, stop=False, epoch=0)
    for ep in range(start, epochs):
        state.epoch = ep + 1
        for cb in callbacks:
            getattr(cb, "on_epoch_start", lambda s: None)(state)
        perm = torch.randperm(len(X), generator=g)
        tot = 0.0
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            lv = lf(model(X[idx]), y[idx])
            if penalty is not None:
                lv = lv + penalty(model, X[idx])
            lv.backward(); opt.step(); tot += float(lv.detach()) * len(idx)
            for cb in callbacks:
                getattr(cb, "on_batch_end", lambda s: None)(state)
        with torch.no_grad():
            out = model(X)
            h.train_loss.append(float(lf(out, y)))
            if loss == "cross_entropy":
                h.train_acc.append(float((out.argmax(1) == y).float().mean()))
            if val is not None:
                vo = model(val[0]); h.val_loss.append(float(lf(vo, val[1])))
                if loss == "cross_entropy":
                    h.val_acc.append(float((vo.argmax(1) == val[1]).float().mean()))
        h.epochs.append(ep + 1)
        state.logs = {"train_loss": h.train_loss[-1]}
        for cb in callbacks:
            (cb.on_epoch_end if hasattr(cb, "on_epoch_end") else cb)(state)
        if checkpoint_dir:
            Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": ep + 1,
                        "g": g.get_state()}, Path(checkpoint_dir) / "ck.pt")
    return h


def toy(name, n=200, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g) * 2 - 1
    if name == "xor":
        y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).long()
    elif name == "circles":
        y = (X.norm(dim=1) < 0.6).long()
    else:
        y = (X[:, 0] + 0.3 * torch.sin(3 * X[:, 1]) > 0).long()
    return X, y


def install(nl):
    """Attach the stand-ins to the nnlab module where the real ones are missing."""
    if not hasattr(nl, "MLP"):
        nl.MLP, nl.Residual = MLP, Residual
    if not hasattr(nl, "fit"):
        nl.fit = fit
    if not hasattr(nl, "data"):
        nl.data = types.SimpleNamespace(toy=toy)
