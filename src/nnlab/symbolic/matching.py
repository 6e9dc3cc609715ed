"""Match each active KAN edge to a library function (lecture §6.3, step 3).

For an edge ``φ_{l,o,i}`` the samples ``(x_{l,i}, φ_{l,o,i}(x_{l,i}))`` on the data are fitted
with every library function by :func:`~nnlab.symbolic.affine.fit_affine`. Among the functions
with ``r² ≥ r2_threshold`` that are nearly as good as the best one
(``1 − r² ≤ slack·(1 − r²_best) + 1e-6``), the simplest wins. The winner is installed in the
layer's :class:`~nnlab.symbolic.edges.SymbolicEdges` (``layer.symbolic``) and the spline of
that edge is switched off (``mask = 0``); edges with no good match keep their spline and are
reported. The affine parameters stay trainable, so training afterwards refits them (step 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

from .affine import AffineFit, canonical, fit_affine
from .edges import SymbolicEdges
from .formula import layer_dims
from .library import LIBRARY, Library

__all__ = ["EdgeMatch", "suggest", "coarse_fits", "to_refine", "refined_fit", "choose", "auto_symbolic",
           "install_closest", "layer_inputs"]


@dataclass
class EdgeMatch:
    """Outcome for one edge ``(layer, out, inp)``: ``name`` is the function chosen (None if the
    spline was kept), ``fit`` its affine fit, ``candidates`` the ``(name, r2)`` of all tried."""

    layer: int
    out: int
    inp: int
    name: str | None
    fit: AffineFit | None
    matched: bool
    reason: str = ""
    candidates: list[tuple[str, float]] = field(default_factory=list)
    samples: tuple[list[float], list[float]] | None = field(default=None, repr=False)  # (x, φ(x)) fitted
    closest: tuple[str, AffineFit] | None = field(default=None, repr=False)  # best fit of an unmatched edge

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "out": self.out, "in": self.inp, "function": self.name,
                "fit": None if self.fit is None else self.fit.as_dict(), "matched": self.matched,
                "reason": self.reason, "candidates": [[n, r] for n, r in self.candidates]}


def suggest(x: Any, y: Any, lib: Library | None = None, names: Iterable[str] | None = None,
            refine_top: int = 5) -> list[tuple[str, AffineFit]]:
    """Fit every library function (or ``names``) to ``y ≈ c·f(a·x + b) + d``; sorted by r².

    All functions get a coarse grid fit (:func:`coarse_fits`); the ``refine_top`` best are refit with
    zoom and least-squares refinement (:func:`refined_fit`; the others cannot overtake them by much)."""
    lib = LIBRARY if lib is None else lib
    coarse = coarse_fits(x, y, lib, names)
    todo = set(to_refine(coarse, refine_top))
    fits = [(n, canonical(n, refined_fit(x, y, n, lib) if rank in todo else fit)) for rank, (n, fit) in enumerate(coarse)]
    fits.sort(key=lambda t: -(t[1].r2 if math.isfinite(t[1].r2) else -1e300))
    return fits


def coarse_fits(x: Any, y: Any, lib: Library | None = None, names: Iterable[str] | None = None
                ) -> list[tuple[str, AffineFit]]:
    """:func:`suggest`'s ranking: every function's grid fit on a thinned sample, best r² first."""
    lib = LIBRARY if lib is None else lib
    names = list(lib) if names is None else list(names)
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    step = max(1, len(xt) // 64)  # the coarse ranking only needs a thinned sample
    coarse = [(n, fit_affine(xt[::step], yt[::step], n, lib, refine=False, iterations=1, grid_number=31))
              for n in names]
    coarse.sort(key=lambda t: -(t[1].r2 if math.isfinite(t[1].r2) else -1e300))
    return coarse


def to_refine(coarse: Sequence[tuple[str, AffineFit]], refine_top: int) -> list[int]:
    """The ranks of :func:`coarse_fits` that :func:`suggest` refits: the ``refine_top`` best, but
    not the constant and the identity (their fits are exact already) nor a function undefined on x."""
    return [r for r, (n, fit) in enumerate(coarse[:refine_top]) if n not in ("0", "x") and math.isfinite(fit.r2)]


def refined_fit(x: Any, y: Any, name: str, lib: Library | None = None) -> AffineFit:
    """:func:`suggest`'s refit of one function on every sample: a finer zoom and least squares."""
    return fit_affine(x, y, name, lib, grid_number=25, iterations=3)


def choose(fits: Sequence[tuple[str, AffineFit]], lib: Library | None = None, r2_threshold: float = 0.99,
           slack: float = 3.0) -> tuple[str, AffineFit] | None:
    """The simplest fit that is near the best (see module doc); None if none reaches the threshold."""
    lib = LIBRARY if lib is None else lib
    ok = [(n, f) for n, f in fits if math.isfinite(f.r2) and f.r2 >= r2_threshold]
    if not ok:
        return None
    best = max(f.r2 for _, f in ok)
    near = [(n, f) for n, f in ok if 1 - f.r2 <= slack * (1 - best) + 1e-6]
    near.sort(key=lambda t: (lib[t[0]].complexity, -t[1].r2))
    return near[0]


