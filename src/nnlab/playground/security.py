"""Who may drive the playground: only pages it served itself, on this machine.

The playground binds 127.0.0.1, but a web page from anywhere, open in the same browser, can
still send it requests: a cross-site form ``POST`` (``Content-Type: text/plain`` needs no CORS
pre-flight) would create sessions and fill every slot, and a DNS-rebinding page (evil.example
resolving to 127.0.0.1) would read the whole API. As Jupyter does, :class:`LocalOnly` (pure ASGI
middleware) refuses with 403:

* a ``Host`` header that is not ``localhost``, ``127.0.0.1``, ``[::1]`` or a host the server was
  told to serve (``--host``): a rebinding page sends its own name;
* a state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) whose ``Origin`` is not the
  server's own origin (``http://<Host>``), including ``Origin: null``; without an ``Origin``, one
  whose ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site``. Requests without either header
  (curl, scripts, tests) are not from a browser page and pass;

and with 413 a request body over ``max_body`` bytes (the playground's setups are a few hundred
bytes), counted as it arrives, so a 50 MB body is never read whole.
"""
from __future__ import annotations

import json
from typing import Any, Iterable
from urllib.parse import urlsplit

__all__ = ["LocalOnly", "LOCAL_HOSTS", "MAX_BODY", "host_name"]

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BODY = 64 * 1024
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host: str) -> str:
    """``"127.0.0.1:8765"`` -> ``"127.0.0.1"``, ``"[::1]:80"`` -> ``"::1"``, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class LocalOnly:
    """ASGI middleware: Host allowlist, same-origin state changes, request size limit (see module)."""

    def __init__(self, app: Any, hosts: Iterable[str] = (), max_body: int = MAX_BODY) -> None:
        self.app = app
        self.hosts = LOCAL_HOSTS | {host_name(h) for h in hosts if h and h not in ("0.0.0.0", "::")}
        self.max_body = int(max_body)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        ws = scope["type"] == "websocket"
        if host_name(host) not in self.hosts:
            return await _refuse(send, 403, f"host {host!r} is not served here: open the playground "
                                            "as http://127.0.0.1:<port>/ (or the --host it was started with)", ws)
        method = scope.get("method", "GET").upper()
        if ws or method in UNSAFE:
            origin = headers.get("origin")
            if origin is not None:
                parts = urlsplit(origin)
                if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
                    return await _refuse(send, 403, f"requests from {origin[:100]!r} may not drive this "
                                                    "playground; use its own page", ws)
            elif headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                return await _refuse(send, 403, "requests from other sites may not drive this playground", ws)
        if ws:
            return await self.app(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_body):
            return await _refuse(send, 413, f"the request body is larger than {self.max_body} bytes")
        if method not in UNSAFE:
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:  # a chunked body has no Content-Length: count it as it comes
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.max_body:
                return await _refuse(send, 413, f"the request body is larger than {self.max_body} bytes")
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, detail: str, websocket: bool = False) -> None:
    if websocket:  # closing before accepting answers the handshake with 403
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
