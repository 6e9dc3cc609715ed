"""Run folders ``runs/<name>/`` and the per-epoch metrics log (an ``nl.fit`` callback).

A run folder holds::

    config.json        the resolved configuration (defaults < config file < flags)
    metrics.jsonl      one JSON object per epoch (see :class:`MetricsLogger`)
    checkpoints/       nl.fit's checkpoint_dir (safetensors + JSON), used by --resume
    model/             the final model (nnlab.models_io: model.safetensors + model.json)
    *.png              plots (loss curves, decision boundary, KAN edges)

``metrics.jsonl`` is rewritten atomically at every epoch (temporary file, fsync, rename)
instead of appended: a reader, or a run killed mid-write, only ever sees complete lines,
and on ``--resume`` lines past the restored checkpoint's epoch are dropped when that
epoch is logged again, so the file never holds two lines for one epoch. Appending with
fsync could leave a torn last line after a crash and would need that repair on every read.
The log is a few hundred bytes per epoch, so rewriting it costs nothing measurable.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from nnlab._io import read_json_object, remove_stale_temps, write_json, write_text

__all__ = ["RunFolder", "RunFolderError", "MetricsLogger", "read_metrics", "global_grad_norm",
           "check_parent"]


class RunFolderError(ValueError):
    """The run folder exists (and neither overwrite nor resume was asked) or is not a run folder."""


class RunFolder:
    """``root/name``: where one command's outputs go. Opening it checks existence (see :meth:`open`)."""

    CONFIG, METRICS = "config.json", "metrics.jsonl"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @classmethod
    def open(cls, root: str | os.PathLike, name: str, overwrite: bool = False, resume: bool = False,
             create: bool = True, can_resume: bool = True) -> "RunFolder":
        """Open ``root/name`` for a new run, an overwrite, or a resume.

        A new run refuses an existing folder; ``overwrite`` deletes an existing *run* folder
        (one holding ``config.json``, or empty) first; ``resume`` requires the folder to exist
        (its stale temporary files are removed). ``root`` must be a folder (or not exist yet).
        ``create=False`` (non-zero ranks) checks nothing and writes nothing. ``can_resume=False``
        (commands without ``--resume``) leaves ``--resume`` out of the "already exists" advice.
        """
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise RunFolderError(f"run name must be a plain folder name, got {name!r}")
        if overwrite and resume:
            raise RunFolderError("choose either --overwrite or --resume, not both")
        run = cls(Path(root) / name)
        if not create:
            return run
        check_parent(Path(root), "--runs-dir")
        exists = run.path.exists()
        if resume:
            if not (run.path / cls.CONFIG).is_file():
                raise RunFolderError(f"cannot resume: {run.path} is not an existing run folder "
                                     f"(no {cls.CONFIG}); start it without --resume")
            remove_stale_temps(run.path)
            remove_stale_temps(run.checkpoints)
            return run
        if exists and not overwrite:
            also = "--resume to continue it, " if can_resume else ""
            raise RunFolderError(f"run folder {run.path} already exists; pass --overwrite to replace it, "
                                 f"{also}or choose another --name")
        if exists:
            if not run.path.is_dir():
                raise RunFolderError(f"{run.path} exists and is not a folder")
            if any(run.path.iterdir()) and not (run.path / cls.CONFIG).is_file():
                raise RunFolderError(f"refusing to overwrite {run.path}: it is not an nnlab run folder "
                                     f"(no {cls.CONFIG})")
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    # paths -----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    # content ---------------------------------------------------------------------------------
    def write_config(self, cfg: dict[str, Any]) -> None:
        write_json(self.config_path, cfg)

    def read_config(self) -> dict[str, Any]:
        return read_json_object(self.config_path)

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.metrics_path)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` (a run folder or the file itself) -> list of per-epoch dicts."""
    path = Path(path)
    if path.is_dir():
        path = path / RunFolder.METRICS
    if not path.is_file():
        raise FileNotFoundError(f"no metrics log at {path}; train a run first (`nnlab train --name ...`)")
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} line {i} is not valid JSON ({e})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
            raise ValueError(f"{path} line {i} is not a metrics record (a JSON object with an epoch)")
        records.append(rec)
    return records


def check_parent(folder: Path, option: str) -> None:
    """``folder`` (where outputs go) must be a folder or not exist yet, below a writable folder."""
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{option} {folder} is a file, not a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise RunFolderError(f"{option} {folder}: {probe} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise RunFolderError(f"{option} {folder}: no permission to write in {probe}")


def global_grad_norm(params: Iterable[torch.nn.Parameter]) -> float | None:
    """‖g‖ over all gradients (the quantity global clipping compares with c, §2.10); None if no grads."""
    sq, seen = 0.0, False
    for p in params:
        if p.grad is not None:
            sq += float(p.grad.detach().double().pow(2).sum())
            seen = True
    return math.sqrt(sq) if seen else None


def _last(seq: Any) -> Any:
    try:
        return seq[-1] if seq else None
    except (TypeError, KeyError, IndexError):
        return None


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, torch.Tensor):
        v = v.detach().item()
    v = float(v)
    return v if math.isfinite(v) else None


class MetricsLogger:
    """``nl.fit`` callback writing one line per epoch to ``metrics.jsonl``.

    Each line: ``epoch``, ``train_risk`` (empirical risk, the mean training loss, §1.1),
    ``val_risk`` (held-out risk), ``accuracy`` (validation accuracy, else training accuracy;
    null for regression), ``train_accuracy``, ``val_accuracy``, ``grad_norm`` (the mean over the
    epoch's batches of the global gradient norm ‖g‖ before clipping, as ``nl.fit`` logs it; with a
    trainer that does not log it, the norm of the last batch's gradients), ``lr`` (first
    parameter group), ``time_s`` (the epoch's wall time) and ``elapsed_s`` (since the first
    epoch started, plus the elapsed time of a resumed run). A NaN or infinite value is written as
    ``null`` (JSON has no NaN). ``write=False`` (non-zero ranks) logs nothing.
    """

    def __init__(self, path: str | os.PathLike, write: bool = True) -> None:
        self.path = Path(path)
        self.write = write
        self._records: dict[int, dict[str, Any]] = {}
        if write and self.path.is_file():  # resuming: keep what earlier runs logged
            for rec in read_metrics(self.path):
                self._records[int(rec["epoch"])] = rec
        self._offset = max((r.get("elapsed_s") or 0.0 for r in self._records.values()), default=0.0)
        self._t_start: float | None = None  # set at the first epoch (after fit's set-up)
        self._t_epoch = time.perf_counter()

    def on_epoch_start(self, state: Any) -> None:
        self._t_epoch = time.perf_counter()
        if self._t_start is None:
            self._t_start = self._t_epoch

    def record(self, state: Any) -> dict[str, Any]:
        """The line for the epoch that just ended (also usable without writing)."""
        logs = getattr(state, "logs", None) or {}
        hist = getattr(state, "history", None)

        def pick(key: str, *alts: str) -> float | None:
            for k in (key, *alts):
                if k in logs and logs[k] is not None:
                    return _num(logs[k])
            return _num(_last(getattr(hist, key, None)))

        now = time.perf_counter()
        train_acc, val_acc = pick("train_acc", "train_accuracy"), pick("val_acc", "val_accuracy")
        lr = pick("lr")  # nl.fit logs the lr the epoch trained with (a scheduler may have moved it on)
        opt = getattr(state, "optimizer", None)
        if lr is None and opt is not None and getattr(opt, "param_groups", None):
            lr = _num(opt.param_groups[0].get("lr"))
        return {
            "epoch": int(state.epoch),
            "train_risk": pick("train_loss", "loss"),
            "val_risk": pick("val_loss"),
            "accuracy": val_acc if val_acc is not None else train_acc,
            "train_accuracy": train_acc,
            "val_accuracy": val_acc,
            # nl.fit logs the epoch's mean (pre-clipping) ‖g‖; otherwise: the last batch's gradients
            "grad_norm": pick("grad_norm") if pick("grad_norm") is not None
            else _num(global_grad_norm(state.model.parameters())),
            "lr": lr,
            "time_s": round(now - self._t_epoch, 6),
            "elapsed_s": round(self._offset + now - (self._t_start or self._t_epoch), 6),
        }

    def on_epoch_end(self, state: Any) -> None:
        rec = self.record(state)
        if not self.write:
            return
        epoch = rec["epoch"]
        # a resumed run re-logs epochs after its checkpoint: drop stale lines from the crashed run
        self._records = {e: r for e, r in self._records.items() if e < epoch}
        self._records[epoch] = rec
        # non-finite numbers are null (JSON has no NaN); allow_nan=False makes sure of it
        text = "".join(json.dumps(self._records[e], sort_keys=True, allow_nan=False) + "\n"
                       for e in sorted(self._records))
        write_text(self.path, text)
