"""The playground's live updates: ``GET /api/sessions/{id}/events``, server-sent events.

A ``data`` event (the points) after each reset, then ``state`` events (losses, gradient norms,
surface, neurons / KAN edges) as the session changes, and ``: keep-alive`` comments meanwhile.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from nnlab.playground.api_sessions import manager, session

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions")


@router.get("/{sid}/events")
async def events(request: Request, sid: str, limit: int | None = Query(None, ge=1)):
    session(request, sid)
    mgr = manager(request)

    async def gen():
        async for msg in mgr.stream(sid, limit=limit):
            if msg is None:
                yield ": keep-alive\n\n"
            else:
                yield f"event: {msg['type']}\ndata: {json.dumps(msg)}\n\n"

    return StreamingResponse(gen(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
