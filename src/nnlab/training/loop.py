"""``fit``: minimise the empirical risk by mini-batch gradient descent (lecture §1.1, §2.6, §2.10).

Per epoch: the training set is shuffled (seeded), cut into batches, and for each batch
L = mean loss(f(x), y) [+ penalty(model, x)] is back-propagated, the gradients are clipped if
asked (§2.10) and the optimiser steps. The epoch's empirical risk (mean training loss over the
batches, weighted by batch size) and the held-out risk on ``val`` go into the :class:`History`.
"""
from __future__ import annotations

import math
import random
import secrets
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from ._clipping import check_clip
from .callbacks import TrainState, call as _call, resolve_callbacks as _resolve_callbacks, \
    wants_grad_norm as _wants_grad_norm
from .checkpoint import CheckpointWriter, load_checkpoint, restore_rng, save_checkpoint
from .data_loading import Source, as_source, check_against_model
from .epoch import evaluate as _evaluate, train_epoch as _train_epoch
from .distributed import DistContext, all_reduce_sum, broadcast_int, setup, teardown
from .history import History
from .losses import LossSpec, get_loss
from .optimizers import make_optimizer, param_list
from .schedulers import make_schedule, steps_per_epoch

__all__ = ["fit", "DivergenceError"]

def fit(model: nn.Module, train: Any, val: Any = None, loss: str | Callable = "mse",
        optimizer: Any = "adam", lr: float = 1e-3, epochs: int = 10, batch_size: int | None = 64,
        clip: tuple[str, float] | None = None, seed: int | None = None, progress: bool = True,
        callbacks: Iterable[Any] = (), checkpoint_dir: str | Path | None = None,
        resume: str | Path | None = None, penalty: Callable | None = None,
        distributed: bool | None = None, scheduler: Any = None, warmup: int = 0,
        grad_norm: bool | None = None) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: any ``nn.Module`` mapping a batch ``(B, ...)`` to outputs ``(B, ...)``.
        train, val: ``(X, y)`` tensors/arrays, a ``Dataset`` of ``(x, y)`` or a ``DataLoader``.
        loss: ``"mse"``, ``"cross_entropy"`` (integer labels; accuracy is recorded) or a callable
            ``loss(output, y) -> scalar`` that averages over the batch.
        optimizer: ``"adam"``, ``"sgd"``, ``"lbfgs"`` (step(closure) per batch; ``batch_size=None``
            for full batch), an Optimizer instance on the model's parameters, or an Optimizer class.
        lr: learning rate for named optimizers / classes.
        epochs: the total number of epochs, counting those already in a ``resume`` checkpoint.
        batch_size: the *global* batch (split evenly over processes when distributed);
            ``None`` means the whole training set in one batch.
        clip: ``None``, ``("norm", c)``: if ‖g‖ > c, g ← c·g/‖g‖, or ``("value", c)``: where
            |g_i| > c, g_i ← c·sign(g_i) (lecture §2.10).
        seed: seeds torch, numpy and Python's ``random`` (a side effect, on purpose: dropout and
            the shuffling become reproducible; torch gets ``seed + rank``). The shuffling order
            of epoch e is a permutation from a ``torch.Generator`` seeded with ``seed + e``.
        progress: a tqdm bar over epochs on rank 0, shown only when stderr is a TTY.
        callbacks: objects with any of ``on_epoch_start(state)``, ``on_batch_end(state)``,
            ``on_epoch_end(state)``; a plain callable is an ``on_epoch_end``. See :class:`TrainState`.
        checkpoint_dir: write a checkpoint there after every epoch (latest kept; rank 0 only).
        resume: a checkpoint folder: restores model, optimizer, history and RNG states, then
            continues up to ``epochs`` in total, exactly as if never interrupted.
        penalty: ``penalty(model, X_batch) -> scalar tensor`` added to the training loss.
        distributed: ``None`` auto-detects torchrun; ``True``/``False`` force it (see
            :mod:`nnlab.training.distributed`).
        scheduler: ``None``, ``"cosine"``, ``"step"``, ``"onecycle"``, ``"plateau"``, a factory
            ``lambda opt: torch.optim.lr_scheduler.X(opt, ...)`` or a dict ``{"scheduler": factory,
            "interval": "step"|"epoch", "monitor": ...}`` (see :mod:`nnlab.training.schedulers`);
            its state is checkpointed.
        warmup: epochs of linear learning-rate warm-up for a named ``scheduler``.
        grad_norm: record History's ``grad_norm`` (the mean ‖g‖ over the epoch's steps: one fused
            norm over the gradients every step, 2–8 % of a small MLP's step on CPU). ``True``:
            always; ``False``: never (``grad_norm`` is then ``None``); ``None`` (default): when a
            callback asks for it (``TensorBoard``'s ``grad_norm/global``), as trainers such as
            Lightning log gradient norms only on request. With ``clip`` it is recorded anyway,
            since clipping computes it.

    Returns:
        The :class:`History` (also the resumed epochs' entries when resuming).

    Raises:
        DivergenceError: when an epoch's training or validation loss is NaN or infinite. The
            callbacks still see that epoch (logged as non-finite), but no checkpoint is written
            for it, so ``checkpoint_dir`` keeps the last finite epoch.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = _check_int(epochs, "epochs", minimum=0)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size", minimum=1)
    if seed is not None:
        seed = _check_int(seed, "seed", minimum=0)
    spec = get_loss(loss)
    clip_spec = check_clip(clip)
    if checkpoint_dir is not None and Path(checkpoint_dir).exists() and not Path(checkpoint_dir).is_dir():
        # else found only at the end of the first epoch, as mkdir's "[Errno 17] File exists"
        raise ValueError(f"checkpoint_dir {checkpoint_dir} is a file, not a folder")
    hooks = _resolve_callbacks(callbacks)
    if grad_norm is None:
        grad_norm = _wants_grad_norm(hooks)
    elif not isinstance(grad_norm, bool):
        raise TypeError(f"grad_norm must be True, False or None (when a callback asks), got {grad_norm!r}")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"penalty must be a callable penalty(model, X_batch) -> scalar, got {penalty!r}")

    ctx = setup(distributed)
    finished = False
    try:
        history = _fit(model, train, val, spec, optimizer, lr, epochs, batch_size, clip_spec, seed,
                       progress, hooks, checkpoint_dir, resume, penalty, ctx, scheduler, warmup,
                       grad_norm)
        finished = True
        return history
    finally:
        teardown(ctx, finished)


def _fit(model, train, val, spec: LossSpec, optimizer, lr, epochs, batch_size, clip_spec, seed,
         progress, hooks, checkpoint_dir, resume, penalty, ctx: DistContext, scheduler=None,
         warmup: int = 0, grad_norm: bool = True) -> History:
    if ctx.enabled and ctx.device is not None and ctx.device.type == "cuda":
        model.to(ctx.device)
    dtype = _float_dtype(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    train_src = as_source(train, "train", spec, dtype)
    val_src = None if val is None else as_source(val, "val", spec, dtype)
    check_against_model(train_src, model, spec)
    if val_src is not None:
        check_against_model(val_src, model, spec)
    local_batch = _local_batch(batch_size, ctx)

    if seed is not None:
        _manual_seed(seed + ctx.rank)
        np.random.seed((seed + ctx.rank) % 2**32)
        random.seed(seed + ctx.rank)
    shuffle_seed = broadcast_int(seed if seed is not None else secrets.randbits(31), ctx)
    opt = make_optimizer(optimizer, model, lr)
    sched = make_schedule(scheduler, opt, epochs=epochs, warmup=warmup, has_val=val_src is not None,
                          steps_per_epoch=_steps_per_epoch(train_src, local_batch, ctx))
    config = {"loss": spec.name, "optimizer": _name_of(optimizer), "lr": lr, "epochs": epochs,
              "batch_size": batch_size, "clip": list(clip_spec) if clip_spec else None,
              "optimizer_class": type(opt).__name__, "seed": seed, "world_size": ctx.world,
              "penalty": None if penalty is None else _name_of(penalty),
              "scheduler": None if sched is None else sched.name, "warmup": warmup}

    history, start = History(), 0
    if resume is not None:
        ckpt = load_checkpoint(resume)
        if epochs < ckpt.epoch:
            raise ValueError(f"the checkpoint in {resume} already has {ckpt.epoch} epochs; epochs "
                             f"counts the total, so pass epochs >= {ckpt.epoch}")
        _warn_config_changes(ckpt.meta.get("config", {}), config)
        try:
            model.load_state_dict(ckpt.model_state())
        except RuntimeError as e:
            raise ValueError(f"the checkpoint in {resume} was written for a different model; build "
                             f"the same architecture before resuming ({e})") from e
        saved_class = ckpt.meta["config"].get("optimizer_class", type(opt).__name__)
        try:
            if saved_class != type(opt).__name__:
                raise ValueError(f"saved by {saved_class}, loading into {type(opt).__name__}")
            opt.load_state_dict(ckpt.optimizer_state())
        except (ValueError, KeyError, RuntimeError) as e:
            raise ValueError(f"the checkpoint in {resume} holds the state of a different optimizer "
                             f"({saved_class}); resume with the same one "
                             f"({e})") from e
        _restore_schedule(sched, ckpt, resume)
        history = History.from_dict(ckpt.meta["history"])
        start = ckpt.epoch
        shuffle_seed = int(ckpt.meta["rng"]["shuffle"]["seed"])
        restore_rng(ckpt)
    config["shuffle_seed"] = shuffle_seed

    net: nn.Module = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[ctx.device] if device.type == "cuda" else None)
    state = TrainState(model=model, optimizer=opt, history=history, rank=ctx.rank, world_size=ctx.world,
                       scheduler=sched)

    def save(directory: str | Path, writer: CheckpointWriter | None = None) -> Path:
        return save_checkpoint(directory, model=model, optimizer=opt, epoch=state.epoch,
                               history=history.as_dict(), config=config, shuffle_seed=shuffle_seed,
                               scheduler=None if sched is None else sched.state_dict(),
                               writer=writer)

    # the epoch checkpoint's files are written while the next epoch trains (one write in flight)
    writer = CheckpointWriter() if checkpoint_dir is not None and ctx.is_main else None

    state.save_checkpoint = save
    _call(hooks, "on_fit_start", state)
    bar = _progress_bar(progress and ctx.is_main, epochs, start)
    try:
        for epoch in range(start + 1, epochs + 1):
            state.epoch, state.logs = epoch, {"epoch": epoch}
            _call(hooks, "on_epoch_start", state)
            params = param_list(opt)  # a callback may have replaced parameters (KAN grid extension)
            logs = _train_epoch(net, model, opt, train_src, spec, epoch, local_batch, shuffle_seed,
                                clip_spec, params, penalty, dtype, device, ctx, hooks, state, sched,
                                grad_norm)
            if val_src is not None:
                logs.update(_evaluate(model, val_src, spec, local_batch, dtype, device, ctx))
            if sched is not None:
                sched.after_epoch(logs)
            history.append(logs)
            state.logs = logs
            _call(hooks, "on_epoch_end", state)
            _check_diverged(logs, epoch, checkpoint_dir)  # before the checkpoint: keep the last finite one
            if writer is not None:
                save(checkpoint_dir, writer)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                             if k in ("train_loss", "val_loss", "train_acc", "val_acc") and v is not None})
            if _agree_stop(state.stop, ctx):
                break
        if writer is not None:
            writer.wait()  # the last checkpoint is on disk before on_fit_end and the return
        _call(hooks, "on_fit_end", state)
    finally:
        bar.close()
        if writer is not None:
            writer.close()  # also on an error: the last complete checkpoint is on disk
    return history


