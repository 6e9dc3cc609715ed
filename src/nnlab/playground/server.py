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

The routes live by concern in :mod:`~nnlab.playground.api_sessions` and
:mod:`~nnlab.playground.api_stream`; :class:`~nnlab.playground.security.LocalOnly` guards them all
(Host allowlist, same-origin state changes, request size limit).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources
from typing import Iterable

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from nnlab.playground import api_sessions, api_stream
from nnlab.playground import formula as formula_mod
from nnlab.playground.config import (CLIPS, LIMITS, MAX_PARAMS, MODELS, OPTIMIZERS,
                                     REGULARIZERS, PlaygroundConfig, activation_names,
                                     init_names, parse_config)
from nnlab.playground.datasets import CLASSIFICATION, REGRESSION, io_dims, target_formula
from nnlab.playground.security import MAX_BODY, LocalOnly
from nnlab.playground.sessions import SessionManager

__all__ = ["create_app", "static_dir"]

MAX_STEP = api_sessions.MAX_STEP
log = logging.getLogger(__name__)


def static_dir() -> str:
    """Folder of the page's files (package data ``nnlab/playground/static``)."""
    return str(resources.files("nnlab.playground") / "static")


def _warm_up() -> None:
    """Build and step one tiny model so the first tab does not wait for one-time imports
    (the first torch optimizer imports torch._dynamo: seconds on a busy machine)."""
    from nnlab.playground.trainer import Trainer

    Trainer(parse_config({"n_samples": 50, "batch_size": 50, "dataset": "sine_1d"})).step()
    formula_mod.available()


def create_app(manager: SessionManager | None = None, sweep_interval: float = 5.0,
               torch_threads: int | None = 1, warm_up: bool = True, hosts: Iterable[str] = (),
               max_body: int = MAX_BODY) -> FastAPI:
    """A FastAPI app serving the playground.

    ``manager`` bounds and drives the sessions (default ``SessionManager()``: 8 sessions);
    ``sweep_interval`` is how often orphaned/idle sessions are closed; ``torch_threads``, when
    not None, is applied with ``torch.set_num_threads`` as the server starts (the playground's
    models are tiny: one intra-op thread per training task avoids oversubscribing the CPU,
    which made small steps ~40x slower on a busy 2-core machine); ``warm_up`` does the
    one-time imports in a background thread as the server starts. ``hosts``: host names served
    besides localhost, 127.0.0.1 and ::1 (e.g. the ``--host`` it listens on); ``max_body``: the
    largest request body in bytes (larger: 413).
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
    app.state.discovering = set()  # sessions whose formula is being computed (one at a time)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(LocalOnly, hosts=hosts, max_body=max_body)
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    app.add_api_route("/api/options", _options, methods=["GET"])
    app.include_router(api_sessions.router)
    app.include_router(api_stream.router)
    return app


async def _bad_request(request: Request, exc: RequestValidationError):
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'request'}: {err.get('msg')}")
    return JSONResponse({"detail": "; ".join(parts)[:2000] or "invalid request"}, status_code=422)


async def _unexpected(request: Request, exc: Exception):
    log.error("playground: unexpected error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc}); the "
                                   "server keeps running — press reset or reload"},
                        status_code=500)


async def _index():
    return FileResponse(f"{static_dir()}/index.html", media_type="text/html")


async def _options(request: Request):
    mgr: SessionManager = request.app.state.manager
    return {"datasets": {"classification": list(CLASSIFICATION),
                         "regression": [{"name": n, "dim": io_dims(n)[0],
                                         "formula": target_formula(n)} for n in REGRESSION]},
            "models": list(MODELS), "activations": activation_names(), "inits": init_names(),
            "optimizers": list(OPTIMIZERS), "regularizers": list(REGULARIZERS),
            "clips": list(CLIPS), "limits": {k: list(v) for k, v in LIMITS.items()},
            "max_params": MAX_PARAMS, "defaults": PlaygroundConfig().as_dict(),
            "max_sessions": mgr.max_sessions, "formula_available": formula_mod.available()}
