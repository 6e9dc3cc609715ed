"""The playground's setup: one flat, URL-friendly record, validated at the boundary.

Every field has a short key so the whole setup fits in a query string / URL hash
(``#dataset=spiral&model=kan&kan_hidden=5&grid=5``). :func:`parse_config` turns a
mapping of strings (or JSON values) into a :class:`PlaygroundConfig`, raising
``ValueError`` with a message that names the field, the bad value and what is allowed;
the server maps that to HTTP 422 and the page shows it.

The limits (:data:`LIMITS`) bound the size of a model and of a data set, so a shared
URL cannot make the server train something huge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from nnlab.playground.datasets import CLASSIFICATION, REGRESSION

__all__ = ["PlaygroundConfig", "parse_config", "LIMITS", "MODELS", "OPTIMIZERS", "REGULARIZERS",
           "CLIPS", "init_names", "activation_names", "count_mlp_params", "count_kan_params"]

MODELS = ("mlp", "kan")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
REGULARIZERS = ("none", "l1", "l2", "kan")
CLIPS = ("none", "norm", "value")

#: Inclusive bounds for every numeric field, and the largest model the server will build.
LIMITS: dict[str, tuple[float, float]] = {
    "noise": (0.0, 1.0),
    "train_ratio": (0.1, 0.9),
    "n_samples": (50, 2000),
    "batch_size": (1, 2000),
    "layers": (0, 8),
    "width": (1, 64),
    "kan_width": (1, 16),
    "kan_layers": (0, 3),
    "grid": (2, 30),
    "k": (1, 5),
    "lr": (1e-5, 10.0),
    "lam": (0.0, 1.0),
    "clip_value": (1e-4, 1e4),
    "seed": (0, 2**31 - 1),
}
MAX_PARAMS = 20_000


def init_names() -> list[str]:
    """The MLP weight initialisations: ``nl.init.SCHEMES`` (he, xavier, ...)."""
    from nnlab import init

    return list(init.SCHEMES)


def activation_names() -> list[str]:
    """The activations the MLP may use: ``nl.activations.names()`` (lecture §3)."""
    from nnlab import activations

    return list(activations.names())


@dataclass(frozen=True)
class PlaygroundConfig:
    """One playground setup. Field names are also the URL keys.

    ``hidden`` (MLP) is ``layers`` hidden layers of ``width`` neurons; ``kan_hidden`` (KAN) is a
    tuple of hidden widths, so the KAN is ``[n_in, *kan_hidden, n_out]`` (lecture §6.2).
    """

    dataset: str = "spiral"
    noise: float = 0.05
    train_ratio: float = 0.5
    n_samples: int = 400
    batch_size: int = 32
    model: str = "mlp"
    layers: int = 2
    width: int = 8
    activation: str = "tanh"
    init: str = "xavier"
    batchnorm: bool = False
    residual: bool = False
    kan_hidden: tuple[int, ...] = (5,)
    grid: int = 5
    k: int = 3
    optimizer: str = "adam"
    lr: float = 0.03
    reg: str = "none"
    lam: float = 0.0
    clip: str = "none"
    clip_value: float = 1.0
    seed: int = 0

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``, from the data set."""
        return "classification" if self.dataset in CLASSIFICATION else "regression"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["kan_hidden"] = list(self.kan_hidden)
        return d

    def as_query(self) -> str:
        """The setup as a query string (``kan_hidden`` comma-separated, booleans 0/1)."""
        parts = []
        for k, v in self.as_dict().items():
            if isinstance(v, list):
                v = ",".join(str(i) for i in v)
            elif isinstance(v, bool):
                v = int(v)
            parts.append(f"{k}={v}")
        return "&".join(parts)


_FIELDS = {f.name: f for f in dataclasses.fields(PlaygroundConfig)}
_CHOICES = {"model": MODELS, "optimizer": OPTIMIZERS, "reg": REGULARIZERS, "clip": CLIPS}


def _number(key: str, raw: Any, kind: type) -> float | int:
    if isinstance(raw, bool):
        raise ValueError(f"{key} must be a number, got {raw!r}")
    try:
        val = kind(float(raw)) if kind is float else int(str(raw).strip())
    except (TypeError, ValueError):
        what = "a number" if kind is float else "a whole number"
        raise ValueError(f"{key} must be {what}, got {raw!r}") from None
    if kind is float and val != val:  # NaN
        raise ValueError(f"{key} must be a finite number, got {raw!r}")
    lo, hi = LIMITS[key]
    if not lo <= val <= hi:
        raise ValueError(f"{key}={raw!r} is out of range: allowed {lo:g} to {hi:g}")
    return val


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{key} must be true/false (or 1/0), got {raw!r}")