def layer_inputs(model: Any, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every layer on x: ``[x, Φ_1(x), Φ_2(Φ_1(x)), …]`` (one per layer)."""
    if getattr(model, "mult", None) is not None:  # MultKAN: nodes multiply between layers; trace knows
        with torch.no_grad():
            return [t.input for t in model.trace(x)]
    hs = []
    h = x
    for layer in model.layers:
        hs.append(h)
        h = layer(h)
    return hs


def auto_symbolic(model: Any, x: Any, lib: Library | None = None, r2_threshold: float = 0.99,
                  names: Iterable[str] | None = None, slack: float = 3.0, max_samples: int = 128,
                  zero_tol: float = 1e-4) -> list[EdgeMatch]:
    """Fix every active edge of ``model`` to its best library match (in place).

    Args:
        model: a KAN (``.layers``; each layer has ``mask``, ``edge_activations``, ``symbolic``).
        x: (batch, width[0]) inputs the edges are sampled on.
        lib / names: library and optional subset of names to try.
        r2_threshold: minimum r² for a match; below it the spline is kept.
        slack: how much worse than the best r² a simpler function may be (see :func:`choose`).
        max_samples: samples per edge used for fitting (evenly spaced in sorted order).
        zero_tol: an edge whose spread is below ``zero_tol`` × the layer's largest edge spread
            is set to a constant (``"0"`` plus offset ``d``).

    Returns:
        one :class:`EdgeMatch` per edge that was active, matched or not. Never raises on a
        failed match.
    """
    lib = LIBRARY if lib is None else lib
    names = list(lib) if names is None else list(names)
    p0 = next(iter(model.parameters()), None)
    dtype = p0.dtype if p0 is not None else torch.get_default_dtype()
    x = torch.as_tensor(x, dtype=dtype)
    results: list[EdgeMatch] = []
    for l, layer in enumerate(model.layers):
        with torch.no_grad():
            h = layer_inputs(model, x)[l]
            acts = layer.edge_activations(h)
        n_in, n_out = layer_dims(layer)
        if getattr(layer, "symbolic", None) is None:
            layer.symbolic = SymbolicEdges(n_in, n_out, lib).to(dtype=dtype, device=h.device)
        sym = layer.symbolic
        spread = acts.std(dim=0)  # (out, in)
        top = float(spread.max()) if spread.numel() else 0.0
        for o in range(n_out):
            for i in range(n_in):
                if float(layer.mask[o, i]) == 0.0:
                    continue
                xi = h[:, i]
                yi = acts[:, o, i]
                if float(sym.active[o, i]) != 0.0:
                    yi = yi - sym.edge_activations(h)[:, o, i]
                order = torch.argsort(xi)
                idx = order[torch.linspace(0, len(order) - 1, min(max_samples, len(order))).round().long()]
                xs, ys = xi[idx].double(), yi[idx].double()
                if not (torch.isfinite(xs).all() and torch.isfinite(ys).all()):
                    results.append(EdgeMatch(l, o, i, None, None, False, "non-finite edge values: spline kept"))
                    continue
                if float(ys.std()) <= zero_tol * max(top, 1e-12):
                    fit = AffineFit(0.0, 0.0, 0.0, float(ys.mean()), 1.0)
                    _install(layer, sym, o, i, "0", fit)
                    results.append(EdgeMatch(l, o, i, "0", fit, True, "constant edge"))
                    continue
                samples = (xs.tolist(), ys.tolist())
                fits = suggest(xs, ys, lib, names)
                cands = [(n, f.r2) for n, f in fits]
                pick = choose(fits, lib, r2_threshold, slack)
                if pick is None:
                    best = cands[0] if cands else ("-", float("nan"))
                    results.append(EdgeMatch(l, o, i, None, None, False,
                                             f"no function reached r2 >= {r2_threshold} (best {best[0]}: "
                                             f"r2 = {best[1]:.4g}); spline kept", cands, samples,
                                             choose(fits, lib, r2_threshold=0.0, slack=slack)))
                    continue
                _install(layer, sym, o, i, pick[0], pick[1])
                results.append(EdgeMatch(l, o, i, pick[0], pick[1], True, "", cands, samples))
    return results


def install_closest(model: Any, matches: Sequence[EdgeMatch]) -> bool:
    """Give every unmatched edge of ``model`` its closest library function (in place), so the KAN's
    formula is closed-form (approximate); False if some edge had no finite fit at all."""
    ok = True
    for m in matches:
        if m.matched:
            continue
        if m.closest is None:
            ok = False
            continue
        layer = model.layers[m.layer]
        _install(layer, layer.symbolic, m.out, m.inp, *m.closest)
    return ok


def _install(layer: Any, sym: SymbolicEdges, o: int, i: int, name: str, fit: AffineFit) -> None:
    sym.set_edge(o, i, name, fit)
    with torch.no_grad():
        layer.mask[o, i] = 0.0
