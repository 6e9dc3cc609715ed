"""``TensorBoard``: the run's scalars (and a KAN's edge figure) as TensorBoard event files.

Scalars per epoch: ``loss/train``, ``loss/val``, ``accuracy/train``, ``accuracy/val``, ``lr``,
``grad_norm/global`` (mean ‖g‖ over the epoch's steps, §2.10), ``penalty``, and
``grad_norm/<parameter>``: each parameter's ‖g‖ at the epoch's last step (one fused
``torch._foreach_norm``), which shows vanishing or exploding layers (§2.10). For a KAN, the edge
figure of :func:`nnlab.kan.plot` is added as the image ``kan/edges`` every ``figure_every`` epochs
(and at the last). Written in TensorBoard's event-file format (the ``tensorboard`` package:
``pip install 'nnlab[tensorboard]'``) on the training thread, all of an epoch's scalars as one
event, flushed once per epoch (see :mod:`nnlab.callbacks._event_file`: no writer thread to hand
off to); view with ``tensorboard --logdir DIR``. Rank 0 writes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from ._event_file import EventFile
from ._monitor import check_writable_dir

__all__ = ["TensorBoard"]

_SCALARS = (("train_loss", "loss/train"), ("val_loss", "loss/val"), ("train_acc", "accuracy/train"),
            ("val_acc", "accuracy/val"), ("lr", "lr"), ("grad_norm", "grad_norm/global"),
            ("penalty", "penalty"))


class TensorBoard:
    """Write TensorBoard event files into ``log_dir``.

    Args:
        log_dir: folder of the event files (created; an unwritable one is an error at fit start).
        grad_norms: also log each parameter's gradient norm.
        kan_inputs: inputs ``(n, width[0])`` that drive a KAN's edge figure; None: no figure.
        figure_every: epochs between two KAN figures.
        var_names: input names shown in the KAN figure.
    """

    def __init__(self, log_dir: str | os.PathLike, grad_norms: bool = True, kan_inputs: Any = None,
                 figure_every: int = 10, var_names: Sequence[str] | None = None) -> None:
        if isinstance(figure_every, bool) or not isinstance(figure_every, int) or figure_every < 1:
            raise ValueError(f"figure_every must be an integer >= 1, got {figure_every!r}")
        self.log_dir = Path(log_dir)
        self.grad_norms = bool(grad_norms)
        self.kan_inputs = kan_inputs
        self.figure_every = figure_every
        self.var_names = None if var_names is None else list(var_names)
        self.writer: Any = None
        self._epochs = 0

    @property
    def wants_grad_norm(self) -> bool:
        """``fit(grad_norm=None)`` records ‖g‖ for ``grad_norm/global`` when the norms are logged."""
        return self.grad_norms

    def on_fit_start(self, state: Any) -> None:
        if state.rank != 0:
            return
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: "
                              "pip install 'nnlab[tensorboard]'") from None
        check_writable_dir(self.log_dir, "TensorBoard")
        self.writer = EventFile(self.log_dir)
        self._epochs = 0

    def on_epoch_end(self, state: Any) -> None:
        if self.writer is None:
            return
        epoch, logs = state.epoch, state.logs
        scalars = [(tag, float(logs[key])) for key, tag in _SCALARS if logs.get(key) is not None]
        if self.grad_norms:
            named = [(n, p.grad) for n, p in state.model.named_parameters() if p.grad is not None]
            if named:
                scalars += zip((f"grad_norm/{n}" for n, _ in named), _norms([g for _, g in named]))
        _add_scalars(self.writer, scalars, epoch)
        if self.kan_inputs is not None and hasattr(state.model, "trace") and \
                (epoch % self.figure_every == 0 or epoch == 1):
            self._kan_figure(state.model, epoch)
        self.writer.flush()

    def _kan_figure(self, model: Any, epoch: int) -> None:
        from torch.utils.tensorboard._utils import figure_to_image
        from torch.utils.tensorboard.summary import image

        from nnlab.kan.plot import plot

        p = next(model.parameters())
        x = torch.as_tensor(self.kan_inputs).to(device=p.device, dtype=p.dtype)
        was = model.training
        model.eval()
        try:
            fig = plot(model, x, var_names=self.var_names, title=f"KAN edges, epoch {epoch}")
        finally:
            model.train(was)
        self.writer.add_summary(image("kan/edges", figure_to_image(fig, close=False), dataformats="CHW"),
                                epoch)

    def on_fit_end(self, state: Any) -> None:
        if self.writer is not None:
            if self.kan_inputs is not None and hasattr(state.model, "trace") and \
                    state.epoch % self.figure_every != 0:
                self._kan_figure(state.model, state.epoch)
            self.writer.close()
            self.writer = None


def _norms(grads: list[torch.Tensor]) -> list[float]:
    """‖g‖ of each tensor: one fused kernel per dtype/device group, one copy to the host."""
    norms = torch._foreach_norm(grads)
    try:
        return torch.stack(norms).tolist()
    except RuntimeError:  # several devices
        return [float(v) for v in norms]


def _add_scalars(writer: EventFile, scalars: list[tuple[str, float]], step: int) -> None:
    """All of an epoch's scalars as one event (one ``Summary`` with a ``simple_value`` per tag,
    what ``SummaryWriter.add_scalar`` writes per tag), which TensorBoard reads exactly as separate
    ``add_scalar`` calls: one event per epoch instead of one per tag."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    if scalars:
        writer.add_summary(Summary(value=[Summary.Value(tag=tag, simple_value=float(x))
                                          for tag, x in scalars]), step)
