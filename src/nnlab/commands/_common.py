"""Shared plumbing for the subcommands: bad input -> one clear line and exit code 2, config files.

The error boundary of the whole command line is :func:`report_error` (called by
``nnlab.cli``'s command group around every command, and by :func:`user_errors`): a
:class:`CLIError`, a ``ValueError``/``TypeError`` raised at the library's input boundary, an
``OSError`` (missing file, permissions, a file where a folder belongs, disk full) or a diverged
training prints ``Error: <message>`` on stderr and exits with status 2; anything else is a bug
and exits with status 1, still as one line. ``--debug`` or ``NNLAB_DEBUG=1`` shows the traceback
instead.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import typer

__all__ = ["CLIError", "user_errors", "report_error", "describe_error", "is_cli_control", "debug_enabled", "read_config_file", "resolve_config", "parse_list",
           "parse_clip", "is_rank_zero", "echo", "check_out_file"]

F = TypeVar("F", bound=Callable[..., Any])


class CLIError(Exception):
    """Bad input on the command line: reported as ``Error: ...`` with exit code 2."""


def debug_enabled() -> bool:
    """``--debug`` was given (it sets ``NNLAB_DEBUG``) or ``NNLAB_DEBUG`` is set to a true value."""
    return os.environ.get("NNLAB_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def describe_error(e: BaseException) -> tuple[str, int]:
    """``(one-line message, exit code)``: 2 for a problem the user can fix, 1 for a bug."""
    from nnlab.training import DivergenceError

    if isinstance(e, OSError):
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        what = e.strerror or str(e) or type(e).__name__
        if isinstance(e, (IsADirectoryError, NotADirectoryError, FileExistsError)) and where:
            what = {IsADirectoryError: "is a folder, not a file",
                    NotADirectoryError: "a part of this path is a file, not a folder",
                    FileExistsError: "already exists"}[type(e)]
        return (f"{where}: {what}" if where else str(e) or what), 2
    if isinstance(e, (CLIError, ValueError, TypeError, DivergenceError)):
        msg = str(e) or type(e).__name__
        return " ".join(msg.split()) if "\n" in msg and len(msg) < 2000 else msg, 2
    return (f"internal error ({type(e).__name__}: {e}); this is a bug in nnlab: rerun with --debug "
            "to see the traceback and report it"), 1


def is_cli_control(e: BaseException) -> bool:
    """click's/typer's own exceptions (exit, abort, usage errors): not ours to report."""
    return type(e).__module__.split(".")[0] in ("click", "typer")


def report_error(e: BaseException) -> None:
    """Print ``Error: <message>`` on stderr and exit (code from :func:`describe_error`); with
    ``--debug`` / ``NNLAB_DEBUG=1`` re-raise instead, so the traceback shows."""
    if debug_enabled():
        raise e
    msg, code = describe_error(e)
    typer.echo(f"Error: {msg}", err=True)
    raise typer.Exit(code=code) from None


def user_errors(fn: F) -> F:
    """Turn errors into a one-line message and an exit code (see :func:`report_error`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if is_cli_control(e):
                raise
            report_error(e)

    return wrapper  # type: ignore[return-value]


def echo(msg: str) -> None:
    """Print on rank 0 only (under ``torchrun`` every rank runs the command)."""
    if is_rank_zero():
        typer.echo(msg)


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a ``torchrun``/torch.distributed job."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    except ImportError:  # pragma: no cover - torch always ships distributed on our platforms
        pass
    return int(os.environ.get("RANK", "0")) == 0


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a flat YAML (``.yaml``/``.yml``) or TOML (``.toml``) mapping; dashes in keys become ``_``."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            raise CLIError(f"config file {path} must end in .yaml, .yml or .toml")
    except CLIError:
        raise
    except Exception as e:  # yaml.YAMLError / tomllib.TOMLDecodeError: report, don't trace
        raise CLIError(f"could not parse config file {path}: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CLIError(f"config file {path} must hold a mapping of option: value, "
                       f"got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def resolve_config(defaults: Mapping[str, Any], from_file: Mapping[str, Any],
                   from_flags: Mapping[str, Any], source: str = "config file") -> dict[str, Any]:
    """defaults < config file < flags given on the command line (``None`` = not given).

    Unknown keys in the config file are refused, all of them listed with the valid ones.
    """
    unknown = sorted(set(from_file) - set(defaults))
    if unknown:
        raise CLIError(f"unknown key(s) in {source}: {', '.join(unknown)}. "
                       f"Valid keys: {', '.join(sorted(defaults))}")
    cfg = dict(defaults)
    cfg.update(from_file)
    cfg.update({k: v for k, v in from_flags.items() if v is not None})
    return cfg


def parse_list(value: Any, name: str, cast: Callable[[str], Any] = int) -> list[Any]:
    """``"32,32"`` or ``[32, 32]`` -> ``[32, 32]``; ``""``/``[]`` -> ``[]``."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [s for s in str(value).replace(" ", "").split(",") if s]
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise CLIError(f"{name} must be a comma-separated list such as 32,32; got {value!r}") from None


def parse_clip(value: Any) -> tuple[str, float] | None:
    """``None``/``"none"`` -> None; ``"norm:1.0"`` or ``"value:0.5"`` -> ``("norm", 1.0)`` (§2.10)."""
    if value is None or (isinstance(value, str) and value.lower() in ("", "none", "off")):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        kind, c = value
    else:
        kind, _, c = str(value).partition(":")
    kind = str(kind).strip().lower()
    try:
        c = float(c)
    except (TypeError, ValueError):
        c = float("nan")
    if kind not in ("norm", "value") or not c > 0:
        raise CLIError(f"clip must be 'norm:C' or 'value:C' with C > 0 (e.g. norm:1.0); got {value!r}")
    return kind, c


def check_out_file(out: Path, option: str = "--out", overwrite: bool | None = None,
                   example: str = "preds.csv") -> None:
    """Check an output file path before any work: not a folder, in a folder that can be made
    and written; with ``overwrite=False`` it must not exist yet (None: replaced silently)."""
    from nnlab.runs import RunFolderError, check_parent

    if out.is_dir():
        raise CLIError(f"{option} {out} is a folder; give a file name such as {example}")
    if overwrite is False and out.exists():
        raise CLIError(f"{option} {out} already exists; pass --overwrite to replace it")
    try:
        check_parent(out.parent if str(out.parent) else Path("."), option)
    except RunFolderError as e:
        raise CLIError(str(e)) from None
