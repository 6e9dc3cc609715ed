"""nnlab: the deep-learning lecture as tools you can use.

The public API, section by section of the lecture (``import nnlab as nl``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

# §6 Kolmogorov–Arnold Networks
from . import kan  # noqa: E402
from .kan import KAN, KANLayer  # noqa: E402

__all__ += ["kan", "KAN", "KANLayer"]

# §6.3 Symbolic regression with KANs
from . import symbolic  # noqa: E402
from .symbolic import SymbolicRegressor  # noqa: E402

__all__ += ["symbolic", "SymbolicRegressor"]
