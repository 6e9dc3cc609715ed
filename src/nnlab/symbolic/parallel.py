"""Run the candidates of a symbolic search: in this process, on local cores or on a cluster.

The search is a list of independent jobs (one :class:`~nnlab.symbolic.search.Candidate` each,
restarts included); each job is seeded inside itself and runs on one thread (torch, BLAS and OpenMP), so its result
depends only on its inputs, never on where or when it ran. :func:`run_jobs` runs them in
candidate order and stops after the first job whose ``stop`` test passes (an exact formula):

- ``n_jobs=1`` (default): one after the other in this process;
- ``n_jobs=k`` / ``-1``: through :class:`joblib.Parallel` (local processes by default; inside
  ``with joblib.parallel_config(backend="dask"):`` on the workers of a ``dask.distributed``
  cluster). Results arrive in any order; the search keeps the same prefix of candidates the
  sequential loop would have kept (every candidate up to the first exact one), so the chosen
  formula is the same as with ``n_jobs=1`` for a fixed ``random_state``.

Dispatch order (parallel only; it changes when a job runs, never what it returns): the cheap
candidates first, in candidate order (they are the ones likely to end the search early), then the
expensive ones longest first (LPT), so that no long job starts last and leaves the other workers
idle. The cost model (:func:`expected_cost`) counts KAN edges; it only orders jobs. (Measured and
dropped: the decomposition's first shard before the cheap candidates, so that its first surrogate
fit starts at once; the cheap candidates then run one after the other on the other worker, and the
composite's shards wait for them: the equations the composite wins ended 1.7–2.5 s later;
bench/results/symbolic_scale.md, session 10.)

Shards: a candidate listed in :data:`~nnlab.symbolic.search.SHARDS` goes out as K jobs (no more
than the workers that run at once), each
with ``shard=(j, K)`` (the composite's library fits, the decomposition's leaves), handed out one
after the other where the candidate would go; once all K are back, :meth:`CandidateJob.merge`
joins them here, with a job's arithmetic (one thread), in shard order, into the result the unsplit
candidate gives (``n_jobs=1`` runs it unsplit). A job that no longer matters is not merged. Where
the shards share a folder (local processes, a LocalCluster), the last shard to end joins them
itself on its worker (:meth:`CandidateJob._join`: the same arithmetic), so a long join (the final
snap of a decomposition's law, the composite's exact fits) runs beside the other jobs instead of
competing with both workers from this process. The decomposition's shards join together
(:data:`~nnlab.symbolic.search.JOINED_TOGETHER`): one that ends first waits a little for the other
shares (:data:`JOIN_WAIT`) and then splits the join's fits with the shard that joins.

Exchange: the jobs of a candidate listed in :data:`~nnlab.symbolic.search.HELPERS` (its shards,
or, unsharded, the candidate and a helper job handed out right after it, ``helper=True``) share
values through files next to the cancel file (:class:`~nnlab.symbolic.exchange.Exchange`): each
value (a decomposition's surrogate fit) is computed once, by whichever job claims it first, and
taken by the others; a job that starts while another computes the first value computes meanwhile
one that may be needed later (the raw-input surrogate). A value is a pure function of its name, so
the result is the one of ``n_jobs=1`` either way; a helper's own result is dropped. Where the folder
is not shared (a cluster without a common file system) every job computes what it needs itself.
The decomposition's shards also split the independent fits of each leaf and exact-rows test
(:func:`~nnlab.symbolic.exchange.share`, :meth:`~nnlab.symbolic.exchange.Exchange.help`).

Cheap jobs first: the leading jobs cheaper than a worker's round trip (:data:`INLINE_COST`) run in
this process before any job goes to a worker; a law they end starts no worker at all.

A new candidate type plugs in by adding a :class:`Candidate` to the list: nothing here knows
the candidates' kinds.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import torch

from .exchange import Exchange
from .filewatch import FileWatch
from .search import HELPERS, JOINED_TOGETHER, SHARDS, Candidate, CandidateResult, merge_shards, run_candidate

__all__ = ["CandidateJob", "run_jobs", "check_n_jobs", "dask_client", "expected_cost", "dispatch_order"]


def check_n_jobs(n_jobs: Any) -> None:
    """``n_jobs`` must be None or a nonzero int (``-1`` = every core, as in joblib)."""
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a nonzero int (1 = this process, k = k processes, -1 = every core) "
                         f"or None, got {n_jobs!r}")


@dataclass(frozen=True)
class CandidateJob:
    """One candidate with everything it needs (picklable, so it can run in another process).

    ``deadline`` is wall-clock (``time.time()``) so it means the same on every worker; a job that
    starts after it (and is not the first) returns at once with ``note = "skipped: time limit"``.
    """

    index: int
    candidate: Candidate
    data: tuple[Any, Any, Any, Any]  # X_train, y_train, X_val, y_val
    variables: tuple[Any, ...]
    library: Any
    options: tuple[tuple[str, Any], ...]
    deadline: float
    cancel: str | None = None  # a file whose existence tells a running job that it is no longer needed
    shard: tuple[int, int] | None = None  # (j, K): the j-th of the K shares of the candidate's work
    helper: bool = False  # the helper job of a candidate in HELPERS (see the module docstring)

    def __call__(self) -> CandidateResult:
        if self.index > 0 and time.time() > self.deadline:
            return CandidateResult(self.candidate, note="skipped: time limit")
        if self.cancel is not None and os.path.exists(self.cancel):
            return CandidateResult(self.candidate, note="cancelled: not needed")
        exchange = self.exchange()
        if self.helper and (exchange is None or os.path.exists(exchange.declined_path)):
            return CandidateResult(self.candidate, note="helper: not needed")
        extra: dict[str, Any] = {} if exchange is None else {"exchange": exchange}
        if self.helper:
            extra["helper"] = True
        watch = (self.cancel, exchange.declined_path if self.helper and exchange is not None else None)
        try:
            with _one_thread(), _roomy_malloc(), _quiet_profiler(), _Watch(*watch):
                Xtr, ytr, Xva, yva = self.data
                r = run_candidate(self.candidate, Xtr, ytr, Xva, yva, list(self.variables), self.library,
                                  deadline=self._mono(), shard=self.shard, **extra,
                                  **dict(self.options))  # type: ignore[arg-type]
                return self._join(r, exchange)
        except _Cancelled:
            return CandidateResult(self.candidate, note="cancelled: not needed")

    def exchange(self) -> Exchange | None:
        """Where the jobs of this candidate (its shards, or it and its helper) share values (parallel
        runs of :data:`HELPERS` and of shards only): files next to the cancel file, named after the
        job's index."""
        if self.cancel is None or (self.candidate.name not in HELPERS and self.shard is None):
            return None
        return Exchange(os.path.dirname(self.cancel), f"job{self.index}")

    def _join(self, mine: CandidateResult, exchange: Exchange | None) -> CandidateResult:
        """A shard's end: publish its share; the shard that finds every other share published claims the
        join and joins them itself, here on its worker (:meth:`merge`, the arithmetic of the search's own
        process), and returns the candidate's result marked ``joined``. The others, and every shard where
        nothing is shared, return their share for the search to join. A candidate of
        :data:`~nnlab.symbolic.search.JOINED_TOGETHER` splits its join between the shards: a shard that
        ends first waits up to :data:`JOIN_WAIT` of its own run time (at most :data:`JOIN_WAIT_MAX`
        seconds) for the other shares, and, when they come, helps the one that joins (the same result,
        sooner) before it returns its share."""
        if self.shard is None or exchange is None or mine.partial is None:
            return mine
        j, K = self.shard
        if not exchange.post(f"part{j}", mine):
            return mine
        together = self.candidate.name in JOINED_TOGETHER
        wait = min(JOIN_WAIT * (time.monotonic() - exchange.started), JOIN_WAIT_MAX) if together else 0.0
        parts = _shares(exchange, j, K, mine, wait)
        if parts is None:
            return mine  # a later shard joins
        if not exchange.claim("join"):  # the other shard joins (two ended at once, or this one waited)
            if together:
                self.merge(parts, exchange, helping=True)
            return mine
        out = self.merge(parts, exchange if together else None)
        out.joined = True
        return out

    def _mono(self) -> float:
        return time.monotonic() + (self.deadline - time.time())  # a float: candidates add to it

    def shards(self, workers: int | None = None) -> list["CandidateJob"]:
        """The jobs that share this candidate's work (:data:`~nnlab.symbolic.search.SHARDS`), or itself
        and its helper (an unsharded candidate of :data:`~nnlab.symbolic.search.HELPERS`); [self] for most.
        ``workers``: how many jobs run at once; a candidate is split into no more shards than that (at
        least 2): each shard repeats the candidate's setup, so a shard waiting for a worker costs that
        setup again and gains nothing."""
        K = SHARDS.get(self.candidate.name, 1)
        if K > 1 and workers is not None:
            K = max(2, min(K, workers))
        out = [self] if K <= 1 else [replace(self, shard=(j, K)) for j in range(K)]
        if K <= 1 and self.candidate.name in HELPERS and not self.helper:  # (a later shard helps instead)
            out.append(replace(self, helper=True))
        return out

    def merge(self, parts: Sequence[CandidateResult], exchange: Exchange | None = None,
              helping: bool = False) -> CandidateResult:
        """Join the results of :meth:`shards` (in their order) with the arithmetic of a job; ``exchange``,
        ``helping``: shards that join at once (see :meth:`_join`)."""
        if len(parts) == 1 and parts[0].partial is None:
            return parts[0]
        with _one_thread():
            Xtr, ytr, Xva, yva = self.data
            return merge_shards(list(parts), Xtr, ytr, Xva, yva, list(self.variables), self.library,
                                deadline=self._mono(), exchange=exchange, helping=helping, **dict(self.options))


