"""Live progress of a symbolic search: one line per candidate and a bar for the whole search.

``verbose``: False (silent), True (always) or ``"auto"`` (only when ``stream`` is a terminal).
Lines go through ``tqdm.write`` so they do not break the bar; everything goes to ``stream``
(stderr by default), never to stdout, so a piped formula stays clean.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Sequence, TextIO

from .search import CandidateResult

__all__ = ["SearchProgress", "enabled", "not_applicable_reason"]


def not_applicable_reason(c: Any, X: Any, y: Any, names: Sequence[str]) -> str:
    """Why candidate ``c`` cannot run on (X, y): a log space needs values of one sign."""
    from .transforms import fixed_sign

    why = []
    if c.log_y and fixed_sign(y) == 0:
        why.append("the target changes sign (or is 0)")
    if c.log_x:
        bad = [names[j] for j in range(X.shape[1]) if fixed_sign(X[:, j]) == 0]
        if bad:
            why.append(f"feature(s) {', '.join(bad)} change sign (or are 0)")
    space = "log-log" if c.log_x and c.log_y else "log-y" if c.log_y else "log-x" if c.log_x else "raw"
    return f"{c.name} ({space} space): " + ("; ".join(why) or "does not apply to this data")


def enabled(verbose: Any, stream: TextIO | None = None) -> bool:
    """Whether progress shows: ``verbose`` True, or ``"auto"`` and ``stream`` is a terminal."""
    if verbose == "auto":
        stream = sys.stderr if stream is None else stream
        return bool(getattr(stream, "isatty", lambda: False)())
    if verbose not in (True, False, None, 0, 1):
        raise ValueError(f"verbose must be True, False or 'auto', got {verbose!r}")
    return bool(verbose)


def _label(c: Any) -> str:
    return c.name if c.seed == 0 else f"{c.name}#{c.seed}"


class SearchProgress:
    """Receives the search's events; prints them when ``on``. Cheap when off (every method returns
    at once), so the search calls it unconditionally."""

    def __init__(self, on: bool, total: int, stream: TextIO | None = None, n_jobs: Any = 1) -> None:
        self.on = on
        self.stream = sys.stderr if stream is None else stream
        self.best = math.inf
        self.t0 = time.monotonic()
        self.bar = None
        if on:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="search", unit="cand", file=self.stream, leave=False,
                            dynamic_ncols=True)
            if n_jobs not in (1, None):
                self._write(f"running {total} candidate(s) in parallel (n_jobs={n_jobs})")

    def _write(self, text: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(text, file=self.stream)

    def not_applicable(self, notes: Sequence[str]) -> None:
        if self.on:
            for n in notes:
                self._write(f"not tried: {n}")

    def start(self, job: Any) -> None:
        if self.on and self.bar is not None:
            self.bar.set_postfix_str(f"{_label(job.candidate)} …", refresh=True)

    def end(self, job: Any, r: CandidateResult) -> None:
        if not self.on:
            return
        if r.note.startswith("skipped"):
            self.bar.update(1)
            return
        if r.expr is not None and math.isfinite(r.val_error):
            self.best = min(self.best, r.val_error)
        err = f"{r.val_error:.2e}" if math.isfinite(r.val_error) else "failed"
        best = f"{self.best:.2e}" if math.isfinite(self.best) else "-"
        self._write(f"[{time.monotonic() - self.t0:6.1f}s] {_label(r.candidate):<14} done in {r.seconds:5.1f}s  "
                    f"val. error {err:>9}  best so far {best}")
        self.bar.update(1)

    def close(self, results: Sequence[CandidateResult], planned: Sequence[Any]) -> None:
        if not self.on:
            return
        skipped = [_label(r.candidate) for r in results if r.note.startswith("skipped")]
        ran = {(r.candidate.name, r.candidate.seed) for r in results}
        unrun = [_label(c) for c in planned if (c.name, c.seed) not in ran]
        if skipped:
            self._write(f"time limit reached: skipped {', '.join(skipped)}")
        if unrun:
            self._write(f"stopped early (an exact formula was found): not run {', '.join(unrun)}")
        if self.bar is not None:
            self.bar.close()
        self._write(f"search done in {time.monotonic() - self.t0:.1f}s; best val. error "
                    f"{self.best:.2e}" if math.isfinite(self.best) else "search done; every candidate failed")
