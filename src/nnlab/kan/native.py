"""Build, load and call the native KAN kernels (uniform grids, CPU): ``_native.c`` (features + GEMM
route) and ``_native_sparse.c`` (sparse route), sharing ``_native.h``; compiled into one library.

The C source is compiled at first use with the system C compiler (``$CC`` or ``cc``, which may
carry a wrapper such as ``CC="ccache gcc"``) into a cache directory (``$NNLAB_CACHE`` or
``~/.cache/nnlab``). Flag sets are tried in order, best first:
``-O3 -march=native -fopenmp`` (SIMD for this CPU: AVX2 / AVX-512 where present, rows split over
OpenMP threads), then ``-O3 -fopenmp`` (portable x86-64 baseline), then ``-O3`` (one thread).
No fast-math: that would change the denormal state of the whole process. OpenMP binds to the
``libgomp.so.1`` that torch has already loaded (same soname), so both share one thread pool.

The binary is named by a hash of the source, compiler, flags and CPU flags, written by an atomic
rename (concurrent processes never load a half-written file), and recorded with the SHA-256 of
its bytes in a sidecar file; before a cached binary is loaded both are checked, and a mismatch
rebuilds it. A read-only cache directory builds into a private temporary directory instead.
It is loaded with :mod:`ctypes` (which releases the GIL) and called on tensors' data pointers.

When anything is missing (no compiler, a failed build, ``NNLAB_NATIVE=0``, non-CPU or
non-contiguous tensors) the caller uses the eager PyTorch code instead; the reason is logged
once (:func:`reason`, :func:`info`). Nothing here ever raises at import or build time.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

__all__ = ["available", "reason", "info", "threads_for", "check_input", "features_uniform", "backward_x", "pack_weights",
           "pack_weights_t", "sparse_forward", "sparse_backward", "param_grads"]

log = logging.getLogger(__name__)

_SRCS = tuple(Path(__file__).with_name(n) for n in ("_native.c", "_native_sparse.c"))
_HEADER = Path(__file__).with_name("_native.h")
#: flag sets tried in order (the common ``-fPIC -shared`` are added); the first that builds wins
FLAG_SETS = (["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp"],
             ["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"])
#: the C compiler command; None reads ``$CC`` (default ``cc``) at build time. Tests set it.
COMPILER: str | None = None
MAX_K = 16
VERSION = 7  # kan_native_version() of _native.c

_lib = None
_reason: str | None = None
_info: dict = {}
_tried = False


def _cache_dir() -> Path:
    root = os.environ.get("NNLAB_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "nnlab"


def _compiler() -> list[str]:
    cmd = shlex.split(COMPILER if COMPILER is not None else os.environ.get("CC") or "cc")
    if not cmd:
        raise RuntimeError("the C compiler command ($CC) is empty")
    exe = shutil.which(cmd[0])
    if exe is None:
        raise RuntimeError(f"C compiler {cmd[0]!r} not found")
    return [exe, *cmd[1:]]


def _cpu_flags() -> str:
    """The CPU's feature flags (``-march=native`` depends on them), '' where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _isa(flags: list[str]) -> str:
    if "-march=native" not in flags:
        return f"{platform.machine()} baseline"
    cpu = set(_cpu_flags().split())
    for name, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx")):
        if flag in cpu:
            return name
    return f"{platform.machine()} native"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tag(cc: list[str], flags: list[str]) -> str:
    key = b"".join(p.read_bytes() for p in (*_SRCS, _HEADER)) + "\0".join([*cc, *flags, _cpu_flags(), platform.machine()]).encode()
    return hashlib.sha256(key).hexdigest()[:16]


def _verified(so: Path, tag: str) -> bool:
    """True if ``so`` exists and its sidecar records this tag and the SHA-256 of its bytes."""
    side = so.with_suffix(".sha256")
    try:
        want_tag, want_hash = side.read_text().split()
        return want_tag == tag and _sha256(so) == want_hash
    except (OSError, ValueError):
        return False