# how long a shard that ends first waits for the other shares of a join it can help with: this share
# of its own run time, at most JOIN_WAIT_MAX seconds (the next job on its worker starts that much later)
JOIN_WAIT, JOIN_WAIT_MAX = 0.5, 2.0


def _shares(exchange: Exchange, j: int, K: int, mine: CandidateResult, wait: float) -> list[CandidateResult] | None:
    """Every shard's share once all are published (waiting up to ``wait`` seconds), else None."""
    end = time.monotonic() + wait
    parts: dict[int, CandidateResult] = {j: mine}
    while True:
        for k in range(K):
            if k not in parts:
                got = exchange.peek(f"part{k}")
                if got is not None:
                    parts[k] = got
        if len(parts) == K:
            return [parts[k] for k in range(K)]
        if time.monotonic() >= end:
            return None
        time.sleep(0.005)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The same arithmetic in this process, a joblib worker or a Dask worker: one torch thread and one
    BLAS/OpenMP thread (BLAS sums in another order with more threads), the torch RNG left as it was."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(), threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


# glibc's mallopt parameters (malloc.h) and the values of its dynamic thresholds' ceiling on 64-bit
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ROOMY = {_M_TRIM_THRESHOLD: 128 * 2 ** 20, _M_MMAP_THRESHOLD: 32 * 2 ** 20}