def _widths(raw: Any) -> tuple[int, ...]:
    items = raw if isinstance(raw, (list, tuple)) else [s for s in str(raw).split(",") if s.strip()]
    lo, hi = LIMITS["kan_layers"]
    if not lo <= len(items) <= hi:
        raise ValueError(f"kan_hidden must list {lo:g} to {hi:g} hidden widths, got {len(items)} "
                         f"({raw!r})")
    return tuple(int(_number("kan_width", w, int)) for w in items)


def parse_config(values: Mapping[str, Any] | None = None) -> PlaygroundConfig:
    """Build a validated :class:`PlaygroundConfig` from URL/JSON values; missing keys get defaults.

    Raises ``ValueError`` naming the first bad field (unknown key, unknown choice, out of range,
    model too large).
    """
    values = dict(values or {})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid keys: "
                         f"{', '.join(_FIELDS)}")
    out: dict[str, Any] = {}
    for key, raw in values.items():
        default = _FIELDS[key].default
        if key == "dataset":
            names = (*CLASSIFICATION, *REGRESSION)
            if raw not in names:
                raise ValueError(f"unknown dataset {raw!r}; choose one of {', '.join(names)}")
            out[key] = raw
        elif key in ("activation", "init"):
            names = activation_names() if key == "activation" else init_names()
            if raw not in names:
                raise ValueError(f"unknown {key} {raw!r}; choose one of {', '.join(names)}")
            out[key] = raw
        elif key in _CHOICES:
            if raw not in _CHOICES[key]:
                raise ValueError(f"unknown {key} {raw!r}; choose one of {', '.join(_CHOICES[key])}")
            out[key] = raw
        elif key == "kan_hidden":
            out[key] = _widths(raw)
        elif isinstance(default, bool):
            out[key] = _boolean(key, raw)
        elif isinstance(default, int):
            out[key] = int(_number(key, raw, int))
        else:
            out[key] = float(_number(key, raw, float))
    cfg = PlaygroundConfig(**out)
    if cfg.batch_size > cfg.n_samples:
        raise ValueError(f"batch_size={cfg.batch_size} is larger than n_samples={cfg.n_samples}")
    if cfg.batchnorm and cfg.model == "mlp" and cfg.batch_size < 2:
        raise ValueError("batch norm needs batch_size >= 2 (it normalises over the batch)")
    if cfg.reg == "kan" and cfg.model != "kan":
        raise ValueError("reg=kan (KAN sparsity, lecture §6.3) needs model=kan; use l1 or l2 for "
                         "an MLP")
    n_params = _param_count(cfg)
    if n_params > MAX_PARAMS:
        raise ValueError(f"the model would have {n_params} parameters, more than the playground's "
                         f"limit of {MAX_PARAMS}; use fewer/narrower layers or a smaller grid")
    return cfg


def count_mlp_params(sizes: list[int], batchnorm: bool = False, residual: bool = False) -> int:
    """Parameters of ``nl.MLP(sizes)``: Σ (n_in+1)·n_out, plus 2·width per batch-norm layer,
    plus n_in·n_out per residual projection (hidden blocks whose width changes)."""
    n = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if batchnorm:
        n += 2 * sum(sizes[1:-1])
    if residual:
        n += sum(a * b for a, b in zip(sizes[:-2], sizes[1:-1]) if a != b)
    return n


def count_kan_params(width: list[int], grid: int, k: int) -> int:
    """Parameters of ``nl.KAN(width, grid, k)``: per edge grid+k spline coefficients + 2 scales."""
    return sum(a * b * (grid + k + 2) for a, b in zip(width[:-1], width[1:]))


def _param_count(cfg: PlaygroundConfig) -> int:
    from nnlab.playground.datasets import io_dims

    n_in, n_out = io_dims(cfg.dataset)
    if cfg.model == "mlp":
        sizes = [n_in, *([cfg.width] * cfg.layers), n_out]
        return count_mlp_params(sizes, cfg.batchnorm, cfg.residual)
    return count_kan_params([n_in, *cfg.kan_hidden, n_out], cfg.grid, cfg.k)