def _compile(cc: list[str], flags: list[str], d: Path, so: Path, tag: str) -> None:
    """Compile into a temp file in ``d``, then atomically rename it (and its sidecar) in place."""
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
    os.close(fd)
    try:
        r = subprocess.run([*cc, *flags, "-fPIC", "-shared", "-o", tmp, *map(str, _SRCS), "-lm"],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cc)} {' '.join(flags)} failed: {r.stderr.strip()[:300]}")
        digest = _sha256(Path(tmp))
        os.replace(tmp, so)
        fd, stmp = tempfile.mkstemp(suffix=".sha256", dir=d)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{tag} {digest}\n")
        os.replace(stmp, so.with_suffix(".sha256"))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _open(so: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(so))
    if lib.kan_native_version() != VERSION:
        raise RuntimeError(f"{so} is version {lib.kan_native_version()}, expected {VERSION}")
    P, L, I_ = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    for dt in ("f32", "f64"):
        fn = getattr(lib, f"kan_features_{dt}")
        fn.argtypes = [P, L, L, P, P, L, L, P, I_, P, I_]
        fn.restype = I_
        fn = getattr(lib, f"kan_backward_x_{dt}")
        fn.argtypes = [P, P, L, L, P, P, L, L, P, P, I_, P, I_]
        fn.restype = I_
        for name in ("kan_pack_weights", "kan_pack_weights_t"):
            fn = getattr(lib, f"{name}_{dt}")
            fn.argtypes = [P, P, P, P, L, L, L, P]
            fn.restype = None
        fn = getattr(lib, f"kan_param_grads_{dt}")
        fn.argtypes = [P, L, L, L, P, P, P, L, L, L, P, P, P]
        fn.restype = None
        fn = getattr(lib, f"kan_check_input_{dt}")
        fn.argtypes = [P, L, L, P, P, I_]
        fn.restype = I_
        fn = getattr(lib, f"kan_layer_forward_{dt}")
        fn.argtypes = [P, L, L, L, P, P, L, L, P, P, P, P, P, I_, P, P, I_, P, I_]
        fn.restype = I_
        fn = getattr(lib, f"kan_layer_backward_{dt}")
        fn.argtypes = [P, P, L, L, L, P, P, L, L, P, P, P, P, P, P, I_, P, P, P, P, I_]
        fn.restype = I_
        fn = getattr(lib, f"kan_sparse_forward_{dt}")
        fn.argtypes = [P, L, L, L, P, P, L, L, P, P, I_, P, I_]
        fn.restype = I_
        fn = getattr(lib, f"kan_sparse_backward_{dt}")
        fn.argtypes = [P, P, L, L, L, P, P, L, L, P, P, P, I_, P, P, I_]
        fn.restype = I_
    return lib


def _build_one(cc: list[str], flags: list[str]) -> tuple[ctypes.CDLL, dict]:
    tag = _tag(cc, flags)
    d = _cache_dir()
    so = d / f"kan_native_{tag}.so"
    state = "cached"
    if not _verified(so, tag):
        state = "built"
        if so.exists():
            log.warning("nnlab.kan: cached native kernel %s failed its hash check; rebuilding", so)
        try:
            d.mkdir(parents=True, exist_ok=True)
            _compile(cc, flags, d, so, tag)
        except OSError as e:  # read-only or missing cache: build privately for this process
            log.info("nnlab.kan: cache %s not writable (%s); building in a temporary directory", d, e)
            d = Path(tempfile.mkdtemp(prefix="nnlab-native-"))
            so = d / f"kan_native_{tag}.so"
            _compile(cc, flags, d, so, tag)
        if not _verified(so, tag):
            raise RuntimeError(f"{so} failed its hash check right after the build")
    lib = _open(so)
    return lib, {"so": str(so), "state": state, "compiler": " ".join(cc), "flags": " ".join(flags),
                 "openmp": bool(lib.kan_native_openmp()), "isa": _isa(flags)}


