"""Values that two jobs of a parallel search may share: each computed once, by whichever claims it first.

The decomposition (:mod:`~nnlab.symbolic.decompose`) needs a second surrogate (raw inputs) only when
the first (log inputs) is not accurate enough, and learns that only after fitting the first. Run in
parallel, a *helper* job fits the second one at the same time in another process; the *owner* (the
decomposition's job) takes it when it needs it, or fits it itself when the helper has not started.
Nothing depends on which side computed it: a value is a pure function of its inputs (one thread,
seeded) and its name says which inputs (:func:`~nnlab.symbolic.surrogate.surrogate_name`), so the
owner's result is bit for bit the one of ``n_jobs=1``. A name the helper never computes is computed
by the owner at once.

The sides meet through files ``<key>.<name>.*`` in a folder of the search (the one that holds its
cancel file): ``claim`` is created exclusively (``O_EXCL``) by the side that computes; ``value`` is
the helper's pickled value (written whole, then renamed); ``failed`` says the helper ended without
one; ``<key>.declined`` says the owner needs nothing more (a running helper watches it and stops).
Where the folder is not shared (a cluster without a common file system) neither side sees the
other: the owner computes every value itself and the helper does nothing.
"""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Exchange"]


@dataclass(frozen=True)
class Exchange:
    """The meeting point of one owner and one helper: ``folder`` (the search's) and ``key`` (the job's).

    ``started``: ``time.monotonic()`` when the owner's job began; it sets how long the owner waits for a
    value the helper claimed (5× the owner's own time so far, at least ``min_patience`` seconds)."""

    folder: str
    key: str
    started: float = field(default_factory=time.monotonic, compare=False)
    min_patience: float = 30.0

    def path(self, name: str, what: str) -> str:
        return os.path.join(self.folder, f"{self.key}.{name}.{what}")

    @property
    def declined_path(self) -> str:
        """The file whose existence tells a running helper that nothing more is needed."""
        return os.path.join(self.folder, f"{self.key}.declined")

    def _claim(self, name: str) -> bool | None:
        """True: this side computes; False: the other side claimed first; None: no shared folder."""
        try:
            fd = os.open(self.path(name, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        except OSError:
            return None
        os.close(fd)
        return True

    def _touch(self, path: str) -> None:
        try:
            open(path, "w").close()
        except OSError:
            pass

    def give(self, name: str, compute: Callable[[], Any]) -> bool:
        """The helper's side: compute the value ``name`` and publish it, unless the owner claimed it
        first or declined. Returns whether it was published. Whatever ends the computation (an
        error, a cancel), the owner is told (``failed``) and computes the value itself."""
        if os.path.exists(self.declined_path) or self._claim(name) is not True:
            return False
        done = False
        try:
            value = compute()
            tmp = self.path(name, f"value.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path(name, "value"))
            done = True
        finally:
            if not done:
                self._touch(self.path(name, "failed"))
        return True

    def take(self, name: str, compute: Callable[[], Any], patience: float | None = None) -> Any:
        """The owner's side: the value ``name``, computed here when this side claims it first (or
        nothing is shared), else the helper's; after ``patience`` seconds without it (default: see
        ``started``) or when the helper failed, it is computed here. Either way the same value."""
        if self._claim(name) is not False:
            return compute()
        if patience is None:
            patience = max(self.min_patience, 5 * (time.monotonic() - self.started))
        end = time.monotonic() + patience
        value = self.path(name, "value")
        while time.monotonic() < end:
            if os.path.exists(value):
                try:
                    with open(value, "rb") as f:
                        return pickle.load(f)
                except (OSError, EOFError, pickle.UnpicklingError):
                    break
            if os.path.exists(self.path(name, "failed")):
                break
            time.sleep(0.005)
        return compute()

    def decline(self) -> None:
        """The owner needs nothing more: a helper not started yet returns at once, a running one
        stops (it watches :attr:`declined_path`)."""
        self._touch(self.declined_path)
