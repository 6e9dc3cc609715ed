"""Atomic file writes: a crash never leaves a half-written checkpoint or report.

Every writer goes through :func:`atomic_write`: the data goes to a temporary file in the
same folder, is flushed and fsynced, then ``os.replace`` swaps it in (atomic on POSIX). The file
gets the permissions a plain ``open`` would give (0666 less the umask), not ``mkstemp``'s 0600.
A process killed mid-write leaves its ``.<name>.*.tmp`` behind; :func:`remove_stale_temps`
clears them (run folders and checkpoint folders call it).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

__all__ = ["atomic_write", "write_bytes", "write_text", "write_json", "save_tensors", "load_tensors",
           "save_figure", "remove_stale_temps", "read_json_object"]


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it (not thread-safe)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary sibling of ``path`` (a file name) for a writer that wants a path; on success it
    replaces ``path`` (mode 0666 less the umask), on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json_object(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a JSON file that must hold an object with the ``required`` keys; anything else (bad
    JSON, bad encoding, a list, a missing key) raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {', '.join(missing)}; it is damaged or was not "
                         "written by nnlab")
    return obj


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically (contiguous CPU copies)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_bytes(path, save(flat, metadata=dict(metadata) if metadata else None))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a truncated or foreign file raises ``ValueError`` naming it."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    try:
        return load(path.read_bytes())
    except Exception as e:  # safetensors raises its own SafetensorError (not a ValueError)
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupted?): "
                         f"{e}") from None


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files :func:`atomic_write` leaves when its process is killed.

    Only call it where no other process is writing into ``folder`` at the same time. Returns the
    removed paths."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            if p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100, **savefig_kwargs: Any) -> Path:
    """Render a matplotlib Figure in memory (format from ``path``'s suffix, PNG by default) and
    write it atomically; returns the path."""
    import io

    path = Path(path)
    buf = io.BytesIO()
    fmt = path.suffix[1:].lower() or "png"
    fig.savefig(buf, format=fmt, dpi=dpi, **savefig_kwargs)
    write_bytes(path, buf.getvalue())
    return path
