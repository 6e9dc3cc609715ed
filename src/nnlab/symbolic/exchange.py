"""Values that the jobs of a parallel search share: each computed once, by whichever job claims it first.

The decomposition (:mod:`~nnlab.symbolic.decompose`) fits a surrogate (log inputs) and, only when it
is not accurate enough, others (raw inputs, another start). Run in parallel as two shards (or as a
job and a helper job), each job asks the exchange for the fits it needs: the first to claim a fit
makes it and publishes it, the others take it. A job that starts while another makes the first fit
makes the raw-input one meanwhile (:func:`~nnlab.symbolic.surrogate.help_decompose`), so that when
both are needed they were made at the same time. Nothing depends on which job made a value: it is
a pure function of its inputs (one thread, seeded) and its name says which inputs
(:func:`~nnlab.symbolic.surrogate.surrogate_name`), so every job's result is bit for bit the one of
``n_jobs=1``.

A decision chain (the surrogate tries, the power factors' hypotheses: each fit decides whether the
next is needed) runs ahead of need: a job that asks for a value another job is computing computes
meanwhile the next one the chain may ask for (``take(..., meanwhile=...)``, :meth:`speculate`)
instead of waiting; once the chain knows what it will not ask for, it drops those values
(:meth:`drop`) and a job still computing one stops (its fit's ``stop`` test). Two fits of the chain
run at once, and each is still a pure function of its name.

The jobs meet through files ``<key>.<name>.*`` in a folder of the search (the one that holds its
cancel file): ``claim`` is created exclusively (``O_EXCL``) by the job that computes; ``value`` is
the pickled value (written whole, then renamed); ``failed`` says that job ended without one;
``dropped`` says the value will not be asked for; ``<key>.declined`` says the owner needs nothing
more (a running helper job watches it and stops).

The shards of one candidate also meet here at their end (:meth:`post`, :meth:`peek`, :meth:`claim`):
each publishes its share of the work; the one that finds every other share published claims the
join and joins them itself (see :class:`~nnlab.symbolic.parallel.CandidateJob`), so the join runs on
a worker beside the other jobs rather than in the search's own process. A decomposition's shard
also claims each leaf it reaches (:meth:`first`): the first to claim a leaf fits it.

Within a leaf or an exact-rows test, the independent pieces of work (a fit per target transform,
the rationals, the dictionary of each transform) are :data:`Task` s: shards that reach the same
tasks at once split them (:func:`share`), and a shard whose own leaves are done computes, last first,
the tasks of the leaves another shard is fitting (:meth:`help`).

Where the folder is not shared (a cluster without a common file system) no job sees another: each
computes what it needs itself, shards share the leaves by index and the search joins the shards.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["Exchange", "Task", "share", "value_name"]

#: an independent piece of work of a decomposition's shard: (its :func:`value_name`, compute())
Task = tuple[str, Callable[[], Any]]


def value_name(kind: str, *arrays: np.ndarray, **args: Any) -> str:
    """The name of a value in an :class:`Exchange`: ``kind`` and a digest of the arrays and the
    arguments it is a pure function of (two values with the same name are the same value)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    h.update(repr(sorted(args.items())).encode())
    return f"{kind}-{h.hexdigest()[:20]}"


