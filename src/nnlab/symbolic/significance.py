"""Is a snap significant? The noise level of a fit, and an F-test of fixed constants against it.

Snapping (lecture §6.3 step 6) replaces free constants by exact numbers: a *restriction* of the
least-squares fit. Under Gaussian noise of standard deviation ``σ`` (SRBench's protocol, issue 11
item 8) the classical nested-model test (Seber & Wild, *Nonlinear Regression*, §5.9) says whether
the data object to it. With ``n`` rows, a reference fit with ``p`` free constants and residual
sum of squares ``RSS₀``, and a restricted formula with ``q`` constants fewer and ``RSS₁``:

    σ̂² = RSS₀ / (n − p)                     (the noise level the data show)
    F  = (RSS₁ − RSS₀) / (q · σ̂²)           ~ F(q, n − p) when the restriction is true

The restriction is accepted when ``F ≤ F⁻¹(1 − α; q, n − p)`` (``α = 10⁻³`` by default), or when
the error grows by at most ``floor`` (the old fixed ``snap_tol``: round-off of exact data). The
tolerance is thus tied to the estimated noise: with exact data ``σ̂`` is round-off and a snap
must be exact; with 1% noise a constant may move within its confidence interval. The test is
cumulative: every snap is compared with the same fully free reference, ``q`` counting all
constants fixed so far, so many small snaps cannot drift the formula away one by one.

Errors are relative RMSEs (``RMSE/RMS(y)``, see :func:`~nnlab.symbolic.polish.relative_rmse`):
``RSS = n·err²·RMS(y)²``, so the ratio ``F`` needs only the errors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import f as f_dist
from scipy.stats import t as t_dist

__all__ = ["ALPHA", "SnapTest", "z_value"]

#: significance level of the snap test: a true snap is refused with probability α
ALPHA = 1e-3


def z_value(n: int, p: int, alpha: float = ALPHA) -> float:
    """Half-width of a two-sided ``1 − α`` confidence interval in standard errors (Student's t with
    ``n − p`` degrees of freedom): a constant is compatible with ``v`` when ``|v − θ̂| ≤ z·se``."""
    dof = max(n - p, 1)
    return float(t_dist.isf(alpha / 2, dof))


@dataclass(frozen=True)
class SnapTest:
    """The F-test of restrictions against a reference least-squares fit (see the module doc).

    ``n``: rows; ``p``: free constants of the reference; ``error``: its relative RMSE;
    ``floor``: an error increase always allowed (round-off); ``alpha``: significance level."""

    n: int
    p: int
    error: float
    floor: float = 1e-6
    alpha: float = ALPHA

    @property
    def dof(self) -> int:
        return max(self.n - self.p, 1)

    @property
    def sigma(self) -> float:
        """Estimated noise level, relative to RMS(y): ``√(RSS₀/(n − p))/RMS(y)``."""
        return self.error * math.sqrt(self.n / self.dof) if math.isfinite(self.error) else math.inf

    def limit(self, q: int) -> float:
        """Largest relative RMSE a formula with ``q`` constants fixed (≥ 1) may have."""
        base = self.error
        if not math.isfinite(base):
            return base
        q = max(int(q), 1)
        lim = base + self.floor
        if base > 0 and self.alpha > 0 and self.n > self.p:
            crit = float(f_dist.isf(self.alpha, q, self.dof))
            lim = max(lim, math.sqrt(base ** 2 * (1.0 + q * crit / self.dof)))
        return lim

    def accepts(self, error: float, q: int) -> bool:
        """Is a formula with ``q`` constants fixed (relative RMSE ``error``) compatible with the data?"""
        return math.isfinite(error) and error <= self.limit(q)

    def z(self) -> float:
        """Confidence-interval half-width (in standard errors) at this test's level."""
        return z_value(self.n, self.p, self.alpha)