# ---- small helpers -------------------------------------------------------------------------------
class DivergenceError(ArithmeticError):
    """The training (or validation) loss stopped being finite: training was stopped (§2.10)."""


def _check_diverged(logs: dict, epoch: int, checkpoint_dir) -> None:
    bad = {k: logs.get(k) for k in ("train_loss", "val_loss")
           if logs.get(k) is not None and not math.isfinite(logs[k])}
    if not bad:
        return
    kept = (f"; the checkpoint of epoch {epoch - 1} in {checkpoint_dir} is kept" if checkpoint_dir
            is not None and epoch > 1 else "")
    raise DivergenceError(f"training diverged at epoch {epoch}: "
                          + ", ".join(f"{k.replace('_loss', ' loss')} is {v}" for k, v in bad.items())
                          + f"{kept}. Lower lr or clip the gradients, e.g. clip=('norm', 1.0)")


def _manual_seed(seed: int) -> None:
    """``torch.manual_seed`` without its fixed cost where there is no accelerator: on a CPU-only
    build it still queues a lazy CUDA seeding with a formatted stack trace (milliseconds per
    call); seeding the CPU generator alone has the same effect there."""
    acc = getattr(torch, "accelerator", None)
    if acc is None or acc.is_available() or torch.cuda.is_initialized():
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)