@contextlib.contextmanager
def _roomy_malloc() -> Iterator[None]:
    """In a process started with ``MALLOC_TRIM_THRESHOLD_`` set (a Dask worker: its nanny sets 64 KiB so
    that freed memory goes back to the system at once), the job runs with glibc's usual room: that
    setting also fixes the mmap threshold at 128 KiB, so every array above it is mapped and unmapped
    anew (page faults and zeroing each time). The search's many mid-sized NumPy arrays made it 24 %
    slower in one process, and its jobs 1.5–2× slower on a 2-worker LocalCluster. The process's own
    settings come back after the job (its freed memory is then returned at the next ``free``).
    Nothing changes elsewhere (no such variable, or not glibc)."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim is not None else None
    if libc is None:
        yield
        return
    for param, value in _ROOMY.items():
        libc.mallopt(param, value)
    try:
        yield
    finally:
        try:
            libc.mallopt(_M_TRIM_THRESHOLD, int(trim))
            libc.mallopt(_M_MMAP_THRESHOLD, int(os.environ.get("MALLOC_MMAP_THRESHOLD_", 128 * 1024)))
        except ValueError:  # a value glibc itself would not have parsed
            pass


# the periodic callbacks of a Dask worker's statistical profiler (distributed.worker.profile)
_PROFILER = ("profile", "profile-cycle")


@contextlib.contextmanager
def _quiet_profiler() -> Iterator[None]:
    """On a Dask worker, its statistical profiler (the dashboard's profile: every 10 ms the worker's event
    loop takes the interpreter lock and walks every thread's stack) pauses while the job runs and
    resumes after it: it took 3.5 % of the search's time on a 2-worker LocalCluster. Elsewhere nothing
    changes."""
    worker = _dask_worker()
    callbacks = getattr(worker, "periodic_callbacks", None) or {}
    paused = [pc for name, pc in callbacks.items() if name in _PROFILER and pc.is_running()]
    for pc in paused:
        worker.loop.add_callback(pc.stop)  # (the worker's loop runs in another thread: thread-safe)
    try:
        yield
    finally:
        for pc in paused:
            worker.loop.add_callback(pc.start)


def _dask_worker() -> Any:
    """The Dask worker this job runs on, or None (not on a worker, or no dask.distributed)."""
    import sys

    if "distributed" not in sys.modules:  # a process that never imported it is no Dask worker
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")  # glibc's soname; elsewhere (musl, macOS, Windows) nothing to undo
    except OSError:
        return None


class _Cancelled(BaseException):
    """The search no longer needs this job (a BaseException, so the candidates' ``except Exception``
    and numeric-error handlers let it through)."""


class _Watch:
    """While a job runs, a thread watches the ``cancel`` file and, once it exists, raises
    :class:`_Cancelled` in the job's thread (``PyThreadState_SetAsyncExc``; delivered at the next
    Python bytecode, so within milliseconds). Without it a job no longer needed would run on until
    its next deadline check (polish and snap make none), and the search would wait for it.
    The thread sleeps until a file appears in the cancel file's folder
    (:class:`~nnlab.symbolic.filewatch.FileWatch`: inotify); where that is not available it looks
    every ``every`` seconds (each look takes the interpreter lock from the job: 3–10 % of the time of a
    job alone in its process at 20 ms). A cancel file whose folder is not on this machine (a cluster
    without the search's file system) can never appear: it is not watched. ``__exit__`` clears an exception raised but not yet delivered, so none escapes the job.
    It never fires inside an ``import`` (the module would stay half-initialised in ``sys.modules``:
    once, ``triton.language`` without ``core``, and every later job of that worker failed)."""

    def __init__(self, *cancel: str | None, every: float = 0.02) -> None:
        # any of them ends the job; one whose folder is not here never appears
        self.files = [c for c in cancel if c is not None and os.path.isdir(os.path.dirname(c) or ".")]
        self.cancel = self.files or None
        self.every = every
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.fired = False

    def __enter__(self) -> "_Watch":
        if self.cancel is not None:
            self.tid = threading.get_ident()
            self.notify = FileWatch(os.path.dirname(c) or "." for c in self.files)
            self.thread = threading.Thread(target=self._watch, daemon=True, name="nnlab-cancel-watch")
            self.thread.start()
        return self

    def due(self) -> bool:
        """Whether a cancel file exists."""
        return any(os.path.exists(c) for c in self.files)

    def _watch(self) -> None:
        timeout = None if self.notify.ready else self.every  # None: sleep until a file appears
        while True:
            if self.due():
                with self.lock:
                    if self.done.is_set():
                        return
                    if not _importing(self.tid):  # an import cut short leaves a half-built module
                        self.fired = True  # behind (the next job in this worker would fail on it)
                        _async_raise(self.tid, _Cancelled)
                        return
                timeout = self.every  # inside an import: look again soon, until it ends
            if self.notify.ready:
                self.notify.wait(timeout)
                if self.done.is_set():
                    return
            elif self.done.wait(timeout):
                return

    def __exit__(self, *exc: Any) -> None:
        if self.cancel is None:
            return
        with self.lock:
            self.done.set()
            if self.fired:
                _async_raise(self.tid, None)  # clear it if it is still pending
        self.notify.close()
        self.thread.join()
        self.notify.release()


def _importing(tid: int) -> bool:
    """Whether the thread ``tid`` is inside an ``import`` (a frame of importlib's bootstrap on its stack)."""
    import sys

    frame = sys._current_frames().get(tid)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _async_raise(tid: int, exc: type[BaseException] | None) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc) if exc else None)