def _build() -> ctypes.CDLL:
    cc = _compiler()
    errors = []
    for flags in FLAG_SETS:
        try:
            lib, meta = _build_one(cc, list(flags))
        except (RuntimeError, OSError, subprocess.SubprocessError, AttributeError) as e:
            errors.append(f"{' '.join(flags)}: {e}")
            continue
        _info.update(meta)
        if errors:
            log.info("nnlab.kan: native kernels built with fewer flags (%s)", "; ".join(errors))
        return lib
    raise RuntimeError("; ".join(errors))


def _load():
    global _lib, _reason, _tried
    _tried = True
    _info.clear()
    if os.environ.get("NNLAB_NATIVE", "1") == "0":
        _reason = "disabled by NNLAB_NATIVE=0"
    else:
        try:
            _lib = _build()
        except Exception as e:  # noqa: BLE001 -- any failure means: fall back to eager code
            _reason = f"{type(e).__name__}: {e}"
    if _lib is None:  # asked for (NNLAB_NATIVE=0): info; anything else: a warning
        level = logging.INFO if _reason.startswith("disabled") else logging.WARNING
        log.log(level, "nnlab.kan: native KAN kernels unavailable (%s); using eager PyTorch", _reason)
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


def info() -> dict:
    """What was loaded: ``so`` path, ``state`` (built/cached), ``compiler``, ``flags``,
    ``openmp``, ``isa``; or ``{"reason": ...}`` when the eager fallback is in use."""
    return dict(_info) if lib() is not None else {"reason": _reason}


def _reset() -> None:
    """Forget the loaded library (tests)."""
    global _lib, _reason, _tried
    _lib, _reason, _tried = None, None, False
    _info.clear()


#: ``NNLAB_DYNAMIC_THREADS=0`` turns the load-aware thread count of :func:`threads_for` off
_RUNQ = {"t": -1.0, "free": 1 << 30}
RUNQ_TTL_S = 0.25


def _own_running() -> int:
    """Threads of this process that are runnable now (this one included): torch's own pool
    threads, still spinning after its last parallel region, are no other task's demand."""
    own = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                st = fh.read()
        except OSError:  # the thread ended meanwhile
            continue
        own += st[st.rindex(")") + 2] == "R"
    return max(own, 1)


def _free_cpus() -> int:
    """CPUs of this process's affinity set that no other process's runnable task wants right
    now: ``/proc/loadavg``'s instantaneous run-queue count less this process's runnable threads,
    re-read at most every :data:`RUNQ_TTL_S` seconds; unbounded where it cannot be read."""
    now = time.monotonic()
    if now - _RUNQ["t"] > RUNQ_TTL_S:
        _RUNQ["t"] = now
        try:
            with open("/proc/loadavg") as fh:
                running = int(fh.read().split()[3].split("/")[0])
            others = max(0, running - _own_running())
            _RUNQ["free"] = max(1, len(os.sched_getaffinity(0)) - others)
        except (OSError, ValueError, IndexError, AttributeError):
            _RUNQ["free"] = 1 << 30
    return _RUNQ["free"]


def threads_for(threads: int | None = None) -> int:
    """Threads the native kernels use: ``threads`` (default ``torch.get_num_threads()``), but
    never more than the CPUs that are free right now (the dynamic adjustment of OpenMP's
    ``OMP_DYNAMIC``, from the instantaneous run queue). On a shared, busy machine a parallel
    region waits at its join for a helper thread that the scheduler has not run yet (a
    time slice, milliseconds), so extra threads there make a call slower than one thread.
    ``NNLAB_DYNAMIC_THREADS=0`` uses the requested count as is."""
    n = torch.get_num_threads() if threads is None else int(threads)
    if n <= 1 or os.environ.get("NNLAB_DYNAMIC_THREADS", "1") == "0":
        return max(1, n)
    return min(n, _free_cpus())


