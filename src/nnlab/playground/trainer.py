"""Step-wise training for the playground: one :meth:`Trainer.step` is one epoch of minibatches.

The playground needs play / pause / step / reset, so it does not call ``nl.fit`` (which runs
whole epochs on its own); it drives ``nl.MLP`` / ``nl.KAN`` with a torch optimizer directly:

    L = loss(f(X_b), y_b) + λ·R(θ)        (lecture §2: empirical risk + regulariser)
    θ ← optimizer_step(θ, clip(∇_θ L))

with R = Σ|w| (L1), Σw² (L2) or ``KAN.regularization`` (L1 + entropy sparsity, lecture §6.3
step 1), and gradient clipping by norm or by value. Everything a snapshot needs (losses,
per-layer gradient norms) is recorded as it goes.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nnlab.playground.config import PlaygroundConfig
from nnlab.playground.datasets import Split, io_dims, make_split

__all__ = ["Trainer", "DivergedError", "build_model", "layer_modules"]

#: KAN grids are refitted to the data (``KAN.update_grid``) at the start and after these epochs,
#: as pykan does early in training.
GRID_UPDATE_EPOCHS = (2, 4, 6, 8, 10)
MAX_HISTORY = 400


class DivergedError(RuntimeError):
    """The loss became NaN or infinite."""


def build_model(cfg: PlaygroundConfig) -> nn.Module:
    """``nl.MLP([n_in, width × layers, n_out], ...)`` or ``nl.KAN([n_in, *kan_hidden, n_out], ...)``
    with the weights seeded from ``cfg.seed`` (the global RNG is left untouched)."""
    import nnlab as nl

    n_in, n_out = io_dims(cfg.dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.model == "mlp":
            sizes = [n_in, *([cfg.width] * cfg.layers), n_out]
            return nl.MLP(sizes, activation=cfg.activation, init=cfg.init,
                          batchnorm=cfg.batchnorm, residual=cfg.residual)
        return nl.KAN(width=[n_in, *cfg.kan_hidden, n_out], grid=cfg.grid, k=cfg.k)


def layer_modules(model: nn.Module) -> list[nn.Module]:
    """The layers whose gradient norms are reported: an MLP's children, a KAN's ``.layers``."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, nn.ModuleList):
        return list(layers)
    return list(model.children())


def _optimizer(cfg: PlaygroundConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr)
    return torch.optim.Adam(params, lr=cfg.lr)


def _clip(model: nn.Module, cfg: PlaygroundConfig) -> None:
    """Gradient clipping (``nl.clip``, lecture §2.10): rescale to ‖g‖ ≤ c (``norm``) or clamp
    each g_i to [-c, c] (``value``)."""
    if cfg.clip == "none":
        return
    from nnlab import clip

    params = [p for p in model.parameters() if p.grad is not None]
    if cfg.clip == "norm":
        clip.global_norm_(params, cfg.clip_value)
    else:
        clip.value_(params, cfg.clip_value)


def _grad_norm(module: nn.Module) -> float:
    sq = sum(float(p.grad.detach().pow(2).sum()) for p in module.parameters() if p.grad is not None)
    return math.sqrt(sq)


