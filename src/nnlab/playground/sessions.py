"""Playground sessions: one per browser tab, each with its own model and background training task.

A :class:`SessionManager` protects the machine: at most ``max_sessions`` sessions (each model is
already bounded by :data:`nnlab.playground.config.MAX_PARAMS`), a session is paused after
``max_epochs`` epochs, and :meth:`SessionManager.sweep` closes sessions whose tab went away
(no open event stream and no request for ``orphan_timeout`` seconds) or that were left idle
(not playing and no request for ``idle_timeout`` seconds, even with the tab open; the page
then starts a fresh session by itself).

Training runs in a worker thread (``asyncio.to_thread``) in time slices of ``chunk_seconds``
(minibatch by minibatch, :meth:`Trainer.advance`), under the session's lock, so requests stay
responsive: a pause or a delete is seen before the next minibatch, even for the largest model.
At most ``compute_slots`` slices run at once over all sessions (an asyncio semaphore, taken
per slice, so sessions share the CPU in turns and a new tab is never stuck behind heavy ones).
A snapshot is published at most ``rate`` times a second and waiting event streams are woken.
A session that fails because of its setup (divergence, a bad value) is logged as one line.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from nnlab.playground.config import PlaygroundConfig
from nnlab.playground.snapshot import data_view, state_view
from nnlab.playground.trainer import DivergedError, Trainer

__all__ = ["Session", "SessionManager", "TooManySessions", "UnknownSession"]

log = logging.getLogger(__name__)


class TooManySessions(RuntimeError):
    """The server already runs ``max_sessions`` sessions."""


class UnknownSession(KeyError):
    """No session with that id (closed, expired, or never created)."""


@dataclass(eq=False)
class Session:
    """One tab's state. ``status`` is ``"paused"``, ``"playing"`` or ``"error"`` (then ``error``
    holds the message; :meth:`SessionManager.reset` clears it)."""

    id: str
    cfg: PlaygroundConfig
    trainer: Trainer
    status: str = "paused"
    error: str | None = None
    version: int = 0
    state: dict | None = None
    data: dict | None = None
    data_version: int = 0
    published_batches: int = -1  # trainer.batches when the last snapshot was taken
    subscribers: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    updated: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "error": self.error,
                "epoch": self.trainer.epoch, "config": self.cfg.as_dict(),
                "query": self.cfg.as_query()}

    def message(self) -> dict[str, Any]:
        """The latest state view with the session's status (what the event stream sends)."""
        return {**(self.state or {}), "status": self.status, "error": self.error,
                "data_version": self.data_version}