def usable(x: torch.Tensor, k: int) -> bool:
    """Can the native kernels handle ``x``? (CPU, contiguous float32/float64, k <= MAX_K)."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x.is_contiguous() and k <= MAX_K and lib() is not None)


def features_uniform(x, t0, inv_h, k: int, K: int, M, zero_base: bool, out,
                     threads: int | None = None, silu: bool = False) -> None:
    """Fill ``out`` (B, K+1, I) contiguous: slots 0..K-1, and slot K with silu(x) if ``silu``,
    with zeros if ``zero_base``, else not at all (the caller writes another base there).

    ``t0``, ``inv_h`` (I,) and ``M`` (k+1, k+1) are contiguous float64 CPU tensors. Rows are
    split over ``threads`` (default ``torch.get_num_threads()``) when the work is large enough.
    """
    B, I = x.shape
    nt = threads_for(threads)
    fn = _lib.kan_features_f32 if x.dtype == torch.float32 else _lib.kan_features_f64
    if fn(x.data_ptr(), B, I, t0.data_ptr(), inv_h.data_ptr(), k, K, M.data_ptr(),
          2 if silu else int(bool(zero_base)), out.data_ptr(), nt) < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")


def check_input(x, lo, hi, check_range: bool) -> int:
    """One pass over ``x`` (B, I) contiguous: bit 0 set if a value is NaN/inf, bit 1 (only with
    ``check_range``) if a finite ``x[b, i]`` lies outside [``lo[i]``, ``hi[i]``] (float64 (I,))."""
    fn = _lib.kan_check_input_f32 if x.dtype == torch.float32 else _lib.kan_check_input_f64
    return fn(x.data_ptr(), x.shape[0], x.shape[1], lo.data_ptr(), hi.data_ptr(), int(check_range))


def pack_weights(coef, scale_base, scale_spline, mask):
    """The packed weight (O, K+1, I) of :func:`nnlab.kan.kernel.layer_weights` in one C pass, or
    None when the tensors are not all contiguous CPU float32/float64 of one dtype."""
    ts = (coef, scale_base, scale_spline, mask)
    dt = coef.dtype
    if (dt not in (torch.float32, torch.float64) or lib() is None
            or any(t.device.type != "cpu" or t.dtype != dt or not t.is_contiguous() for t in ts)):
        return None
    O, I, K = coef.shape
    W = coef.new_empty(O, K + 1, I)
    fn = _lib.kan_pack_weights_f32 if dt == torch.float32 else _lib.kan_pack_weights_f64
    fn(coef.data_ptr(), scale_base.data_ptr(), scale_spline.data_ptr(), mask.data_ptr(), O, I, K,
       W.data_ptr())
    return W


def backward_x(gF, x, t0, inv_h, k: int, K: int, dM, base_term, out,
               threads: int | None = None, silu: bool = False) -> None:
    """``out`` (B, I) = ∂L/∂x from ``gF`` (B, K+1, I), plus ``base_term`` (B, I) if given, plus
    ``gF[:, K]·silu'(x)`` if ``silu``."""
    B, I = x.shape
    nt = threads_for(threads)
    fn = _lib.kan_backward_x_f32 if x.dtype == torch.float32 else _lib.kan_backward_x_f64
    if fn(gF.data_ptr(), x.data_ptr(), B, I, t0.data_ptr(), inv_h.data_ptr(), k, K,
          dM.data_ptr(), base_term.data_ptr() if base_term is not None else None, int(silu),
          out.data_ptr(), nt) < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")


def _same_cpu(ts, dt) -> bool:
    """All of ``ts`` contiguous CPU tensors of float dtype ``dt``, and the kernels built (checked
    last: nothing is compiled for tensors on other devices)."""
    if dt not in (torch.float32, torch.float64):
        return False
    for t in ts:  # a plain loop: this runs on every call of small layers
        if t.dtype != dt or t.is_cuda or not t.is_contiguous() or t.device.type != "cpu":
            return False
    return lib() is not None


