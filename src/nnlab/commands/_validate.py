"""Checks every command makes before it works: numbers in range, output folders, resumability.

A command validates all its arguments and output paths first, so a mistake never leaves a half
made run folder behind (which would then refuse the corrected retry as "already exists"), and a
long search never ends in "cannot write the report".
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from nnlab.commands._common import CLIError

__all__ = ["check_number", "check_resumable", "check_out_folder", "check_prune_options"]


def check_number(cfg: Mapping[str, Any], key: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``cfg[key]`` must be a finite number in the interval (bounds open or closed); returns it."""
    v = cfg[key]
    if low is not None and high is not None:
        where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        where = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        where = f" {'<' if high_open else '<='} {high:g}"
    else:
        where = ""
    try:
        x = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    ok = math.isfinite(x)
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        raise CLIError(f"{key.replace('_', '-')} must be a finite number{where}, got {v!r}")
    return x


def check_resumable(run: Any) -> None:
    """``--resume`` needs a checkpoint to continue from; refuse instead of silently starting over."""
    from nnlab.training.checkpoint import META_FILE, load_checkpoint

    if not (run.checkpoints / META_FILE).is_file():
        raise CLIError(f"nothing to resume in {run.path}: {run.checkpoints / META_FILE} is missing "
                       "(the run saved no checkpoint, or it was deleted); start the run again with "
                       "--overwrite")
    load_checkpoint(run.checkpoints)  # a damaged checkpoint is reported now, not after set-up


def check_out_folder(out: Path, overwrite: bool, marker: str, option: str = "--out") -> None:
    """``out`` is where a command will write a folder: it must be a folder we may write (or not
    exist yet below a writable folder), and an existing one holding ``marker`` (or anything) is
    only replaced with ``--overwrite``."""
    from nnlab.runs import RunFolderError, check_parent

    try:
        check_parent(out, option)
    except RunFolderError as e:
        raise CLIError(str(e)) from None
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise CLIError(f"{option} {out} already exists; pass --overwrite to replace it or choose "
                           f"another {option}")
        if not (out / marker).exists():
            raise CLIError(f"refusing to overwrite {out}: it does not look like an nnlab output "
                           f"(no {marker})")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {out}: no permission to write there")


def check_prune_options(scope: str, hessian: str, importance: str, tolerance: float, lr: float) -> None:
    """``nnlab prune``'s choices, checked before a model is loaded or a run folder made."""
    from nnlab.prune.hessian import ESTIMATORS
    from nnlab.prune.structured import IMPORTANCES

    for option, value, valid in (("--scope", scope, ("global", "layer")),
                                 ("--hessian", hessian, tuple(ESTIMATORS)),
                                 ("--importance", importance, IMPORTANCES)):
        if value not in valid:
            raise CLIError(f"{option} must be one of {', '.join(valid)}; got {value!r}")
    check_number({"tolerance": tolerance}, "tolerance", low=0.0)
    check_number({"lr": lr}, "lr", low=0.0, low_open=True)
