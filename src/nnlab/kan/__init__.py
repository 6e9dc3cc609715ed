"""Kolmogorov–Arnold Networks (lecture §6): exact B-spline KAN layers, grids, pruning, plots.

* :mod:`~nnlab.kan.spline`: B-spline math as pure functions (Cox–de Boor, closed form, fitting).
* :class:`KANLayer` (:mod:`~nnlab.kan.layer`) with the fused kernel of :mod:`~nnlab.kan.kernel`;
  :mod:`~nnlab.kan.routes` picks its code path (native C / Triton on CUDA / eager PyTorch).
* :class:`KAN` (:mod:`~nnlab.kan.model`), :class:`MultKAN` with multiplication nodes (:mod:`~nnlab.kan.mult`);
  :mod:`~nnlab.kan.grid` (grid update/extension),
  :mod:`~nnlab.kan.regularization`, :mod:`~nnlab.kan.prune`, :func:`plot`, :mod:`~nnlab.kan.io`,
  :class:`GridUpdate` and :class:`GridExtend` (``nl.fit`` callbacks).
"""
from . import routes, spline
from .callbacks import GridExtend, GridUpdate, grid_schedule
from .layer import GridRangeWarning, KANLayer
from .model import KAN, LayerTrace
from .mult import MultKAN
from .plot import plot
from .prune import prune
from .regularization import regularization

__all__ = ["KANLayer", "KAN", "MultKAN", "LayerTrace", "GridRangeWarning", "GridUpdate", "GridExtend", "grid_schedule",
           "plot", "prune", "regularization", "routes", "spline"]
