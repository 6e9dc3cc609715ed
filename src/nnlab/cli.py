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


@app.command()
def tour(out: str = typer.Option("runs/tour", "--out", help="Folder for the plots and summary.json."),
         fast: bool = typer.Option(False, "--fast", help="Skip the slower checks (a few seconds less).")
         ) -> None:
    """Print and plot the lecture's claims, section by section (XOR, activations, vanishing
    gradients, training on the spiral)."""
    from nnlab.tour import run

    run(out_dir=out, fast=fast, echo=typer.echo)


from nnlab.commands import bench, lora, plot, prune, train  # noqa: E402  (subcommands register below)

train.register(app)
prune.register(app)
lora.register(app)
plot.register(app)
bench.register(app)

from nnlab.commands.discover import discover  # noqa: E402

app.command("discover")(discover)

from nnlab.commands.discover_many import discover_many  # noqa: E402

app.command("discover-many")(discover_many)

from nnlab.playground.cli import playground  # noqa: E402

app.command("playground")(playground)


def main() -> None:
    app()
