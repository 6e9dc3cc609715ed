"""The playground's HTTP API and page: :func:`create_app` returns a FastAPI app.

Routes (JSON unless said otherwise; every error is ``{"detail": "<message>"}``):

* ``GET /`` — the page; ``/static/*`` its script and style (shipped in the package).
* ``GET /api/options`` — the choices and limits the page offers.
* ``POST /api/sessions`` (body: setup as in :class:`PlaygroundConfig`) → 201 ``{id, status, config,
  query}``; 422 for a bad setup, 429 when ``max_sessions`` are running.
* ``GET /api/sessions/{id}``, ``/state``, ``/data``; ``POST .../play``, ``.../pause``,
  ``.../step?n=1``, ``.../reset`` (optional body: a new setup), ``.../formula``;
  ``DELETE /api/sessions/{id}`` or ``POST .../close`` (for ``navigator.sendBeacon``).
* ``GET /api/sessions/{id}/events`` — server-sent events: ``data`` (the points, after each
  reset) and ``state`` (losses, gradient norms, surface, neurons / KAN edges) a few times a second.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from importlib import resources
from typing import Any

import torch
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from nnlab.playground import formula as formula_mod
from nnlab.playground.config import (CLIPS, LIMITS, MAX_PARAMS, MODELS, OPTIMIZERS,
                                     REGULARIZERS, PlaygroundConfig, activation_names,
                                     init_names, parse_config)
from nnlab.playground.datasets import CLASSIFICATION, REGRESSION, io_dims, target_formula
from nnlab.playground.sessions import SessionManager, TooManySessions, UnknownSession

__all__ = ["create_app", "static_dir"]

MAX_STEP = 100
log = logging.getLogger(__name__)


def static_dir() -> str:
    """Folder of the page's files (package data ``nnlab/playground/static``)."""
    return str(resources.files("nnlab.playground") / "static")


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


def _warm_up() -> None:
    """Build and step one tiny model so the first tab does not wait for one-time imports
    (the first torch optimizer imports torch._dynamo: seconds on a busy machine)."""
    from nnlab.playground.trainer import Trainer

    Trainer(parse_config({"n_samples": 50, "batch_size": 50, "dataset": "sine_1d"})).step()
    formula_mod.available()


