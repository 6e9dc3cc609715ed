"""Symbolic regression with KANs (lecture §6.3): from data to an exact, snapped sympy formula.

Steps and where they live: library of simple functions (``library``), affine fit of one edge
(``affine``), matching of every edge (``matching``), symbolic edges inside a KAN layer
(``edges``), formula composition (``formula``), least-squares polish (``polish``), number snap
(``snap``), the whole search as a scikit-learn estimator (``regressor``), reports (``report``);
splitting a law with a fitted surrogate as oracle (``decompose``, the oracle in ``surrogate``, tests
in ``separability`` and the splits they make in ``decompose_splits``, power factors read from the
rows when the oracle is rough in ``power_factor``, its leaves in ``decompose_leaf``: sparse rationals
``rational``, rationals in cos/sin features ``trig_rational``, atom sums ``dictionary``; the last part
of a split named by the exact rows once the others are known in ``exact_parts``);
at scale: the front of formulas (``front``), exports (``export``), parallel candidate jobs
(``parallel``), progress (``progress``), several targets (``multi``), warm start (``warm``);
dimensional analysis before the search (``units``).
"""
from __future__ import annotations

from . import decompose, exact_parts, power_factor, surrogate, units
from .affine import AffineFit, canonical, fit_affine
from .edges import SymbolicEdges
from .export import NumpyFormula, TorchFormula
from .front import Equation, Front
from .formula import formula, spline_edges
from .library import LIBRARY, Library, SymbolicFunction, default_library, register
from .matching import EdgeMatch, auto_symbolic, choose, suggest
from .polish import polish
from .regressor import SymbolicRegressor
from .snap import SnapResult, snap

__all__ = [
    "LIBRARY", "Library", "SymbolicFunction", "register", "default_library",
    "AffineFit", "fit_affine", "canonical",
    "SymbolicEdges", "EdgeMatch", "suggest", "choose", "auto_symbolic",
    "formula", "spline_edges", "polish", "SnapResult", "snap", "SymbolicRegressor", "decompose", "units",
    "Equation", "Front", "NumpyFormula", "TorchFormula",
]
