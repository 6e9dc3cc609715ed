"""The decomposition's surrogate fit: torch (``torch.optim.LBFGS`` + autograd, the former path through
``nnlab.symbolic.train.train_lbfgs``) against ``nnlab.symbolic.tanh_mlp.fit_tanh_mlp`` (NumPy forward and
backward, SciPy's L-BFGS-B), on the surrogate problems of Feynman equations.

Both start from the same torch-initialised MLP [n, 32, 32, 1] (seed 0) on the same inputs (log|x| of
fixed-sign columns mapped to [-1, 1], standardised y, 500 rows of which a fifth held out), and run the
same 1500 L-BFGS iterations with 20 correction pairs, then 250 on every row, as ``fit_surrogate``.
One torch thread and one BLAS thread, flush-denormal on; the two contenders alternate per equation
and per repeat (interleaved), medians reported. The error is the held-out relative RMSE after the first
1500 iterations (what ``fit_surrogate`` reports as ``error``).

    python bench/tanh_mlp_fit.py                 # 12 equations of the public set, 3 repeats
    python bench/tanh_mlp_fit.py --ids I.13.4,I.29.16 --repeats 5
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from feynman import load_equations, sample  # noqa: E402
from symbolic_scale import DEFAULT_CSV  # noqa: E402

from nnlab.symbolic.surrogate import _mlp  # noqa: E402
from nnlab.symbolic.tanh_mlp import fit_tanh_mlp  # noqa: E402
from nnlab.symbolic.train import train_lbfgs  # noqa: E402

DEFAULT_IDS = ("I.6.2b,I.13.4,I.15.3t,I.26.2,I.29.16,I.30.3,I.50.26,II.11.17,III.10.19,I.32.17,I.40.1,"
               "III.4.32")


def problem(eq: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The surrogate's inputs and standardised target, as ``fit_surrogate`` (log inputs, seed 0)."""
    X, y = sample(eq, 500, 0)
    signs = np.where(X.min(axis=0) > 0, 1.0, np.where(X.max(axis=0) < 0, -1.0, 0.0))
    with np.errstate(all="ignore"):
        V = np.where(signs != 0, np.log(np.abs(X)), X)
    lo, hi = V.min(axis=0), V.max(axis=0)
    U = 2 * (V - lo) / np.where(hi > lo, hi - lo, 1.0) - 1
    perm = np.random.default_rng(0).permutation(len(y))
    va, tr = perm[:len(y) // 5], perm[len(y) // 5:]
    T = ((y - y[tr].mean()) / y[tr].std())[:, None]
    return U, T, tr, va, y


def held_out(net: torch.nn.Module, U: np.ndarray, T: np.ndarray, va: np.ndarray, y: np.ndarray, y_std: float) -> float:
    with torch.no_grad():
        pred = net(torch.from_numpy(U[va])).numpy()
    return float(np.sqrt(np.mean((pred - T[va]) ** 2))) * y_std / float(np.sqrt(np.mean(y ** 2)))


def run(way: str, U, T, tr, va, y) -> tuple[float, float]:
    net = _mlp(U.shape[1], 32, 0)
    t0 = time.perf_counter()
    if way == "torch":
        Ut, Tt = torch.from_numpy(U), torch.from_numpy(T)
        train_lbfgs(net, Ut[tr], Tt[tr], steps=1500)
        err = held_out(net, U, T, va, y, float(y[tr].std()))
        train_lbfgs(net, Ut, Tt, steps=250)
    else:
        fit_tanh_mlp(net, U[tr], T[tr], 1500)
        err = held_out(net, U, T, va, y, float(y[tr].std()))
        fit_tanh_mlp(net, U, T, 250)
    return time.perf_counter() - t0, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ids", default=DEFAULT_IDS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    threadpool_limits(1)
    want = args.ids.split(",")
    eqs = [e for e in load_equations(Path(DEFAULT_CSV)) if e["id"] in want]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"CPU: {cpu}; torch {torch.__version__}, 1 thread; command: python bench/tanh_mlp_fit.py "
          f"--ids {args.ids} --repeats {args.repeats}\n")
    print("| equation | torch s | nnlab s | speed-up | torch held-out error | nnlab held-out error |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for i, eq in enumerate(eqs):
        U, T, tr, va, y = problem(eq)
        got: dict[str, list[tuple[float, float]]] = {"torch": [], "nnlab": []}
        for r in range(args.repeats):
            order = ("torch", "nnlab") if (i + r) % 2 == 0 else ("nnlab", "torch")
            for way in order:
                got[way].append(run(way, U, T, tr, va, y))
        ts = {w: statistics.median(t for t, _ in v) for w, v in got.items()}
        es = {w: v[0][1] for w, v in got.items()}
        ratios.append(ts["torch"] / ts["nnlab"])
        print(f"| {eq['id']} | {ts['torch']:.2f} | {ts['nnlab']:.2f} | {ratios[-1]:.2f}× | {es['torch']:.1e} | "
              f"{es['nnlab']:.1e} |")
    print(f"\nmedian speed-up {statistics.median(ratios):.2f}× over {len(ratios)} equations")


if __name__ == "__main__":
    main()