# relative cost per KAN edge (or per feature) of candidates that are not plain KANs, measured on the
# Feynman bench: a closed-form least squares (monomial) and the composite's fits cost next to nothing;
# the decomposition trains a surrogate and sub-searches, a little longer than a deep KAN (so, dispatched
# first among the expensive ones, the default search keeps its candidate order)
_COST_PER_FEATURE = {"monomial": 0.01, "composite": 0.2, "decompose": 8.0}


def expected_cost(candidate: Candidate, n_features: int) -> float:
    """Rough relative run time of ``candidate`` on ``n_features`` columns (only orders the jobs):
    the number of KAN edges, ``n`` for an additive ``[n, 1]`` KAN, ``n·h₁ + h₁·h₂ + … + h_L`` for a
    deeper one; candidates of their own kind by :data:`_COST_PER_FEATURE` × n."""
    n = max(int(n_features), 1)
    if candidate.name in _COST_PER_FEATURE:
        return _COST_PER_FEATURE[candidate.name] * n
    widths = [n, *candidate.hidden, 1]
    return float(sum(a * b for a, b in zip(widths, widths[1:])))


def dispatch_order(jobs: Sequence[Any]) -> list[int]:
    """Positions of ``jobs`` in the order a parallel run hands them out: cheap jobs (at most the cost
    of an additive KAN) in their own order, then the others by decreasing :func:`expected_cost`
    (ties in their own order). Jobs without ``data`` (test doubles) keep their order."""
    costs = []
    for job in jobs:
        data = getattr(job, "data", None)
        if data is None:
            return list(range(len(jobs)))
        n = int(getattr(data[0], "shape", (0, 1))[1])
        costs.append((expected_cost(job.candidate, n), n))
    cheap = [i for i, (c, n) in enumerate(costs) if c <= n]
    dear = sorted((i for i, (c, n) in enumerate(costs) if c > n), key=lambda i: (-costs[i][0], i))
    return cheap + dear


