"""``nnlab bench``: list the benchmark scripts in bench/ or run one by name."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from nnlab.commands._common import CLIError, user_errors

__all__ = ["register", "find_bench_dir", "list_benchmarks"]


def find_bench_dir(explicit: Optional[Path] = None) -> Path:
    """``--dir``, else ``./bench``, else the ``bench/`` beside the source tree (editable install)."""
    candidates = [explicit] if explicit else [Path.cwd() / "bench", Path(__file__).resolve().parents[3] / "bench"]
    for c in candidates:
        if c is not None and c.is_dir():
            return c
    raise CLIError("no bench/ folder found: run from the repository root or pass --dir PATH")


def list_benchmarks(folder: Path) -> dict[str, str]:
    """name -> first line of the script's docstring, for every ``bench/*.py`` not starting with ``_``."""
    out = {}
    for p in sorted(folder.glob("*.py")):
        if p.name.startswith("_"):
            continue
        try:
            doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
        except SyntaxError:
            doc = "(could not be parsed)"
        out[p.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def register(app: typer.Typer) -> None:
    @app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                 help="List the benchmark scripts of bench/, or run one by name.\n\n"
                      "Arguments after the name go to the script, e.g. `nnlab bench pruning --quick`; "
                      "put `--` before options that nnlab bench has too (`nnlab bench pruning -- --help`). "
                      "Results and the exact commands are recorded in BENCHMARKS.md.")
    @user_errors
    def bench(ctx: typer.Context,
              name: Optional[str] = typer.Argument(None, help="Benchmark name (bench/<name>.py)."),
              list_: bool = typer.Option(False, "--list", "-l", help="List the benchmarks and exit."),
              dir_: Optional[Path] = typer.Option(None, "--dir", help="Folder of the benchmark scripts.")) -> None:
        folder = find_bench_dir(dir_)
        table = list_benchmarks(folder)
        if list_ or not name:
            if not table:
                typer.echo(f"no benchmarks in {folder}")
            width = max((len(k) for k in table), default=0)
            for k, doc in table.items():
                typer.echo(f"{k:<{width}}  {doc}")
            return
        name = name[:-3] if name.endswith(".py") else name
        if name not in table:
            raise CLIError(f"no benchmark {name!r} in {folder}; available: {', '.join(table) or 'none'}")
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
        rc = subprocess.call([sys.executable, str(folder / f"{name}.py"), *ctx.args], env=env)
        raise typer.Exit(code=rc)
