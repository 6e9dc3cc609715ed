"""nnlab: the deep-learning lecture as tools you can use.

The public API, section by section of the lecture (``import nnlab as nl``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

# §2–§4 building blocks (branch `blocks`): activations, layers, init, clipping, logic, diagnostics
from . import activations, clip, diagnostics, init, logic  # noqa: E402
from .activations import activation  # noqa: E402
from .layers import MLP, Dense, LowRank, Residual  # noqa: E402

__all__ += ["activation", "activations", "init", "clip", "logic", "diagnostics",
            "Dense", "LowRank", "MLP", "Residual"]

# §1 Training: nl.fit(model, train, val, loss=..., optimizer=...) -> History; nl.data toy sets
from nnlab import data
from nnlab.training import History, TrainState, fit

__all__ += ["data", "fit", "History", "TrainState"]

# §6 Kolmogorov–Arnold Networks
from . import kan  # noqa: E402
from .kan import KAN, KANLayer  # noqa: E402

__all__ += ["kan", "KAN", "KANLayer"]
