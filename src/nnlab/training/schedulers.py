r"""Learning-rate schedules for ``fit``: by name, from a factory, stepped per batch or per epoch.

A schedule multiplies the optimiser's learning rate η by a factor that changes during training
(lecture §2.6: the step θ ← θ − η·∇L; large steps early, small steps late). ``fit(scheduler=...)``
takes

* a name, with defaults that work without tuning (T = total optimiser steps, W = warm-up steps,
  t = steps done; warm-up multiplies η by (t+1)/W for t < W):

  - ``"cosine"``: after warm-up, η_t = η·½(1 + cos(π(t−W)/(T−W))), down to 0 at the end;
    stepped per batch.
  - ``"step"``: after warm-up, η·γ^⌊e/s⌋ with γ = 0.1 and s a third of the remaining epochs
    (two decays); stepped per batch so the warm-up is smooth, the decays land on epoch starts.
  - ``"onecycle"``: ``torch.optim.lr_scheduler.OneCycleLR`` (Smith & Topin 2017) with peak η,
    rising for the warm-up (default 30 % of the run) then annealing by cosine; per batch.
  - ``"plateau"``: ``ReduceLROnPlateau`` (factor 0.1, patience 10) on ``val_loss`` (``train_loss``
    without validation data), stepped per epoch; a warm-up ramps η per batch before it takes over.

* a factory ``lambda opt: torch.optim.lr_scheduler.X(opt, ...)``: ``OneCycleLR`` and ``CyclicLR``
  are stepped per batch, ``ReduceLROnPlateau`` per epoch with the monitored metric, anything else
  per epoch;
* a dict in PyTorch Lightning's shape ``{"scheduler": factory, "interval": "step"|"epoch",
  "monitor": "val_loss"}`` to choose for yourself.

The scheduler's ``state_dict`` goes into every checkpoint, so a resumed run steps it exactly
as an uninterrupted one would.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

__all__ = ["Schedule", "FactorSchedule", "make_schedule", "names", "steps_per_epoch", "warmup_cosine", "warmup_step"]

_NAMES = ("cosine", "step", "onecycle", "plateau")
_PER_BATCH = (OneCycleLR, CyclicLR)


def names() -> list[str]:
    """The scheduler names ``fit`` accepts."""
    return list(_NAMES)


# ---- pure factor functions (multipliers of the base learning rate) -------------------------------
def warmup_cosine(t: int, total: int, warmup: int) -> float:
    """η_t/η: (t+1)/W for t < W, then ½(1 + cos(π·(t−W)/(T−W))); 0 from t = T on."""
    if t < warmup:
        return (t + 1) / warmup
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(t - warmup, span) / span))


def warmup_step(t: int, steps_per_epoch: int, warmup: int, step_size: int, gamma: float) -> float:
    """η_t/η: (t+1)/W for t < W (W in steps), then γ^⌊e/s⌋ with e the epochs after the warm-up."""
    if t < warmup:
        return (t + 1) / warmup
    return gamma ** ((t - warmup) // (steps_per_epoch * step_size))


def _linear_warmup(t: int, warmup: int) -> float:
    return (t + 1) / warmup if t < warmup else 1.0


class FactorSchedule:
    """η_g(t) = base_g · factor(t) for every parameter group g, t = steps taken (like ``LambdaLR``).

    A few attribute updates per step instead of ``LambdaLR``'s generic machinery, which costs
    more than a small model's optimiser step; the state is ``{"t", "base_lrs"}``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: Any) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.t = 0
        self._apply()

    def _apply(self) -> None:
        f = self.factor(self.t)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * f

    def step(self) -> None:
        self.t += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.base_lrs = int(state["t"]), [float(v) for v in state["base_lrs"]]
        self._apply()


class Schedule:
    """A torch scheduler and when ``fit`` steps it.

    Attributes:
        scheduler: a ``torch.optim.lr_scheduler`` object (``ReduceLROnPlateau``, ``OneCycleLR``,
            a factory's) or, for ``"cosine"``/``"step"``, a :class:`FactorSchedule`.
        interval: ``"step"`` (after every optimiser step) or ``"epoch"`` (after every epoch).
        monitor: the metric an epoch-level ``ReduceLROnPlateau`` is stepped with.
        warmup: a per-batch linear warm-up run before an epoch-level scheduler (``"plateau"``).
        name: what the run's config records.
    """

    def __init__(self, scheduler: Any, interval: str, monitor: str | None = None,
                 warmup: FactorSchedule | None = None, warmup_steps: int = 0, name: str = "") -> None:
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor
        self.warmup = warmup
        self.warmup_steps = warmup_steps
        self.name = name
        self._plateau = isinstance(scheduler, ReduceLROnPlateau)
        self._warm_done = 0 if warmup is not None else warmup_steps

    def after_batch(self) -> None:
        if self._warm_done < self.warmup_steps:
            self._warm_done += 1
            self.warmup.step()  # type: ignore[union-attr]
        elif self.interval == "step":
            self.scheduler.step()

    def after_epoch(self, logs: dict[str, Any]) -> None:
        if self.interval != "epoch" or self._warm_done < self.warmup_steps:
            return
        if self._plateau:
            value = logs.get(self.monitor)  # type: ignore[arg-type]
            if value is None:
                raise ValueError(f"the plateau scheduler monitors {self.monitor!r}, which this run does "
                                 f"not log; logged: {sorted(k for k, v in logs.items() if v is not None)}")
            self.scheduler.step(value)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "warm_done": self._warm_done,
                "warmup": None if self.warmup is None else self.warmup.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self._warm_done = int(state["warm_done"])
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])


