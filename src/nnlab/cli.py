"""The ``nnlab`` command line (typer): the app, ``--version`` and one line per subcommand.

Each subcommand lives in its own module under :mod:`nnlab.commands` (or beside its feature).
"""
from __future__ import annotations

import typer

import nnlab

app = typer.Typer(help="nnlab: the deep-learning lecture as tools.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {nnlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """nnlab: the deep-learning lecture as tools."""


from nnlab.commands import bench, lora, plot, prune, train  # noqa: E402  (subcommands register below)

train.register(app)
prune.register(app)
lora.register(app)
plot.register(app)
bench.register(app)


def main() -> None:
    app()
