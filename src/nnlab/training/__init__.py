"""Training (lecture §1): ``fit`` minimises the empirical risk and reports the held-out risk.

Modules: :mod:`.loop` (``fit``), :mod:`.history`, :mod:`.losses`, :mod:`.optimizers`,
:mod:`.callbacks`, :mod:`.data_loading`, :mod:`.checkpoint`, :mod:`.distributed`, :mod:`._clipping`.
"""
from .callbacks import TrainState
from .checkpoint import load_checkpoint
from .history import History
from .loop import DivergenceError, fit

__all__ = ["fit", "DivergenceError", "History", "TrainState", "load_checkpoint"]
