"""One epoch of ``fit``: the mini-batch steps (lecture §2.6) and the held-out evaluation (§1.1).

Per batch: L = mean loss(f(x), y) [+ penalty(model, x)], back-propagation, optional clipping
(§2.10), the optimiser step and, for a per-batch schedule, the learning-rate step. What History
records (the loss at the parameters before each step, the pre-clip global gradient norm ‖g‖,
accuracy) stays on the device during the epoch and is reduced once at its end: per step the
trainer adds one fused ``torch._foreach_norm`` over the gradients to the hand-written loop
(none with ``fit(grad_norm=False)``; the classification outputs are argmax-ed a chunk at a time)
and never waits for the device.
"""
from __future__ import annotations

from typing import Any

import torch

from ._clipping import apply_clip
from .callbacks import call as _call
from .data_loading import Source, batches
from .distributed import DistContext, all_reduce_sum
from .losses import LossSpec
from .optimizers import is_lbfgs

__all__ = ["train_epoch", "evaluate"]


class _Record:
    """Per-step records of one epoch, reduced in one go by :meth:`sums`."""

    def __init__(self, classification: bool, device: torch.device) -> None:
        self.classification = classification
        self.device = device
        self.losses: list[torch.Tensor] = []
        self.norms: list[torch.Tensor] = []  # per-tensor norms (no clipping) or 0-d global norms
        self.per_tensor: list[int] = []  # how many entries of norms each step added
        self.outs: list[torch.Tensor] = []  # classification outputs, argmax-ed in chunks
        self.labels: list[torch.Tensor] = []
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self._pending = 0
        self.pens: list[torch.Tensor] = []
        self.sizes: list[int] = []

    def add(self, loss: torch.Tensor, norm: torch.Tensor | tuple[torch.Tensor, ...], out: torch.Tensor,
            y: torch.Tensor, pen: torch.Tensor | None) -> None:
        self.sizes.append(y.shape[0])
        self.losses.append(loss)
        if norm is None:  # fit(grad_norm=False)
            pass
        elif isinstance(norm, torch.Tensor):
            self.norms.append(norm)
            self.per_tensor.append(1)
        else:
            self.norms.extend(norm)
            self.per_tensor.append(len(norm))
        if self.classification:
            self.outs.append(out)
            self.labels.append(y)
            self._pending += out.numel()
            if self._pending > self.CHUNK:
                self._count()
        if pen is not None:
            self.pens.append(pen)

    CHUNK = 1 << 20  # output values held before counting the correct predictions

    def _count(self) -> None:
        if self.outs:
            preds = torch.cat(self.outs).argmax(dim=1)
            self.correct += (preds == torch.cat(self.labels)).sum()
        self.outs, self.labels, self._pending = [], [], 0

    def sums(self) -> torch.Tensor:
        """[Σ loss·n, n, correct, Σ penalty·n, Σ ‖g‖, steps] in float64 on the device.

        Built as a list of 0-d tensors and stacked once (item assignment into a tensor costs a
        dispatch per entry, ~10 µs each on CPU)."""
        f64 = dict(dtype=torch.float64, device=self.device)
        if not self.sizes:
            return torch.zeros(6, **f64)
        zero = torch.zeros((), **f64)
        n_b = torch.tensor(self.sizes, **f64)
        loss = torch.dot(torch.stack(self.losses).to(**f64).reshape(-1), n_b)
        if self.classification:
            self._count()
        correct = self.correct.to(**f64) if self.classification else zero
        pen = torch.dot(torch.stack(self.pens).to(**f64).reshape(-1), n_b) if self.pens else zero
        gsum = self._norm_sum() if self.norms else zero  # none recorded: fit(grad_norm=False)
        counts = torch.tensor([float(sum(self.sizes)), float(len(self.sizes))], **f64)
        return torch.stack([loss, counts[0], correct, pen, gsum.to(**f64), counts[1]])


    def _norm_sum(self) -> torch.Tensor:
        """Σ over the steps of ‖g‖ (float64)."""
        f64 = dict(dtype=torch.float64, device=self.device)
        try:
            flat = torch.stack(self.norms).to(**f64)
        except RuntimeError:  # gradients of several dtypes/devices
            flat = torch.stack([v.reshape(()).to(**f64) for v in self.norms])
        if len(set(self.per_tensor)) == 1:  # ‖g‖ of each step = 2-norm of its per-tensor norms
            return torch.linalg.vector_norm(flat.view(len(self.per_tensor), -1), dim=1).sum()
        return sum(torch.linalg.vector_norm(part) for part in torch.split(flat, self.per_tensor))