def _call(pos: int, j: int, job: CandidateJob) -> tuple[int, int, CandidateResult]:
    return pos, j, job()


def run_jobs(jobs: Sequence[CandidateJob], n_jobs: int | None = 1,
             stop: Callable[[CandidateResult], bool] = lambda r: False,
             on_start: Callable[[CandidateJob], None] | None = None,
             on_end: Callable[[CandidateJob, CandidateResult], None] | None = None) -> list[CandidateResult]:
    """Run ``jobs`` (in index order) and return the results of the prefix the sequential loop keeps:
    every job up to and including the first whose result passes ``stop``.

    ``on_start`` / ``on_end`` report progress (with ``n_jobs != 1`` a job "starts" when it is handed
    to joblib). ``n_jobs`` as in joblib (None: 1, unless a ``joblib.parallel_config`` says otherwise).
    """
    check_n_jobs(n_jobs)
    jobs = list(jobs)
    if not jobs:
        return []
    if _sequential(n_jobs):
        return _run_here(jobs, len(jobs), stop, on_start, on_end)
    # the leading jobs cheaper than handing them to a worker run here first (a law they end needs no
    # worker, and no pool is started for it); the rest go to the workers
    inline = 0
    while inline < len(jobs) and _cheaper_here(jobs[inline]):
        inline += 1
    first = _run_here(jobs, inline, stop, on_start, on_end)
    if len(first) < inline or (first and stop(first[-1])) or inline == len(jobs):
        return first
    from joblib import Parallel, delayed, effective_n_jobs

    done: dict[int, CandidateResult] = dict(enumerate(first))
    if on_start:
        for job in jobs[inline:]:
            on_start(job)
    enough = threading.Event()
    tmp = tempfile.mkdtemp(prefix="nnlab-search-")
    cancel = os.path.join(tmp, "enough")
    jobs = [replace(job, cancel=cancel) for job in jobs]

    # a candidate whose work splits (search.SHARDS) goes out as its shards, one after the other, and
    # is merged here once all have come back (with a job's arithmetic: the same result as unsplit);
    # a helper job (search.HELPERS) goes out right after its candidate, and its result is dropped
    workers = effective_n_jobs(n_jobs)
    shards = [job.shards(workers) if hasattr(job, "shards") else [job] for job in jobs]
    needed = [sum(not getattr(p, "helper", False) for p in s) for s in shards]
    parts: dict[int, dict[int, CandidateResult]] = {}

    def tasks():  # joblib pulls the next job when a worker frees; none once the kept prefix is known
        for pos in dispatch_order(jobs):
            if pos in done:
                continue
            for j, part in enumerate(shards[pos]):
                if enough.is_set():
                    return
                yield delayed(_call)(pos, j, part)

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")
    end = None
    # Once the kept prefix is known, no new job starts and the running ones (at most n_jobs - 1) see
    # the cancel file within milliseconds (_Watch) and return; they are waited for, because closing
    # joblib's generator would kill its worker processes (the next search would restart them).
    try:
        for i, j, r in par(tasks()):
            if getattr(shards[i][j], "helper", False) or i in done:  # (a shard already joined the candidate)
                continue
            got = parts.setdefault(i, {})
            got[j] = r
            joined = getattr(r, "joined", False)  # the last shard to end joined every shard on its worker
            if len(got) < needed[i] and not joined:
                continue
            if end is not None:  # not needed any more: not worth a merge
                done[i] = CandidateResult(jobs[i].candidate, note="cancelled: not needed")
                continue
            done[i] = r if joined or len(got) == 1 else jobs[i].merge([got[k] for k in range(len(got))])
            if end is None:
                if on_end:
                    on_end(jobs[i], done[i])
                end = _prefix_end(done, len(jobs), stop)
                if end is not None:
                    enough.set()
                    open(cancel, "w").close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if end is None:
        end = _prefix_end(done, len(jobs), stop) or len(done)
    return [done[k] for k in range(end)]