def pack_weights_t(coef, scale_base, scale_spline, mask):
    """The sparse route's weight Wt (I, K+1, O), input-major (:func:`pack_weights` permuted):
    ``Wt[i, j] = m·w^s·c[:, i, j]`` (j < K), ``Wt[i, K] = m·w^b[:, i]``.
    None when the tensors are not all contiguous CPU float32/float64 of one dtype."""
    if not _same_cpu((coef, scale_base, scale_spline, mask), coef.dtype):
        return None
    O, I, K = coef.shape
    Wt = torch.empty((I, K + 1, O), dtype=coef.dtype)  # never requires grad (data only)
    fn = _lib.kan_pack_weights_t_f32 if coef.dtype == torch.float32 else _lib.kan_pack_weights_t_f64
    fn(coef.data_ptr(), scale_base.data_ptr(), scale_spline.data_ptr(), mask.data_ptr(), O, I, K,
       Wt.data_ptr())
    return Wt


def sparse_forward(x, t0, inv_h, k: int, K: int, M, Wt, silu: bool,
                   threads: int | None = None) -> torch.Tensor:
    """``y`` (B, O) = F·Wᵀ without building F: per (row, input) the k+1 non-zero basis values
    and the base value (silu, or none) times their rows of ``Wt`` (I, K+1, O)."""
    B, I = x.shape
    O = Wt.shape[2]
    y = x.new_empty(B, O)
    nt = threads_for(threads)
    fn = _lib.kan_sparse_forward_f32 if x.dtype == torch.float32 else _lib.kan_sparse_forward_f64
    if fn(x.data_ptr(), B, I, O, t0.data_ptr(), inv_h.data_ptr(), k, K, M.data_ptr(),
          Wt.data_ptr(), int(silu), y.data_ptr(), nt) < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")
    return y


def sparse_backward(g, x, t0, inv_h, k: int, K: int, M, dM, Wt, silu: bool, need_x: bool,
                    need_w: bool, threads: int | None = None):
    """``(∂L/∂x or None, ∂L/∂Wt or None)`` of :func:`sparse_forward` for the output gradient
    ``g`` (B, O) contiguous, without building F or ∂L/∂F."""
    B, I = x.shape
    O = Wt.shape[2]
    gx = torch.empty_like(x) if need_x else None
    gWt = torch.empty_like(Wt) if need_w else None
    nt = threads_for(threads)
    fn = _lib.kan_sparse_backward_f32 if x.dtype == torch.float32 else _lib.kan_sparse_backward_f64
    if fn(g.data_ptr(), x.data_ptr(), B, I, O, t0.data_ptr(), inv_h.data_ptr(), k, K,
          M.data_ptr(), dM.data_ptr(), Wt.data_ptr(), int(silu),
          gx.data_ptr() if need_x else None, gWt.data_ptr() if need_w else None, nt) < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")
    return gx, gWt


def param_grads(gW, coef, scale_spline, mask, input_major: bool):
    """``(∂L/∂c, ∂L/∂w^b, ∂L/∂w^s)`` from ∂L/∂W in one C pass (the chain rule through the packed
    weight, no temporaries): ``gW`` is (I, K+1, O) (the sparse route's, ``input_major``) or
    (O, K+1, I) (:func:`pack_weights`' layout). None when the tensors are not all contiguous CPU
    tensors of one float dtype."""
    if not _same_cpu((gW, coef, scale_spline, mask), coef.dtype):
        return None
    O, I, K = coef.shape
    strides = (1, O, (K + 1) * O) if input_major else ((K + 1) * I, I, 1)  # (o, j, i)
    gc = torch.empty_like(coef)
    gsb = torch.empty_like(scale_spline)
    gss = torch.empty_like(scale_spline)
    fn = _lib.kan_param_grads_f32 if coef.dtype == torch.float32 else _lib.kan_param_grads_f64
    fn(gW.data_ptr(), *strides, coef.data_ptr(), scale_spline.data_ptr(), mask.data_ptr(), O, I,
       K, gc.data_ptr(), gsb.data_ptr(), gss.data_ptr())
    return gc, gsb, gss
