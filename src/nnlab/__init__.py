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
