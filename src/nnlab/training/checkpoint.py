"""Checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

A checkpoint folder holds

* ``state-epochNNNN.safetensors``: the model's ``state_dict`` (keys ``model.*``), the optimiser's
  tensor state (``optimizer.*``) and the torch RNG states (``rng.*``);
* ``checkpoint.json``: format, epoch, the tensors file's name and SHA-256, the run's config,
  the History so far, the optimiser's and the learning-rate scheduler's non-tensor state (param
  groups, step counts, ...), and the numpy, Python and shuffling RNG states.

Both files are written through :func:`nnlab._io.atomic_path` (temporary sibling, fsync,
``os.replace``): the tensors file of the new epoch (a new name) and ``checkpoint.json`` go to
temporary files, both are fsynced (at once), then the tensors file is renamed and replacing
``checkpoint.json`` is the commit point; the folder is fsynced once (both renames durable), and
only then are older tensor files removed. A crash at any moment therefore leaves the previous
complete checkpoint readable (only the latest epoch is kept).

The snapshot is taken on the training thread: each tensor is copied once, straight into the
bytes of the safetensors file (:mod:`._pack`; with a :class:`CheckpointWriter`, what ``nl.fit``
uses for ``checkpoint_dir``, into a buffer reused from epoch to epoch), and the non-tensor state
is captured as fresh objects that training does not change. With a writer the rest (the JSON
text, hashing, writes, fsyncs, renames, removal of the old file) runs on a background thread
while the next epoch trains, as PyTorch Lightning's ``AsyncCheckpointIO`` does. At most one write
is in flight: the next save, and the end of ``fit`` (also when it raises), wait for it, and a
failed write is raised there.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnlab import _io

from ._pack import Packer, packable

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointWriter", "capture_rng",
           "restore_rng", "META_FILE"]

META_FILE = "checkpoint.json"
FORMAT = "nnlab.checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``meta`` (the JSON) and ``tensors`` (name -> tensor)."""

    directory: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}

    def optimizer_state(self) -> dict[str, Any]:
        return _join(self.meta["optimizer"], self.tensors)

    def scheduler_state(self) -> dict[str, Any] | None:
        """The learning-rate schedule's state (None when the run had no scheduler)."""
        saved = self.meta.get("scheduler")
        return None if saved is None else _join(saved, self.tensors)


