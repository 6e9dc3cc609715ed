"""What the monitoring callbacks share: the metric's direction, its value, writable folders."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = ["resolve_mode", "read_metric", "improved", "check_writable_dir"]


def resolve_mode(mode: str, monitor: str) -> str:
    """``"min"``/``"max"``; ``"auto"`` maximises accuracies (``*acc*``) and minimises the rest."""
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def read_metric(logs: dict[str, Any], monitor: str, owner: str) -> float:
    """The monitored value of this epoch; a clear error when the run does not log it."""
    value = logs.get(monitor)
    if value is None:
        logged = sorted(k for k, v in logs.items() if v is not None and k != "epoch")
        hint = " (pass val= data to fit)" if monitor.startswith("val_") else ""
        raise ValueError(f"{owner} monitors {monitor!r}, which this run does not log{hint}; "
                         f"logged metrics: {', '.join(logged)}")
    return float(value)


def improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """``value`` beats ``best`` by more than ``min_delta`` in the direction of ``mode`` (NaN never does)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def check_writable_dir(path: str | os.PathLike, owner: str) -> Path:
    """Create ``path`` (and parents) and prove a file can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".nnlab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{owner} cannot write to {path}: {e.strerror or e}") from None
    return path