def make_schedule(spec: Any, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int | None,
                  warmup: int = 0, has_val: bool = False) -> Schedule | None:
    """Resolve ``fit``'s ``scheduler``/``warmup`` arguments (see the module docstring).

    ``steps_per_epoch`` is the number of optimiser steps per epoch (None if unknown: only
    epoch-level schedules work then); ``warmup`` is in epochs.
    """
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a number of epochs >= 0, got {warmup!r}")
    if spec is None:
        if warmup:
            raise ValueError("warmup needs a scheduler: pass scheduler='cosine' (or 'step', "
                             "'onecycle', 'plateau')")
        return None
    monitor = "val_loss" if has_val else "train_loss"
    if isinstance(spec, str):
        return _named(spec, optimizer, epochs, steps_per_epoch, warmup, monitor)
    if warmup:
        raise ValueError("warmup applies to the named schedulers; build it into your factory "
                         "(e.g. SequentialLR of LinearLR and your scheduler)")
    interval, factory = None, spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"scheduler", "interval", "monitor"}
        if unknown or "scheduler" not in spec:
            raise ValueError(f"a scheduler dict holds 'scheduler' (a factory) and optionally 'interval' "
                             f"and 'monitor'; got keys {sorted(spec)}")
        factory, interval, monitor = spec["scheduler"], spec.get("interval"), spec.get("monitor", monitor)
        if interval not in (None, "step", "epoch"):
            raise ValueError(f"scheduler interval must be 'step' or 'epoch', got {interval!r}")
    if not callable(factory):
        raise TypeError(f"scheduler must be one of {names()}, a factory optimizer -> scheduler "
                        f"(e.g. lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10)) or a dict; "
                        f"got {type(spec).__name__}")
    sched = factory(optimizer)
    if not isinstance(sched, (LRScheduler, ReduceLROnPlateau)):
        raise TypeError(f"the scheduler factory must return a torch.optim.lr_scheduler object, got "
                        f"{type(sched).__name__}")
    if getattr(sched, "optimizer", None) is not optimizer:
        raise ValueError("the scheduler factory must build the scheduler on the optimizer it is given "
                         "(lambda opt: ...(opt, ...)), not on another one")
    if interval is None:
        interval = "step" if isinstance(sched, _PER_BATCH) else "epoch"
    if isinstance(sched, ReduceLROnPlateau) and interval == "step":
        raise ValueError("ReduceLROnPlateau needs a metric: use interval='epoch'")
    return Schedule(sched, interval, monitor=monitor, name=type(sched).__name__)


def _named(name: str, opt: torch.optim.Optimizer, epochs: int, spe: int | None, warmup: int,
           monitor: str) -> Schedule:
    if name not in _NAMES:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {names()} or a factory "
                         "lambda opt: torch.optim.lr_scheduler.X(opt, ...)")
    if warmup >= max(epochs, 1) and name != "plateau":
        raise ValueError(f"warmup ({warmup} epochs) must be shorter than the run ({epochs} epochs)")
    if spe is None:
        if name != "plateau" or warmup:
            raise ValueError(f"scheduler {name!r} is stepped per batch and needs the number of batches "
                             "per epoch; this DataLoader has no len(); use 'plateau' without warmup or "
                             "a factory with interval='epoch'")
        spe = 1
    total, w = epochs * spe, warmup * spe
    if name == "cosine":
        return Schedule(FactorSchedule(opt, lambda t: warmup_cosine(t, total, w)), "step", name=name)
    if name == "step":
        size = max(1, -(-(epochs - warmup) // 3))
        return Schedule(FactorSchedule(opt, lambda t: warmup_step(t, spe, w, size, 0.1)), "step", name=name)
    if name == "onecycle":
        peak = [g["lr"] for g in opt.param_groups]
        momentum = "betas" in opt.defaults or float(opt.defaults.get("momentum", 0.0) or 0.0) > 0
        sched = OneCycleLR(opt, max_lr=peak, total_steps=max(total, 2),
                           pct_start=(warmup / epochs) if warmup else 0.3, cycle_momentum=momentum)
        return Schedule(sched, "step", name=name)
    ramp = FactorSchedule(opt, lambda t: _linear_warmup(t, w)) if w else None
    plateau = ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=10)
    return Schedule(plateau, "epoch", monitor=monitor, warmup=ramp, warmup_steps=w, name=name)


def steps_per_epoch(n_local: int | None, local_batch: int | None, loader_len: int | None = None) -> int | None:
    """Optimiser steps per epoch for ``n_local`` samples in batches of ``local_batch``."""
    if loader_len is not None:
        return loader_len
    if n_local is None:
        return None
    if local_batch is None:
        return 1
    return max(1, -(-n_local // local_batch))