# ---- nested structures <-> (JSON, tensors) -------------------------------------------------------
def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested dict/list/tuple by ``{"__tensor__": key}``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach()  # copied once, when the tensors file is laid out (_pack)
        return {"__tensor__": prefix}
    if isinstance(obj, dict):  # keys may be ints (optimizer state): keep their type
        return {"__dict__": [[k, _split(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix!r}")


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_join(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _join(v, tensors) for k, v in obj["__dict__"]}
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


# ---- RNG state -----------------------------------------------------------------------------------
def capture_rng(tensors: dict[str, torch.Tensor], shuffle_seed: int) -> dict[str, Any]:
    """Torch (CPU and CUDA) states into ``tensors``; numpy, Python and shuffling states as JSON."""
    return _rng_json(_rng_raw(tensors, shuffle_seed))


def _rng_raw(tensors: dict[str, torch.Tensor], shuffle_seed: int) -> tuple:
    """The snapshot half of :func:`capture_rng` (what the training thread must do): torch states
    into ``tensors``, numpy's and Python's states as they come (a fresh array, a tuple: nothing
    that later draws change), turned into JSON lists by :func:`_rng_json` on the writer thread."""
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return np.random.get_state(), random.getstate(), int(shuffle_seed)


def _rng_json(raw: tuple) -> dict[str, Any]:
    (kind, keys, pos, has_gauss, cached), (version, state, gauss_next), shuffle_seed = raw
    return {"numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(state), gauss_next],
            # the shuffling generator of epoch e is torch.Generator().manual_seed(seed + e)
            # (DistributedSampler's scheme), so its whole state is this seed
            "shuffle": {"seed": shuffle_seed}}


def restore_rng(ckpt: Checkpoint) -> None:
    """Put back the torch, CUDA, numpy and Python RNG states saved by :func:`capture_rng`."""
    rng = ckpt.meta["rng"]
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    cuda = [ckpt.tensors[k] for k in sorted(ckpt.tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, state, gauss_next = rng["python"]
    random.setstate((version, tuple(state), gauss_next))


# ---- save / load ---------------------------------------------------------------------------------
class CheckpointWriter:
    """Runs the disk stage of :func:`save_checkpoint` on one background thread, one write at a time.

    ``submit(fn)`` waits for the write in flight (if any), then hands ``fn`` to the thread;
    ``wait()`` blocks until no write is in flight and raises the error of a failed one (the
    original exception, with a note naming the folder); ``close()`` waits, then ends the thread.
    The thread is started once and kept: starting a thread per epoch made the training thread wait
    for the new thread's first GIL slice (up to the 5 ms switch interval).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._where = ""
        self._thread: threading.Thread | None = None
        self.packer = Packer()  # the tensors file's buffer, reused by every save through this writer

    def _loop(self) -> None:
        while True:
            fn = self._jobs.get()
            if fn is None:
                return
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 -- handed to the training thread by wait()
                self._error = e
            finally:
                self._idle.set()

    def submit(self, fn, where: str = "") -> None:
        self.wait()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nnlab-checkpoint", daemon=True)
            self._thread.start()
        self._where = where
        self._idle.clear()
        self._jobs.put(fn)

    def wait(self) -> None:
        self._idle.wait()
        if self._error is not None:
            err, self._error = self._error, None
            err.add_note(f"(while writing the checkpoint in {self._where})")
            raise err

    def close(self) -> None:
        """Wait for the write in flight, end the thread, then raise a failed write's error."""
        self._idle.wait()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self.wait()


def save_checkpoint(directory: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, history: dict[str, list], config: dict[str, Any],
                    shuffle_seed: int, scheduler: dict[str, Any] | None = None,
                    writer: CheckpointWriter | None = None) -> Path:
    """Write the checkpoint of a finished ``epoch`` into ``directory`` (see module docstring).

    With ``writer`` the files are written in the background (the state is captured before this
    returns); call ``writer.wait()`` before reading them."""
    directory = Path(directory)
    if writer is not None:
        writer.wait()  # its buffer holds the previous epoch's file until that is written
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_json = _split(optimizer.state_dict(), "optimizer", tensors)
    sched_json = None if scheduler is None else _split(scheduler, "scheduler", tensors)
    rng = _rng_raw(tensors, shuffle_seed)
    # the snapshot: every tensor copied once, straight into the bytes of the tensors file (a
    # buffer the writer reuses from epoch to epoch), so training can go on changing them in place
    blob = (writer.packer if writer is not None else Packer()).pack(tensors) if packable(tensors) \
        else _safetensors_bytes(tensors)
    name = f"state-epoch{epoch:04d}.safetensors"
    # everything else is already a snapshot that training does not change: _split rebuilt every
    # container of the optimiser's and scheduler's state (leaves are numbers and strings),
    # History's lists and the config dict are copied here, the RNG states are fresh objects.
    # So the JSON (RNG lists, the History that grows every epoch) is built on the writer thread.
    meta = {"format": FORMAT, "epoch": int(epoch), "tensors_file": name, "config": dict(config),
            "history": {k: list(v) for k, v in history.items()}, "optimizer": opt_json,
            "scheduler": sched_json, "rng": rng, "torch_version": torch.__version__}

    def write() -> None:
        meta["rng"] = _rng_json(rng)
        # compact JSON: the C encoder (an indented dump runs Python's encoder over every number)
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"), default=_io._json_default)
        digest = hashlib.sha256(blob).hexdigest()  # releases the GIL on large buffers
        # checkpoint.json names the new tensors file and its hash (computed here, off the training
        # thread, and added as the object's last member)
        meta_bytes = (text[:-1] + f',"sha256":"{digest}"}}\n').encode("utf-8")
        # both files go to temporary siblings and are fsynced (in parallel: one journal commit
        # instead of two on ext4-like filesystems) before either is renamed; leaving the `with`
        # renames the tensors file first, then checkpoint.json: the commit point
        with _io.atomic_path(directory / META_FILE) as meta_tmp, \
                _io.atomic_path(directory / name) as tensors_tmp:
            with open(tensors_tmp, "wb") as ft, open(meta_tmp, "wb") as fm:
                ft.write(blob)
                fm.write(meta_bytes)
                ft.flush()
                fm.flush()
                _fsync_pair(ft.fileno(), fm.fileno())
        _fsync_dir(directory)  # both renames are on disk before the previous tensors file goes
        for old in directory.glob("state-epoch*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)
        _io.remove_stale_temps(directory)  # left by a run killed mid-write

    if writer is None:
        write()
    else:
        writer.submit(write, str(directory))
    return directory / META_FILE


def _safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """Dtypes :mod:`._pack` does not lay out (float8, unsigned > 8 bits, complex): safetensors'
    own serialiser, on CPU copies."""
    from safetensors.torch import save

    return save({k: v.to("cpu").contiguous() for k, v in tensors.items()})


def _fsync_pair(a: int, b: int) -> None:
    """fsync two open files at once (one on a helper thread): on a journalling filesystem the two
    flushes share a commit, so the pair costs about one fsync's latency instead of two."""
    errors: list[BaseException] = []

    def other() -> None:
        try:
            os.fsync(b)
        except BaseException as e:  # noqa: BLE001 -- raised below, on the calling thread
            errors.append(e)

    helper = threading.Thread(target=other, name="nnlab-fsync", daemon=True)
    helper.start()
    try:
        os.fsync(a)
    finally:
        helper.join()
    if errors:
        raise errors[0]


def _fsync_dir(directory: Path) -> None:
    """Make the folder's entries (the two renames) durable; a no-op where a folder cannot be
    opened or fsynced (Windows, some network filesystems)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read and verify a checkpoint folder written by :func:`save_checkpoint`."""
    from safetensors.torch import load

    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no checkpoint in {directory} (expected {meta_path}); pass the "
                                "checkpoint_dir of an earlier fit as resume=")
    meta = _io.read_json_object(meta_path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    _io.read_json_object(meta_path, ("epoch", "tensors_file", "sha256", "config", "history",
                                     "optimizer", "rng"))
    if isinstance(meta["epoch"], bool) or not isinstance(meta["epoch"], int) or meta["epoch"] < 0 \
            or not isinstance(meta["tensors_file"], str) or "/" in meta["tensors_file"]:
        raise ValueError(f"{meta_path} is damaged (epoch {meta['epoch']!r}, tensors file "
                         f"{meta['tensors_file']!r})")
    tpath = directory / meta["tensors_file"]
    if not tpath.is_file():
        raise FileNotFoundError(f"checkpoint {meta_path} names {tpath.name}, which is missing")
    blob = tpath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise ValueError(f"{tpath} does not match the SHA-256 recorded in {meta_path} (corrupted?)")
    try:
        tensors = load(blob)
    except Exception as e:  # safetensors' own error type
        raise ValueError(f"{tpath} is not a readable safetensors file: {e}") from None
    return Checkpoint(directory, meta, tensors)