def _run_here(jobs: Sequence[CandidateJob], n: int, stop: Callable[[CandidateResult], bool],
              on_start: Callable[[CandidateJob], None] | None,
              on_end: Callable[[CandidateJob, CandidateResult], None] | None) -> list[CandidateResult]:
    """The first ``n`` jobs one after the other in this process, up to the first that passes ``stop``."""
    out = []
    for job in jobs[:n]:
        if on_start:
            on_start(job)
        r = job()
        if on_end:
            on_end(job, r)
        out.append(r)
        if stop(r):
            break
    return out


# a job whose expected cost (in KAN edges) is at most this share of an additive KAN's (one edge per
# feature) costs less than handing it to a worker and back: a closed form by least squares (monomial)
INLINE_COST = 0.05


def _cheaper_here(job: Any) -> bool:
    """Whether ``job`` is cheaper to run in this process than in a worker (see :data:`INLINE_COST`);
    jobs without data (test doubles) go to the workers."""
    data = getattr(job, "data", None)
    if data is None or getattr(job, "shard", None) is not None:
        return False
    n = int(getattr(data[0], "shape", (0, 1))[1])
    return expected_cost(job.candidate, n) <= INLINE_COST * max(n, 1)


def _prefix_end(done: dict[int, CandidateResult], n: int, stop: Callable[[CandidateResult], bool]) -> int | None:
    """Length of the kept prefix once it is known (all of 0..j done, j the first stop), else None."""
    for k in range(n):
        if k not in done:
            return None
        if stop(done[k]):
            return k + 1
    return n


def _sequential(n_jobs: int | None) -> bool:
    if n_jobs is None:
        return not _backend_configured()
    return n_jobs == 1


def _backend_configured() -> bool:
    """True inside ``joblib.parallel_config(backend=...)`` (e.g. the Dask backend)."""
    try:
        from joblib.parallel import _get_active_backend

        backend, _ = _get_active_backend()
        return type(backend).__name__ not in ("LokyBackend", "SequentialBackend")
    except ImportError:  # pragma: no cover - private API moved
        return False


@contextlib.contextmanager
def dask_client(address: str, timeout: float = 5.0) -> Iterator[Any]:
    """Connect to the Dask scheduler at ``address`` (e.g. ``tcp://host:8786``) and run joblib work on
    its workers inside the ``with`` block (``joblib.parallel_config(backend="dask")``).

    An unreachable address raises ``ValueError`` after ``timeout`` seconds; a missing
    ``dask.distributed`` raises ``ValueError`` naming the extra to install (``nnlab[dask]``).
    """
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("a Dask scheduler needs dask.distributed: pip install 'nnlab[dask]'") from None
    import joblib

    try:
        client = Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError, ValueError) as e:
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({why}); "
                         "start one (dask scheduler) or check the address") from None
    try:
        with joblib.parallel_config(backend="dask"):
            yield client
    finally:
        client.close()
