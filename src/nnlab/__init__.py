"""nnlab: the deep-learning lecture as tools you can use.

The public API, section by section of the lecture (``import nnlab as nl``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

# §5.5 pruning: nl.prune.magnitude / obd / obs / residual_blocks / neurons / gradual / sparsity / finalize
from . import prune  # noqa: E402

__all__ += ["prune"]
