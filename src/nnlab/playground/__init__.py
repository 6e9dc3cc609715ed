"""A local web playground: MLP vs KAN on 2-D data, trained live in the browser (lecture §2.4, §6).

``nnlab playground`` serves it (needs the ``playground`` extra: fastapi, uvicorn). The pieces:

* :mod:`~nnlab.playground.config` — the setup, validated, one URL-friendly record;
* :mod:`~nnlab.playground.datasets` — toy classification sets and regression targets;
* :mod:`~nnlab.playground.trainer` — one epoch at a time with ``nl.MLP`` / ``nl.KAN``;
* :mod:`~nnlab.playground.snapshot` — what the page draws (surface, neurons, KAN edges);
* :mod:`~nnlab.playground.sessions` — one session per tab, bounded, with background training;
* :mod:`~nnlab.playground.server` — the FastAPI app (``create_app``) and the static page.
"""
from __future__ import annotations

from nnlab.playground.config import PlaygroundConfig, parse_config

__all__ = ["PlaygroundConfig", "parse_config", "create_app"]


def create_app(*args, **kwargs):
    """See :func:`nnlab.playground.server.create_app` (imported lazily: it needs fastapi)."""
    from nnlab.playground.server import create_app as _create_app

    return _create_app(*args, **kwargs)