class SessionManager:
    """Creates, drives and frees playground sessions (see the module docstring for the limits)."""

    def __init__(self, max_sessions: int = 8, idle_timeout: float = 900.0,
                 orphan_timeout: float = 30.0, max_epochs: int = 5000, rate: float = 5.0,
                 chunk_seconds: float = 0.1, compute_slots: int = 2):
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.orphan_timeout = orphan_timeout
        self.max_epochs = max_epochs
        self.rate = rate
        self.chunk_seconds = chunk_seconds
        self.compute_slots = max(1, int(compute_slots))
        self._compute: asyncio.Semaphore | None = None  # made in the running loop, on first use
        self.sessions: dict[str, Session] = {}

    # -- lifecycle -------------------------------------------------------------------------
    async def create(self, cfg: PlaygroundConfig) -> Session:
        """Build the model and data for ``cfg`` and start the session's background task.

        Raises :class:`TooManySessions`, or ``ValueError`` if the library rejects the setup.
        """
        if len(self.sessions) >= self.max_sessions:
            raise TooManySessions(f"the playground already runs {self.max_sessions} sessions (its "
                                  "limit); close another tab or try again in a minute")
        trainer = await asyncio.to_thread(Trainer, cfg)
        if len(self.sessions) >= self.max_sessions:  # filled up while we were building
            raise TooManySessions(f"the playground already runs {self.max_sessions} sessions")
        s = Session(id=secrets.token_urlsafe(9), cfg=cfg, trainer=trainer)
        self.sessions[s.id] = s  # counted before the next await: concurrent creates see it
        s.task = asyncio.create_task(self._run(s), name=f"playground-{s.id}")
        await self._publish(s, new_data=True)
        return s

    def get(self, sid: str) -> Session:
        """The session ``sid`` (and mark it seen); raises :class:`UnknownSession`."""
        s = self.sessions.get(sid)
        if s is None:
            raise UnknownSession(f"no session {sid!r}: it was closed or expired; reload the page "
                                 "or press reset")
        s.last_seen = time.monotonic()
        return s

    async def close(self, sid: str) -> bool:
        """Stop and forget session ``sid``; False if it did not exist."""
        s = self.sessions.pop(sid, None)
        if s is None:
            return False
        s.status = "closed"
        if s.task is not None:
            s.task.cancel()
            try:
                await s.task
            except asyncio.CancelledError:
                pass
        s.updated.set()
        return True

    async def close_all(self) -> None:
        for sid in list(self.sessions):
            await self.close(sid)

    async def sweep(self) -> list[str]:
        """Close orphaned and idle sessions; returns the closed ids."""
        now = time.monotonic()
        dead = [s.id for s in self.sessions.values()
                if (s.subscribers == 0 and now - s.last_seen > self.orphan_timeout)
                or (s.status != "playing" and now - s.last_seen > self.idle_timeout)]
        for sid in dead:
            await self.close(sid)
        return dead

    # -- controls --------------------------------------------------------------------------
    async def play(self, sid: str) -> Session:
        s = self.get(sid)
        if s.status == "error":
            raise ValueError(f"session is in error ({s.error}); press reset first")
        if s.trainer.epoch >= self.max_epochs:
            raise ValueError(f"this session reached the playground's limit of {self.max_epochs} "
                             "epochs; press reset to train again")
        s.status = "playing"
        s.wake.set()
        return s

    async def pause(self, sid: str) -> Session:
        s = self.get(sid)
        if s.status == "playing":
            s.status = "paused"
        await self._publish(s)
        return s

    async def step(self, sid: str, n: int = 1) -> Session:
        """Pause, then train ``n`` epochs now (in time slices) and publish the new state."""
        s = self.get(sid)
        if s.status == "error":
            raise ValueError(f"session is in error ({s.error}); press reset first")
        s.status = "paused"
        left = n
        while left > 0 and s.status != "closed":
            done = await self._guarded(s, self._slice, s, left)
            if done is None:
                break
            left -= done
        if s.status != "closed":
            await self._publish(s)
        return s

    async def reset(self, sid: str, cfg: PlaygroundConfig | None = None) -> Session:
        """Rebuild the model (with ``cfg`` if given, else the current setup) from epoch 0."""
        s = self.get(sid)
        cfg = cfg or s.cfg
        trainer = await asyncio.to_thread(Trainer, cfg)
        with s.lock:
            s.trainer, s.cfg = trainer, cfg
        s.status, s.error = "paused", None
        await self._publish(s, new_data=True)
        return s

    # -- work ------------------------------------------------------------------------------
    def _slice(self, s: Session, n: int | None) -> int:
        """Worker thread: train for about ``chunk_seconds``, at most ``n`` epochs (n=None: while
        playing, up to ``max_epochs``); stops before the next minibatch once the session is paused
        or closed. Returns the number of epochs that ended."""
        with s.lock:
            tr = s.trainer
            if n is None:
                limit = self.max_epochs - tr.epoch
                if limit <= 0:
                    s.status = "paused"
                    return 0
                done = tr.advance(self.chunk_seconds, max_epochs=limit,
                                  stop=lambda: s.status != "playing")
                if tr.epoch >= self.max_epochs:
                    s.status = "paused"
                return done
            return tr.advance(self.chunk_seconds, max_epochs=n, stop=lambda: s.status == "closed")

    def _views(self, s: Session, new_data: bool) -> tuple[dict, dict | None]:
        with s.lock:
            s.published_batches = s.trainer.batches
            return state_view(s.trainer), (data_view(s.trainer) if new_data else None)

    def compute_slot(self) -> asyncio.Semaphore:
        """The semaphore bounding the compute of all sessions (training slices, formula search)."""
        if self._compute is None:
            self._compute = asyncio.Semaphore(self.compute_slots)
        return self._compute

    async def _guarded(self, s: Session, fn, *args) -> Any:
        """Run ``fn`` in a thread, holding one of the ``compute_slots``; returns its result, or
        None after a failure, which puts the session in error (reported, resettable)."""
        try:
            async with self.compute_slot():
                if s.status == "closed":
                    return None
                return await asyncio.to_thread(fn, *args)
        except Exception as e:  # any failure of the user's setup must not kill the server
            if isinstance(e, (DivergedError, ValueError)):  # the setup's fault: one line
                log.warning("playground session %s stopped: %s", s.id, e)
            else:
                log.warning("playground session %s failed: %s", s.id, e, exc_info=True)
            if s.status != "closed":
                s.status, s.error = "error", f"{type(e).__name__}: {e}"
            s.updated.set()
            s.updated = asyncio.Event()
            return None

    async def _publish(self, s: Session, new_data: bool = False) -> None:
        try:
            state, data = await asyncio.to_thread(self._views, s, new_data)
        except Exception as e:  # a failing view is reported like a failing step
            log.warning("playground session %s snapshot failed: %s", s.id, e, exc_info=True)
            s.status, s.error = "error", f"{type(e).__name__}: {e}"
        else:
            s.state = state
            if data is not None:
                s.data, s.data_version = data, s.data_version + 1
        s.version += 1
        s.updated.set()
        s.updated = asyncio.Event()

    async def _run(self, s: Session) -> None:
        """The session's background task: trains while playing, publishing ≤ ``rate`` Hz (and
        less often when a snapshot is slow, so training keeps ≥ ~80% of the time)."""
        while True:
            await s.wake.wait()
            s.wake.clear()
            last, cost = 0.0, 0.0
            while s.status == "playing":
                if await self._guarded(s, self._slice, s, None) is None:
                    break
                # at most `rate` snapshots a second, and at most ~20% of the time on them
                if time.monotonic() - last >= max(1.0 / self.rate, 4 * cost):
                    t0 = time.monotonic()
                    await self._publish(s)
                    last = time.monotonic()
                    cost = last - t0
                await asyncio.sleep(0)
            # the final state, unless a pause already published it (one redraw, not two)
            if s.status != "closed" and (s.status == "error" or s.trainer.batches != s.published_batches):
                await self._publish(s)

    async def stream(self, sid: str, limit: int | None = None,
                     keepalive: float = 15.0) -> AsyncIterator[dict | None]:
        """Yield the session's messages as they change (``None`` = keep-alive tick), counting the
        caller as a subscriber so the tab's session stays alive while the stream is open."""
        s = self.get(sid)
        s.subscribers += 1
        try:
            last_version, last_data, sent = -1, 0, 0
            while s.status != "closed" and (limit is None or sent < limit):
                if s.version != last_version:
                    last_version = s.version
                    if s.data_version != last_data:
                        last_data = s.data_version
                        yield {"type": "data", **(s.data or {})}
                    yield {"type": "state", **s.message()}
                    sent += 1
                    continue
                ev = s.updated
                try:
                    await asyncio.wait_for(ev.wait(), keepalive)
                except asyncio.TimeoutError:
                    yield None
        finally:
            s.subscribers -= 1
            s.last_seen = time.monotonic()