def _check_int(v: Any, name: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def _local_batch(batch_size: int | None, ctx: DistContext) -> int | None:
    if batch_size is None or not ctx.enabled:
        return batch_size
    if batch_size % ctx.world:
        raise ValueError(f"batch_size is the global batch and must be divisible by the "
                         f"{ctx.world} processes; got {batch_size} (try "
                         f"{max(ctx.world, batch_size // ctx.world * ctx.world)})")
    return batch_size // ctx.world


def _float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())


def _name_of(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, type):
        return obj.__name__
    return getattr(obj, "__name__", type(obj).__name__)


def _agree_stop(stop: bool, ctx: DistContext) -> bool:
    """Stop when any rank asks (all ranks must leave the loop together)."""
    if not ctx.enabled:
        return bool(stop)
    flag = all_reduce_sum(torch.tensor([1.0 if stop else 0.0], dtype=torch.float64), ctx)
    return bool(flag[0] > 0)


def _steps_per_epoch(src: Source, local_batch: int | None, ctx: DistContext) -> int | None:
    """Optimiser steps of one epoch on this rank (None for a DataLoader without len())."""
    if src.kind == "loader" and ctx.world == 1:
        try:
            return len(src.loader)  # type: ignore[arg-type]
        except TypeError:
            return None
    n_local = None if src.n is None else -(-src.n // ctx.world)
    return steps_per_epoch(n_local, local_batch)


def _restore_schedule(sched, ckpt, resume) -> None:
    saved = ckpt.meta.get("scheduler")
    if sched is None and saved is None:
        return
    if sched is None or saved is None:
        have = "no scheduler" if saved is None else f"scheduler {ckpt.meta['config'].get('scheduler')!r}"
        raise ValueError(f"the checkpoint in {resume} was written with {have}; resume with the same "
                         "scheduler setting")
    try:
        sched.load_state_dict(ckpt.scheduler_state())
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"the checkpoint in {resume} holds the state of a different scheduler; "
                         f"resume with the same one ({e})") from e


def _warn_config_changes(old: dict, new: dict) -> None:
    changed = [k for k in ("loss", "optimizer", "batch_size", "clip", "world_size", "scheduler",
                           "warmup")
               if k in old and old[k] != new[k]]
    if changed:
        warnings.warn("resuming with settings that differ from the checkpoint's ("
                      + ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed)
                      + "); the result will not match an uninterrupted run", UserWarning, stacklevel=4)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, *a: Any, **k: Any) -> None: ...
    def close(self) -> None: ...


def _progress_bar(show: bool, total: int, initial: int) -> Any:
    if not show or not _isatty(sys.stderr):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="fit", unit="epoch", file=sys.stderr, leave=False)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