def train_epoch(net, model, opt, src: Source, spec: LossSpec, epoch: int, local_batch, shuffle_seed,
                clip_spec, params, penalty, dtype, device, ctx: DistContext, hooks, state,
                sched=None, grad_norm: bool = True) -> dict[str, Any]:
    """Train one epoch; returns its logs (``train_loss``, ``train_acc``, ``penalty``, ``grad_norm``, ``lr``)."""
    net.train()
    rec = _Record(spec.classification, device)
    lr_used = opt.param_groups[0].get("lr", float("nan"))
    batch_hooks = hooks["on_batch_end"]
    params = list(params)
    norm = _norm_rule(params, clip_spec, grad_norm)  # decided once per epoch, not per step
    data = batches(src, epoch=epoch - 1, batch_size=local_batch, seed=shuffle_seed, shuffle=True,
                   spec=spec, dtype=dtype, device=device, rank=ctx.rank, world=ctx.world)
    lbfgs = is_lbfgs(opt)
    loss_fn, zero_grad, step = spec.fn, opt.zero_grad, opt.step
    for i, (xb, yb) in enumerate(data):
        if lbfgs:
            loss, norms, out, pen = _lbfgs_step(net, model, opt, xb, yb, spec, clip_spec, params, penalty)
        else:
            zero_grad(set_to_none=True)
            out = net(xb)
            loss = loss_fn(out, yb)
            if penalty is None:
                pen = None
                loss.backward()
            else:
                pen = _penalty(penalty, model, xb)
                (loss + pen).backward()
            norms = norm(params)
            step()
            loss, out = loss.detach(), out.detach()
        if sched is not None:
            lr_used = opt.param_groups[0]["lr"]
            sched.after_batch()
        rec.add(loss, norms, out, yb, None if pen is None else pen.detach())
        if batch_hooks:
            state.batch, state.logs = i, {"epoch": epoch, "batch": i, "loss": float(loss)}
            _call(hooks, "on_batch_end", state)
    sums = all_reduce_sum(rec.sums(), ctx).tolist()
    n, steps = sums[1], max(sums[5], 1.0)
    return {"epoch": epoch, "train_loss": sums[0] / n,
            "train_acc": sums[2] / n if spec.classification else None,
            "penalty": sums[3] / n if penalty is not None else None,
            "grad_norm": sums[4] / steps if rec.norms or not rec.sizes else None,
            "lr": float(lr_used)}


def _penalty(penalty, model, xb) -> torch.Tensor | None:
    if penalty is None:
        return None
    pen = penalty(model, xb)
    if not isinstance(pen, torch.Tensor) or pen.numel() != 1:
        raise TypeError(f"penalty(model, X_batch) must return a scalar tensor, got {type(pen).__name__}")
    return pen.reshape(())


def _norm_rule(params: list, clip_spec, grad_norm: bool = True):
    """What each step records of ‖g‖, as a function of ``params``.

    Without clipping and with ``grad_norm=False``: nothing (``None``). Without clipping, when
    every parameter (hence every gradient) shares one dtype and device: each gradient's norm
    from one fused ``torch._foreach_norm`` (combined into ‖g‖ at the epoch's end). Otherwise
    (clipping, or mixed dtypes/devices): clip if asked and return the pre-clip global norm."""
    if clip_spec is None and not grad_norm:
        return _no_norm
    if clip_spec is None and len({(p.dtype, p.device) for p in params}) <= 1:
        return _per_tensor_norms
    return lambda ps: apply_clip(ps, clip_spec)


def _per_tensor_norms(params: list) -> torch.Tensor | tuple[torch.Tensor, ...]:
    grads = [p.grad for p in params if p.grad is not None]
    return torch._foreach_norm(grads) if grads else _ZERO


_ZERO = torch.zeros(())


def _no_norm(params: list) -> None:
    return None


def _lbfgs_step(net, model, opt, xb, yb, spec, clip_spec, params, penalty):
    """``step(closure)``; records the loss, gradient norm and output of the first evaluation."""
    first: dict[str, Any] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out = net(xb)
        loss = spec.fn(out, yb)
        pen = _penalty(penalty, model, xb)
        total = loss if pen is None else loss + pen
        total.backward()
        norm = apply_clip(params, clip_spec)
        if not first:  # the loss at the parameters before the step
            first.update(loss=loss.detach(), out=out.detach(), norm=norm, pen=pen)
        return total

    opt.step(closure)
    return first["loss"], first["norm"], first["out"], first["pen"]


def evaluate(model, src: Source, spec: LossSpec, local_batch, dtype, device, ctx) -> dict[str, Any]:
    """Held-out risk: mean loss (and accuracy) over every ``val`` sample, in eval mode."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    with torch.no_grad():
        for xb, yb in batches(src, epoch=0, batch_size=local_batch, seed=0, shuffle=False, spec=spec,
                              dtype=dtype, device=device, rank=ctx.rank, world=ctx.world):
            out = model(xb)
            sums[0] += spec.fn(out, yb).to(torch.float64) * xb.shape[0]
            sums[1] += xb.shape[0]
            if spec.classification:
                sums[2] += (out.argmax(dim=1) == yb).sum()
    sums = all_reduce_sum(sums, ctx)
    n = float(sums[1])
    return {"val_loss": float(sums[0]) / n, "val_acc": float(sums[2]) / n if spec.classification else None}
