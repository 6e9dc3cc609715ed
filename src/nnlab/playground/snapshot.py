"""What the page draws, as plain JSON-ready dicts computed from a :class:`Trainer`.

* :func:`data_view` — the train/test points (sent once per reset).
* :func:`state_view` — losses, per-layer gradient norms, the prediction surface
  (decision boundary / regression surface on a grid over [-R, R]^d), and the model's
  inside: each MLP hidden neuron's output on a coarse grid (lecture §2.4), or each KAN
  edge's learned 1-D function φ_{o,i} over the range its input takes, with its importance
  from ``KAN.edge_scores`` (lecture §6.2–6.3).
"""
from __future__ import annotations

import torch
from torch import nn

from nnlab.playground.trainer import Trainer

__all__ = ["data_view", "state_view", "RANGE"]

RANGE = 1.1  # the view covers [-RANGE, RANGE]^d; the data lie in [-1, 1]^d
HEAT_RES = 48
NEURON_RES = 16
CURVE_POINTS = 96
EDGE_POINTS = 32
MAX_NEURONS = 16  # heat maps per MLP layer sent to the page (the rest are counted, not drawn)


def _r(t: torch.Tensor, nd: int = 4) -> list:
    t = torch.nan_to_num(t.detach().float(), nan=0.0, posinf=1e6, neginf=-1e6)
    return torch.round(t, decimals=nd).tolist()


def _grid(dim: int, res: int) -> torch.Tensor:
    """Points of a res^dim grid over [-RANGE, RANGE]^dim, row-major (y outer, x inner) for 2-D."""
    xs = torch.linspace(-RANGE, RANGE, res)
    if dim == 1:
        return xs[:, None]
    gy, gx = torch.meshgrid(xs.flip(0), xs, indexing="ij")  # top row = largest y
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def data_view(tr: Trainer) -> dict:
    """Train/test points: ``{"task", "dim", "n_classes", "train": {"x", "y"}, "test": {...}}``."""
    s = tr.split

    def pts(X, y):
        return {"x": _r(X, 3), "y": y.tolist() if y.dtype == torch.long else _r(y.reshape(-1), 3)}

    return {"task": s.task, "dim": s.X_train.shape[1], "n_classes": s.n_classes, "range": RANGE,
            "train": pts(s.X_train, s.y_train), "test": pts(s.X_test, s.y_test)}


@torch.no_grad()
def _eval(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        return model(X)
    finally:
        model.train(was)


def _surface(tr: Trainer) -> dict:
    dim = tr.split.X_train.shape[1]
    res = HEAT_RES if dim == 2 else CURVE_POINTS
    out = _eval(tr.model, _grid(dim, res))
    view: dict = {"dim": dim, "res": res, "range": RANGE}
    if tr.split.task == "classification":
        p = torch.softmax(out, 1)
        conf, label = p.max(1)
        view.update(label=label.tolist(), conf=_r(conf, 3))
    else:
        view["value"] = _r(out[:, 0], 4)
    return view


@torch.no_grad()
def _neurons(tr: Trainer) -> list[dict]:
    """Each hidden MLP block's outputs on a coarse grid: per layer ``{"width", "res", "values"
    (min(width, MAX_NEURONS) lists of res^dim numbers), "lo", "hi"}``."""
    dim = tr.split.X_train.shape[1]
    res = NEURON_RES if dim == 2 else CURVE_POINTS // 2
    h = _grid(dim, res)
    model = tr.model
    was = model.training
    model.eval()
    layers = []
    try:
        for block in list(model.children())[:-1]:
            h = block(h)
            shown = h[:, :MAX_NEURONS]
            layers.append({"width": h.shape[1], "res": res, "dim": dim, "values": _r(shown.T, 3),
                           "lo": _r(shown.min(0).values, 3), "hi": _r(shown.max(0).values, 3)})
    finally:
        model.train(was)
    return layers


@torch.no_grad()
def _edges(tr: Trainer) -> list[dict]:
    """Each KAN layer's edge functions: ``{"in", "out", "x" (in × EDGE_POINTS), "y" (out × in ×
    EDGE_POINTS), "score" (out × in, raw), "importance" (out × in, score / the layer's max score, in [0, 1])}``."""
    model = tr.model
    X = tr.split.X_train
    was = model.training
    model.eval()
    try:
        records = model.trace(X)
        scores = model.edge_scores(X)
        out = []
        for layer, rec, score in zip(model.layers, records, scores):
            lo, hi = rec.input.min(0).values, rec.input.max(0).values
            t = torch.linspace(0, 1, EDGE_POINTS)[:, None]
            xs = lo + (hi - lo) * t  # (EDGE_POINTS, in)
            ys = layer.edge_activations(xs)  # (EDGE_POINTS, out, in)
            score = score.detach().float()
            out.append({"in": xs.shape[1], "out": ys.shape[1], "x": _r(xs.T, 3),
                        "y": _r(ys.permute(1, 2, 0), 3), "score": _r(score, 4)})
        for o in out:  # importance relative to the layer's strongest edge
            top = max(max(r) for r in o["score"])
            o["importance"] = [[round(v / top, 3) if top > 0 else 0.0 for v in row]
                               for row in o["score"]]
        return out
    finally:
        model.train(was)


def state_view(tr: Trainer) -> dict:
    """Everything the page redraws a few times a second."""
    h = tr.history
    view = {"epoch": tr.epoch, "history": {k: [round(v, 5) if isinstance(v, float) else v
                                               for v in vals] for k, vals in h.items()},
            "grad_norms": [round(g, 6) for g in tr.grad_norms], "surface": _surface(tr),
            "model": tr.cfg.model}
    if tr.is_kan:
        view["edges"] = _edges(tr)
    else:
        view["neurons"] = _neurons(tr)
    return view