def _pickler() -> Any:
    """cloudpickle where it is installed (joblib's loky pickles with it: a shard's share may hold a
    lambda, as loky's own results do), else pickle; ``pickle.load`` reads both."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - joblib without cloudpickle
        return pickle
    return cloudpickle


@dataclass(frozen=True)
class Exchange:
    """The meeting point of one owner and one helper: ``folder`` (the search's) and ``key`` (the job's).

    ``started``: ``time.monotonic()`` when the owner's job began; it sets how long the owner waits for a
    value the helper claimed (5× the owner's own time so far, at least ``min_patience`` seconds)."""

    folder: str
    key: str
    started: float = field(default_factory=time.monotonic, compare=False)
    min_patience: float = 30.0

    def shared(self) -> bool:
        """Whether this job reaches the folder (not on a machine without the search's file system)."""
        return os.path.isdir(self.folder)

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

    def _publish(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute the value this side claimed and publish it for the others. Whatever ends the
        computation (an error, a cancel), they are told (``failed``) and compute it themselves."""
        done = False
        try:
            value = compute()
            tmp = self.path(name, f"value.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    _pickler().dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path(name, "value"))
                done = True
            except (OSError, pickle.PicklingError, AttributeError, TypeError):  # (what cannot be pickled stays here)
                pass
            return value
        finally:
            if not done:
                self._touch(self.path(name, "failed"))

    def take(self, name: str, compute: Callable[[], Any], patience: float | None = None,
             meanwhile: Sequence[tuple[str, Callable[[Callable[[], bool]], Any]]] = ()) -> Any:
        """A job's side: the value ``name``, computed here (and published) when this side claims it
        first (computed here only when nothing is shared), else the one another job computes; after
        ``patience`` seconds without it (default: see ``started``) or when that job failed, it is
        computed here. Either way the same value.

        ``meanwhile``: ``(name, compute(stop))`` of values the caller may ask for next, in order; while
        another job computes ``name``, this one computes the first of them that nobody claimed and
        nobody dropped (:meth:`speculate`), and the next while the value is still not there, then waits."""
        claim = self._claim(name)
        if claim is None:
            return compute()
        if claim:
            return self._publish(name, compute)
        for other, make in meanwhile:
            if os.path.exists(self.path(name, "value")) or os.path.exists(self.path(name, "failed")):
                break
            self.speculate(other, make)
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

    def speculate(self, name: str, compute: Callable[[Callable[[], bool]], Any]) -> bool:
        """Compute the value ``name`` ahead of need and publish it, unless another job claimed it or it
        was dropped. ``compute`` gets a ``stop`` test (true once the value is dropped: it then raises,
        see :class:`~nnlab.symbolic.train.Interrupted`, and nothing is published). Returns whether
        it was published."""
        dropped = self.path(name, "dropped")
        if os.path.exists(dropped) or self._claim(name) is not True:
            return False
        try:
            self._publish(name, lambda: compute(lambda: os.path.exists(dropped)))
        except Exception:  # stopped or failed: the others are told (failed) and compute it if they need it
            return False
        return os.path.exists(self.path(name, "value"))

    def drop(self, names: Iterable[str]) -> None:
        """The values ``names`` will not be asked for: nobody starts them, a job computing one stops."""
        for name in names:
            self._touch(self.path(name, "dropped"))

    def post(self, name: str, value: Any) -> bool:
        """Publish a value this job already has (a shard's share of the work) under ``name``;
        False where nothing is shared."""
        if self._claim(name) is not True:
            return False
        self._publish(name, lambda: value)
        return os.path.exists(self.path(name, "value"))

    def peek(self, name: str) -> Any:
        """The value ``name`` if another job has published it, else None (no waiting)."""
        try:
            with open(self.path(name, "value"), "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    def first(self, name: str) -> bool | None:
        """Whether this job claimed ``name`` before any other (a decomposition's shard takes the leaf it
        reaches first: the shards share the leaves by who is free, not by index); None where nothing
        is shared (the shards then share them by index)."""
        return self._claim(name)

    def claim(self, name: str) -> bool:
        """Whether this job is the first (and only) one to claim ``name`` in a shared folder."""
        return self._claim(name) is True

    def help(self, tasks: Sequence[Task]) -> int:
        """Compute, last first, the ``tasks`` no job has claimed yet (a shard with nothing left to do
        helps the one that fits a leaf it deferred; that one takes them through :func:`share`).
        Returns how many were computed here."""
        return sum(self.speculate(name, lambda stop, f=f: f()) for name, f in reversed(tasks))

    def decline(self) -> None:
        """The owner needs nothing more: a helper not started yet returns at once, a running one
        stops (it watches :attr:`declined_path`)."""
        self._touch(self.declined_path)


def share(exchange: Exchange | None, tasks: Sequence[Task]) -> list[Any]:
    """The values of independent ``tasks``, in their order. Without an exchange each is computed here;
    with one, each is computed once, by whichever job claims it first: while another job computes a
    task this one needs, this one computes the next tasks nobody claimed (:meth:`Exchange.take`'s
    ``meanwhile``), so two jobs that reach the same tasks at once split them. The values are those
    of computing every task here (each is a pure function of its name)."""
    if exchange is None:
        return [f() for _, f in tasks]
    out = []
    for i, (name, f) in enumerate(tasks):
        later = [(n, lambda stop, g=g: g()) for n, g in tasks[i + 1:]]
        out.append(exchange.take(name, f, meanwhile=later))
    return out