def create_app(manager: SessionManager | None = None, sweep_interval: float = 5.0,
               torch_threads: int | None = 1, warm_up: bool = True) -> FastAPI:
    """A FastAPI app serving the playground.

    ``manager`` bounds and drives the sessions (default ``SessionManager()``: 8 sessions);
    ``sweep_interval`` is how often orphaned/idle sessions are closed; ``torch_threads``, when
    not None, is applied with ``torch.set_num_threads`` as the server starts (the playground's
    models are tiny: one intra-op thread per training task avoids oversubscribing the CPU,
    which made small steps ~40x slower on a busy 2-core machine); ``warm_up`` does the
    one-time imports in a background thread as the server starts.
    """
    mgr = manager or SessionManager()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        threads = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)

        async def sweeper():
            while True:
                await asyncio.sleep(sweep_interval)
                await mgr.sweep()

        task = asyncio.create_task(sweeper())
        warm = asyncio.create_task(asyncio.to_thread(_warm_up)) if warm_up else None
        try:
            yield
        finally:
            task.cancel()
            if warm is not None:
                await asyncio.gather(warm, return_exceptions=True)
            await mgr.close_all()
            torch.set_num_threads(threads)

    # no Swagger/ReDoc pages: they load scripts from a CDN, and the playground stays offline;
    # the schema is at /openapi.json
    app = FastAPI(title="nnlab playground", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.manager = mgr
    discovering: set[str] = set()  # sessions whose formula is being computed (one at a time)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where or 'request'}: {err.get('msg')}")
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("playground: unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc}); the "
                                       "server keeps running — press reset or reload"},
                            status_code=500)

    def session(sid: str):
        try:
            return mgr.get(sid)
        except UnknownSession as e:
            raise HTTPException(404, e.args[0]) from None

    async def control(coro):
        try:
            return (await coro).summary()
        except UnknownSession as e:
            raise HTTPException(404, e.args[0]) from None
        except ValueError as e:
            raise HTTPException(409, str(e)) from None

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(f"{static_dir()}/index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/api/options")
    async def options():
        return {"datasets": {"classification": list(CLASSIFICATION),
                             "regression": [{"name": n, "dim": io_dims(n)[0],
                                             "formula": target_formula(n)} for n in REGRESSION]},
                "models": list(MODELS), "activations": activation_names(), "inits": init_names(),
                "optimizers": list(OPTIMIZERS), "regularizers": list(REGULARIZERS),
                "clips": list(CLIPS), "limits": {k: list(v) for k, v in LIMITS.items()},
                "max_params": MAX_PARAMS, "defaults": PlaygroundConfig().as_dict(),
                "max_sessions": mgr.max_sessions, "formula_available": formula_mod.available()}

    @app.post("/api/sessions", status_code=201)
    async def create(values: Any = Body(None)):
        cfg = _config(values)
        try:
            s = await mgr.create(cfg)
        except TooManySessions as e:
            raise HTTPException(429, str(e)) from None
        except ValueError as e:
            raise HTTPException(422, f"the library rejected this setup: {e}") from None
        return s.summary()

    @app.get("/api/sessions/{sid}")
    async def get(sid: str):
        return session(sid).summary()

    @app.get("/api/sessions/{sid}/state")
    async def state(sid: str):
        return session(sid).message()

    @app.get("/api/sessions/{sid}/data")
    async def data(sid: str):
        return session(sid).data

    @app.post("/api/sessions/{sid}/play")
    async def play(sid: str):
        return await control(mgr.play(sid))

    @app.post("/api/sessions/{sid}/pause")
    async def pause(sid: str):
        return await control(mgr.pause(sid))

    @app.post("/api/sessions/{sid}/step")
    async def step(sid: str, n: int = Query(1, ge=1, le=MAX_STEP)):
        return await control(mgr.step(sid, n))

    @app.post("/api/sessions/{sid}/reset")
    async def reset(sid: str, values: Any = Body(None)):
        cfg = _config(values) if values is not None else None
        return await control(mgr.reset(sid, cfg))

    @app.post("/api/sessions/{sid}/formula")
    async def formula(sid: str):
        s = session(sid)
        if s.cfg.model != "kan" or s.cfg.task != "regression":
            raise HTTPException(409, "discovering a formula needs a KAN trained on a regression "
                                     f"data set (this session: {s.cfg.model} on {s.cfg.dataset})")
        if not formula_mod.available():
            raise HTTPException(501, formula_mod.UNAVAILABLE)
        if sid in discovering:
            raise HTTPException(409, "a formula is already being discovered for this session")
        discovering.add(sid)
        try:
            return await asyncio.to_thread(formula_mod.discover, s)
        except ValueError as e:
            raise HTTPException(422, f"the symbolic pipeline failed: {e}") from None
        finally:
            discovering.discard(sid)

    @app.api_route("/api/sessions/{sid}", methods=["DELETE"])
    async def delete(sid: str):
        if not await mgr.close(sid):
            raise HTTPException(404, f"no session {sid!r}")
        return {"closed": sid}

    @app.post("/api/sessions/{sid}/close")
    async def close(sid: str):
        return {"closed": sid if await mgr.close(sid) else None}

    @app.get("/api/sessions/{sid}/events")
    async def events(sid: str, limit: int | None = Query(None, ge=1)):
        session(sid)

        async def gen():
            async for msg in mgr.stream(sid, limit=limit):
                if msg is None:
                    yield ": keep-alive\n\n"
                else:
                    yield f"event: {msg['type']}\ndata: {json.dumps(msg)}\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app
