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


@app.command()
def tour(out: str = typer.Option("runs/tour", "--out", help="Folder for the plots and summary.json."),
         fast: bool = typer.Option(False, "--fast", help="Skip the slower checks (a few seconds less).")
         ) -> None:
    """Print and plot the lecture's claims, section by section (XOR, activations, vanishing
    gradients, training on the spiral)."""
    from nnlab.tour import run

    run(out_dir=out, fast=fast, echo=typer.echo)


from nnlab.playground.cli import playground  # noqa: E402

app.command("playground")(playground)


def main() -> None:
    app()
