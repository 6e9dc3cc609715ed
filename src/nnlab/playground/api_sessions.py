"""The session routes of the playground API: create, read, control, discover a formula, close.

Each route finds the :class:`~nnlab.playground.sessions.SessionManager` on ``request.app.state``;
errors are ``{"detail": "<message>"}`` with 404 (no such session), 409 (not possible in this
state), 422 (bad setup), 429 (too many sessions) or 501 (formula extra missing).
"""
from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Query, Request

from nnlab.playground import formula as formula_mod
from nnlab.playground.config import PlaygroundConfig, parse_config
from nnlab.playground.sessions import Session, SessionManager, TooManySessions, UnknownSession

__all__ = ["router", "MAX_STEP", "manager", "session"]

MAX_STEP = 100
router = APIRouter(prefix="/api/sessions")


def manager(request: Request) -> SessionManager:
    return request.app.state.manager


def session(request: Request, sid: str) -> Session:
    try:
        return manager(request).get(sid)
    except UnknownSession as e:
        raise HTTPException(404, e.args[0]) from None


def _config(values: Any) -> PlaygroundConfig:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise HTTPException(422, f"the setup must be a JSON object of settings, got "
                                 f"{type(values).__name__}")
    try:
        return parse_config(values)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


async def _control(coro) -> dict:
    try:
        return (await coro).summary()
    except UnknownSession as e:
        raise HTTPException(404, e.args[0]) from None
    except ValueError as e:
        raise HTTPException(409, str(e)) from None


@router.post("", status_code=201)
async def create(request: Request, values: Any = Body(None)):
    cfg = _config(values)
    try:
        s = await manager(request).create(cfg)
    except TooManySessions as e:
        raise HTTPException(429, str(e)) from None
    except ValueError as e:
        raise HTTPException(422, f"the library rejected this setup: {e}") from None
    return s.summary()


@router.get("/{sid}")
async def get(request: Request, sid: str):
    return session(request, sid).summary()


@router.get("/{sid}/state")
async def state(request: Request, sid: str):
    return session(request, sid).message()


@router.get("/{sid}/data")
async def data(request: Request, sid: str):
    return session(request, sid).data


@router.post("/{sid}/play")
async def play(request: Request, sid: str):
    return await _control(manager(request).play(sid))


@router.post("/{sid}/pause")
async def pause(request: Request, sid: str):
    return await _control(manager(request).pause(sid))


@router.post("/{sid}/step")
async def step(request: Request, sid: str, n: int = Query(1, ge=1, le=MAX_STEP)):
    return await _control(manager(request).step(sid, n))


@router.post("/{sid}/reset")
async def reset(request: Request, sid: str, values: Any = Body(None)):
    cfg = _config(values) if values is not None else None
    return await _control(manager(request).reset(sid, cfg))


@router.post("/{sid}/formula")
async def formula(request: Request, sid: str):
    s = session(request, sid)
    if s.cfg.model != "kan" or s.cfg.task != "regression":
        raise HTTPException(409, "discovering a formula needs a KAN trained on a regression "
                                 f"data set (this session: {s.cfg.model} on {s.cfg.dataset})")
    if not formula_mod.available():
        raise HTTPException(501, formula_mod.UNAVAILABLE)
    discovering: set[str] = request.app.state.discovering
    if sid in discovering:
        raise HTTPException(409, "a formula is already being discovered for this session")
    discovering.add(sid)
    try:
        async with manager(request).compute_slot():  # counted with the training slices
            return await asyncio.to_thread(formula_mod.discover, s)
    except ValueError as e:
        raise HTTPException(422, f"the symbolic pipeline failed: {e}") from None
    finally:
        discovering.discard(sid)


@router.delete("/{sid}")
async def delete(request: Request, sid: str):
    if not await manager(request).close(sid):
        raise HTTPException(404, f"no session {sid!r}")
    return {"closed": sid}


@router.post("/{sid}/close")
async def close(request: Request, sid: str):
    return {"closed": sid if await manager(request).close(sid) else None}
