"""Datasets for the command line: a toy name, ``digits``, or a CSV file with a target column.

The spec is the resolved config's ``data``/``target``/``n``/``noise``/``val_fraction``/``seed``
keys, so a run folder's ``config.json`` is enough to rebuild exactly the same split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from nnlab.commands._common import CLIError
from nnlab.layers.standardize import Standardize

__all__ = ["TOY_NAMES", "Data", "load_data", "read_csv"]

TOY_NAMES = ("xor", "circles", "gaussians", "spiral", "moons")
MAX_CLASSES = 20  # an integer target with at most this many distinct values is a classification


@dataclass
class Data:
    """A train/validation split with what the model builder needs to know."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    task: str  # "classification" | "regression"
    n_features: int
    n_outputs: int
    feature_names: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> str:
        return "cross_entropy" if self.task == "classification" else "mse"


def _split(X: torch.Tensor, y: torch.Tensor, frac: float, seed: int):
    if not 0.0 < frac < 1.0:
        raise CLIError(f"val_fraction must be in (0, 1), got {frac}")
    n = X.shape[0]
    n_val = max(1, int(round(frac * n)))
    if n - n_val < 1:
        raise CLIError(f"only {n} rows: too few to hold out a validation split")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    va, tr = perm[:n_val], perm[n_val:]
    return (X[tr], y[tr]), (X[va], y[va])


def read_csv(path: str | Path, target: str | None, features: list[str] | None = None,
             sep: str | None = None):
    """``nl.data.read_csv`` for the CLI: ``(X float32 (n, d), y float64 (n,), feature names)``;
    its errors, and rows with missing values, become one-line :class:`CLIError` messages."""
    from nnlab.data import read_csv as parse, read_table

    if not target:
        header = read_table(path, sep)[0]
        raise CLIError(f"a CSV dataset needs --target COLUMN; columns in {Path(path).name}: "
                       f"{', '.join(header)}")
    try:
        X, y, feats = parse(path, target, features, sep=sep)
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    bad = ~(np.isfinite(X).all(axis=1) & np.isfinite(y))
    if bad.any():
        raise CLIError(f"{int(bad.sum())} row(s) of {Path(path).name} hold missing or infinite values "
                       f"(first on data row {int(np.argmax(bad)) + 1}); remove them first")
    big = float(np.finfo(np.float32).max)
    for col, vals in [*zip(feats, X.T), (target, y)]:
        if np.abs(vals).max(initial=0.0) > big:
            raise CLIError(f"column {col!r} of {Path(path).name} holds values beyond ±3.4e38, the range of "
                           "float32 that training uses; rescale it first (e.g. divide by a power of ten)")
    return torch.from_numpy(X).float(), torch.from_numpy(y), feats


def _target_task(y: torch.Tensor, task: str) -> str:
    if task in ("classification", "regression"):
        return task
    if task != "auto":
        raise CLIError(f"task must be auto, classification or regression; got {task!r}")
    integral = bool(torch.all(y == torch.round(y)))
    return "classification" if integral and int(torch.unique(y).numel()) <= MAX_CLASSES else "regression"


def load_data(cfg: Mapping[str, Any]) -> Data:
    """Build the split described by ``cfg`` (keys data, target, features, sep, n, noise, val_fraction,
    seed, task, standardize; ``standardize_stats``: a saved model's μ, σ to use instead of the data's)."""
    import nnlab as nl

    name = str(cfg["data"])
    seed = int(cfg.get("seed") or 0)
    frac = float(cfg.get("val_fraction", 0.2))
    if name.lower().endswith(".csv") or Path(name).is_file():
        feats = cfg.get("features")
        feats = [f for f in str(feats).split(",") if f] if isinstance(feats, str) else feats
        X, y, names = read_csv(name, cfg.get("target"), feats or None, sep=cfg.get("sep"))
        task = _target_task(y, str(cfg.get("task", "auto")))
        pre: dict[str, Any] = {}
        if cfg.get("standardize", True):
            # a saved model's own standardisation (prune/plot/lora on new data), else the data's
            st = Standardize(**stats) if (stats := cfg.get("standardize_stats")) else Standardize.fit(X)
            if st.mean.numel() != X.shape[1]:
                raise CLIError(f"{name} has {X.shape[1]} feature columns but the model was trained "
                               f"on {st.mean.numel()}")
            with torch.no_grad():
                X = st(X)
            pre = {"standardize": st.as_dict()}
        if task == "classification":
            classes, yi = torch.unique(y, return_inverse=True)
            pre["classes"] = classes.tolist()
            y_t, n_out = yi.long(), int(classes.numel())
        else:
            y_t, n_out = y.float().unsqueeze(1), 1
        train, val = _split(X, y_t, frac, seed)
        return Data(train, val, task, X.shape[1], n_out, names, pre)
    if name == "digits":
        if not hasattr(nl, "data"):
            raise CLIError("dataset 'digits' needs nl.data (the training branch)")
        d = nl.data.digits(seed=seed)
        Xtr, ytr = d.train
        return Data((Xtr, ytr), d.val, "classification", int(Xtr.shape[1]), 10,
                    [f"pixel{i}" for i in range(Xtr.shape[1])])
    if name in TOY_NAMES:
        X, y = nl.data.toy(name, n=int(cfg.get("samples", 400)), noise=float(cfg.get("noise", 0.0)), seed=seed)
        X = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(y).long().reshape(-1)
        train, val = _split(X, y, frac, seed)
        return Data(train, val, "classification", int(X.shape[1]), int(y.max()) + 1, ["x1", "x2"])
    raise CLIError(f"unknown dataset {name!r}: give a toy name ({', '.join(TOY_NAMES)}), "
                   "'digits', or the path of a CSV file (with --target)")
