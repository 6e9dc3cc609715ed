"""The ``nnlab`` command line (typer): the app, ``--version`` and one line per subcommand.

Each subcommand lives in its own module under :mod:`nnlab.commands` (or beside its feature).
"""
from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

import nnlab


class _Boundary(TyperGroup):
    """The command line's one error boundary: any exception a command raises becomes one line
    ``Error: ...`` and exit code 2 (the user can fix it) or 1 (a bug); see
    :func:`nnlab.commands._common.report_error`. ``--debug`` anywhere before a ``--`` (or
    ``NNLAB_DEBUG=1``) shows the traceback instead."""

    def make_context(self, info_name: Any, args: list[str], parent: Any = None, **extra: Any):
        args = list(args)
        head = args[:args.index("--")] if "--" in args else args
        if "--debug" in head:
            os.environ["NNLAB_DEBUG"] = "1"
            args = [a for a in head if a != "--debug"] + args[len(head):]
        return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            from nnlab.commands._common import is_cli_control, report_error

            if is_cli_control(e):  # --help, usage errors, typer.Exit: click reports them itself
                raise
            report_error(e)


app = typer.Typer(help="nnlab: the deep-learning lecture as tools.\n\nErrors are one line on stderr "
                       "(exit code 2: bad input or files; 1: a bug); --debug shows the traceback.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  cls=_Boundary)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {nnlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (also "
                                     "NNLAB_DEBUG=1; may be given after the command too).")) -> None:
    """nnlab: the deep-learning lecture as tools."""
    if debug:
        os.environ["NNLAB_DEBUG"] = "1"


@app.command()
def tour(out: str = typer.Option("runs/tour", "--out", help="Folder for the plots and summary.json."),
         fast: bool = typer.Option(False, "--fast", help="Skip the slower checks (a few seconds less).")
         ) -> None:
    """Print and plot the lecture's claims, section by section (XOR, activations, vanishing
    gradients, training on the spiral)."""
    from nnlab.tour import run

    run(out_dir=out, fast=fast, echo=typer.echo)


from nnlab.commands import bench, export, lora, plot, predict, prune, train  # noqa: E402  (subcommands register below)

train.register(app)
predict.register(app)
prune.register(app)
lora.register(app)
plot.register(app)
bench.register(app)
export.register(app)

from nnlab.commands.discover import discover  # noqa: E402

app.command("discover")(discover)

from nnlab.commands.discover_many import discover_many  # noqa: E402

app.command("discover-many")(discover_many)

from nnlab.playground.cli import playground  # noqa: E402

app.command("playground")(playground)


def main() -> None:
    app()
