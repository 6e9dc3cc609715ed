"""Build, load and call the tiny native feature kernels in ``_native.c`` (uniform grids, CPU).

The C source is compiled at first use with the system C compiler (``$CC`` or ``cc``;
``-O3 -fPIC -shared``, no fast-math: that would change the denormal state of the whole process)
into a cache directory (``$NNLAB_CACHE`` or ``~/.cache/nnlab``), named by a hash of the source and
the flags, and written by an atomic rename so concurrent processes never load a half-written file.
It is loaded with :mod:`ctypes` and called on tensors' data pointers.

When anything is missing (no compiler, read-only cache, non-CPU or non-contiguous tensors,
``NNLAB_NATIVE=0``) the caller uses the eager PyTorch code instead; the reason is logged once.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

__all__ = ["available", "reason", "features_uniform", "backward_x"]

log = logging.getLogger(__name__)

_SRC = Path(__file__).with_name("_native.c")
FLAGS = ["-O3", "-fPIC", "-shared"]
#: name of the C compiler; ``$CC`` overrides it (tests monkeypatch this to simulate its absence)
COMPILER = os.environ.get("CC", "cc")
MAX_K = 16

_lib = None
_reason: str | None = None
_tried = False


def _cache_dir() -> Path:
    root = os.environ.get("NNLAB_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "nnlab"


def _build() -> ctypes.CDLL:
    cc = shutil.which(COMPILER)
    if cc is None:
        raise RuntimeError(f"C compiler {COMPILER!r} not found")
    src = _SRC.read_bytes()
    tag = hashlib.sha256(src + " ".join([COMPILER] + FLAGS).encode()).hexdigest()[:16]
    d = _cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    so = d / f"kan_native_{tag}.so"
    if not so.exists():
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
        os.close(fd)
        try:
            r = subprocess.run([cc, *FLAGS, "-o", tmp, str(_SRC), "-lm"],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"{COMPILER} failed: {r.stderr.strip()[:500]}")
            os.replace(tmp, so)  # atomic: concurrent builders each write their own temp file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(so))
    P, L, I_ = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    for dt in ("f32", "f64"):
        fn = getattr(lib, f"kan_features_{dt}")
        fn.argtypes = [P, L, L, P, P, L, L, P, I_, P]
        fn.restype = I_
        fn = getattr(lib, f"kan_backward_x_{dt}")
        fn.argtypes = [P, P, L, L, P, P, L, L, P, P, P]
        fn.restype = I_
    return lib


def _load():
    global _lib, _reason, _tried
    _tried = True
    if os.environ.get("NNLAB_NATIVE", "1") == "0":
        _reason = "disabled by NNLAB_NATIVE=0"
    else:
        try:
            _lib = _build()
        except Exception as e:  # any failure: fall back to the eager code
            _reason = f"{type(e).__name__}: {e}"
    if _lib is None:
        log.info("nnlab.kan: native KAN kernels unavailable (%s); using eager PyTorch", _reason)
    return _lib


def lib():
    """The loaded library, or None (building it on the first call)."""
    return _lib if _tried else _load()


def available() -> bool:
    return lib() is not None


def reason() -> str | None:
    """Why the native kernels are unavailable (None when they are available)."""
    lib()
    return _reason


def _reset() -> None:
    """Forget the loaded library (tests)."""
    global _lib, _reason, _tried
    _lib, _reason, _tried = None, None, False


def usable(x: torch.Tensor, k: int) -> bool:
    """Can the native kernels handle ``x``? (CPU, contiguous float32/float64, k <= MAX_K)."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x.is_contiguous() and k <= MAX_K and lib() is not None)


def features_uniform(x, t0, inv_h, k: int, K: int, M, zero_base: bool, out) -> None:
    """Fill ``out`` (B, K+1, I) contiguous: slots 0..K-1, and slot K only if ``zero_base``.

    ``t0``, ``inv_h`` (I,) and ``M`` (k+1, k+1) are contiguous float64 CPU tensors.
    """
    B, I = x.shape
    fn = _lib.kan_features_f32 if x.dtype == torch.float32 else _lib.kan_features_f64
    if fn(x.data_ptr(), B, I, t0.data_ptr(), inv_h.data_ptr(), k, K, M.data_ptr(),
          int(zero_base), out.data_ptr()):
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")


def backward_x(gF, x, t0, inv_h, k: int, K: int, dM, base_term, out) -> None:
    """``out`` (B, I) = ∂L/∂x from ``gF`` (B, K+1, I), plus ``base_term`` (B, I) if given."""
    B, I = x.shape
    fn = _lib.kan_backward_x_f32 if x.dtype == torch.float32 else _lib.kan_backward_x_f64
    if fn(gF.data_ptr(), x.data_ptr(), B, I, t0.data_ptr(), inv_h.data_ptr(), k, K,
          dM.data_ptr(), base_term.data_ptr() if base_term is not None else None,
          out.data_ptr()):
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")
