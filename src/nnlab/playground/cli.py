"""``nnlab playground``: serve the playground on 127.0.0.1 and print its URL."""
from __future__ import annotations

from typing import List, Optional

import typer

__all__ = ["playground"]


def playground(
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535,
                             help="Port to listen on (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Interface to bind; the default keeps it local to this machine."),
    max_sessions: int = typer.Option(8, "--max-sessions", min=1, max=64,
                                     help="Most browser tabs trained at once."),
    open_browser: bool = typer.Option(False, "--open/--no-open", help="Open the page in a browser."),
    allow_host: Optional[List[str]] = typer.Option(None, "--allow-host",
                                                  help="Another host name the page may be opened "
                                                       "under (besides localhost, 127.0.0.1, ::1 and "
                                                       "--host); repeatable."),
) -> None:
    """A live MLP vs KAN playground in the browser (lecture §2.4, §6)."""
    try:
        import uvicorn

        from nnlab.playground.server import create_app
        from nnlab.playground.sessions import SessionManager
    except ImportError as e:
        typer.echo(f"the playground needs its extra: pip install 'nnlab[playground]' ({e})", err=True)
        raise typer.Exit(2) from None
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        typer.echo(f"cannot listen on {host}:{port} ({e.strerror}); pass another --port, or "
                   "--port 0 for a free one", err=True)
        raise typer.Exit(2) from None
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{port}/"
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach this machine can use it",
                   err=True)
    typer.echo(f"nnlab playground: {url}  (Ctrl+C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    app = create_app(SessionManager(max_sessions=max_sessions), hosts=[host, *(allow_host or [])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])  # the socket bound above: no race for the port
    finally:
        sock.close()
