"""The ``nnlab`` command line (typer)."""
from __future__ import annotations

import typer

import nnlab

app = typer.Typer(help="nnlab: the deep-learning lecture as tools.", no_args_is_help=True,
                  add_completion=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {nnlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """nnlab: the deep-learning lecture as tools."""


from nnlab.playground.cli import playground  # noqa: E402

app.command("playground")(playground)


def main() -> None:
    app()