class Trainer:
    """Holds one playground model, its optimizer and data, and trains it one epoch at a time.

    Attributes: ``cfg``, ``split`` (:class:`Split`), ``model``, ``optimizer``, ``epoch``,
    ``history`` (dict of lists ``epoch``, ``train_loss``, ``test_loss`` and, for classification,
    ``train_acc``, ``test_acc``), ``grad_norms`` (list of floats, one per layer, mean over the
    last epoch's minibatches, measured before clipping), ``batches`` (minibatches trained).
    """

    def __init__(self, cfg: PlaygroundConfig):
        self.cfg = cfg
        self.split: Split = make_split(cfg.dataset, cfg.n_samples, cfg.noise, cfg.train_ratio,
                                       cfg.seed)
        self.model = build_model(cfg)
        self.optimizer = _optimizer(cfg, self.model.parameters())
        self._gen = torch.Generator().manual_seed(cfg.seed + 2)
        self.epoch = 0
        self.history: dict[str, list] = {"epoch": [], "train_loss": [], "test_loss": []}
        if self.split.task == "classification":
            self.history.update(train_acc=[], test_acc=[])
        self.grad_norms: list[float] = [0.0] * len(layer_modules(self.model))
        self._epoch_state: dict | None = None  # the epoch in progress (see advance)
        self.batches = 0  # minibatches trained so far (all epochs)
        if self.is_kan and hasattr(self.model, "update_grid"):
            with torch.no_grad():  # fit every layer's grid to the inputs that reach it
                self.model.update_grid(self.split.X_train)
        self.record()

    @property
    def is_kan(self) -> bool:
        return self.cfg.model == "kan"

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on logits for classification, MSE for regression (lecture §2)."""
        if self.split.task == "classification":
            return F.cross_entropy(out, y)
        return F.mse_loss(out, y)

    def penalty(self, X: torch.Tensor) -> torch.Tensor:
        """λ·R: L1 Σ|w|, L2 Σw² over weight matrices, or ``KAN.regularization(X)``."""
        cfg = self.cfg
        if cfg.reg == "none" or cfg.lam == 0.0:
            return torch.zeros(())
        if cfg.reg == "kan":
            return cfg.lam * self.model.regularization(X)
        weights = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        if cfg.reg == "l1":
            return cfg.lam * sum(w.abs().sum() for w in weights)
        return cfg.lam * sum(w.pow(2).sum() for w in weights)

    def step(self) -> None:
        """Train one epoch (shuffled minibatches of ``batch_size``), then record losses.

        Raises :class:`DivergedError` when the loss stops being finite.
        """
        self.advance(math.inf, max_epochs=1)

    def advance(self, seconds: float, max_epochs: int | None = None,
                stop: Callable[[], bool] | None = None) -> int:
        """Train minibatch by minibatch for about ``seconds`` (at least one minibatch), across
        epoch boundaries, until ``max_epochs`` epochs have ended or ``stop()`` is true (checked
        before every minibatch). An epoch may end in a later call: its position, shuffling and
        gradient-norm sums are kept. Returns the number of epochs that ended.

        This is what keeps the playground responsive: a pause or a delete waits for one piece
        of work — a minibatch, a KAN grid update or the epoch's loss evaluation — never for a
        whole epoch of the largest model. (Paused between the last minibatch and the loss
        evaluation, the epoch ends when training goes on.)
        """
        t_end = time.monotonic() + seconds
        ended, first = 0, True
        while (max_epochs is None or ended < max_epochs) and (first or time.monotonic() < t_end):
            if not first and stop is not None and stop():
                break
            first = False
            if self._epoch_state is None:
                perm = torch.randperm(self.split.X_train.shape[0], generator=self._gen)
                self._epoch_state = {"perm": perm, "pos": 0, "n_batches": 0, "end": [],
                                     "sums": [0.0] * len(layer_modules(self.model))}
            st = self._epoch_state
            if st["end"]:  # the epoch's closing work, one piece per turn (each as long as a minibatch)
                st["end"].pop(0)(st)
                if not st["end"]:
                    self._epoch_state = None
                    ended += 1
            elif self._minibatch(st):
                grid = self.is_kan and self.epoch + 1 in GRID_UPDATE_EPOCHS and hasattr(self.model, "update_grid")
                st["end"] = [self._update_grid, self._end_epoch] if grid else [self._end_epoch]
        return ended

    def _minibatch(self, st: dict) -> bool:
        """One minibatch of the epoch in ``st``; True when the epoch has no batch left."""
        X, y = self.split.X_train, self.split.y_train
        bs = self.cfg.batch_size
        idx = st["perm"][st["pos"]:st["pos"] + bs]
        st["pos"] += bs
        if len(idx) < 2 and self.cfg.batchnorm and st["n_batches"] > 0:
            return st["pos"] >= X.shape[0]  # batch norm needs two samples; skip a lone leftover
        layers = layer_modules(self.model)
        self.model.train()
        xb, yb = X[idx], y[idx]
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb) + self.penalty(xb)
        if not torch.isfinite(loss):
            raise DivergedError(f"the training loss became {float(loss)} at epoch "
                                f"{self.epoch + 1}; lower the learning rate or add "
                                "gradient clipping, then reset")
        loss.backward()
        for i, layer in enumerate(layers):
            st["sums"][i] += _grad_norm(layer)
        _clip(self.model, self.cfg)
        self.optimizer.step()
        st["n_batches"] += 1
        self.batches += 1
        return st["pos"] >= X.shape[0]

    def _update_grid(self, st: dict) -> None:
        """KAN grids refitted to the training inputs (before the epoch's losses are recorded)."""
        with torch.no_grad():
            self.model.update_grid(self.split.X_train)

    def _end_epoch(self, st: dict) -> None:
        self.grad_norms = [v / max(st["n_batches"], 1) for v in st["sums"]]
        self.epoch += 1
        self.record()

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        """(loss, accuracy or None) of the current model on ``(X, y)``, in eval mode."""
        was = self.model.training
        self.model.eval()
        try:
            out = self.model(X)
        finally:
            self.model.train(was)
        loss = float(self.loss_fn(out, y))
        acc = float((out.argmax(1) == y).float().mean()) if y.dtype == torch.long else None
        return loss, acc

    def record(self) -> None:
        """Append this epoch's train/test loss (and accuracy) to ``history``; thin old entries so
        the history stays below ``MAX_HISTORY`` points (keeps every other one)."""
        s = self.split
        tr, tr_acc = self.evaluate(s.X_train, s.y_train)
        te, te_acc = self.evaluate(s.X_test, s.y_test)
        if not (math.isfinite(tr) and math.isfinite(te)):
            raise DivergedError(f"the loss became non-finite at epoch {self.epoch}; lower the "
                                "learning rate or add gradient clipping, then reset")
        h = self.history
        h["epoch"].append(self.epoch)
        h["train_loss"].append(tr)
        h["test_loss"].append(te)
        if "train_acc" in h:
            h["train_acc"].append(tr_acc)
            h["test_acc"].append(te_acc)
        if len(h["epoch"]) > MAX_HISTORY:
            for key in h:
                h[key] = h[key][:1] + h[key][1:-1][1::2] + h[key][-1:]
