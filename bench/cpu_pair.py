"""How much slower one single-threaded job runs while another runs on the other core (issue 12's
ceiling for ``n_jobs=2``): the same fixed job (a surrogate fit of the decomposition, 1 torch thread,
~1-2 s) run alone, then two copies at once in two processes, interleaved, ``--repeats`` times.

If the two logical CPUs were independent cores, a pair would take as long as one job alone (ratio
1.0) and two workers could approach 2x; a ratio r caps the speed-up of two workers at 2 / r.

    flock /tmp/nnlab-timing.lock python bench/cpu_pair.py --repeats 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

JOB = r"""
import time, numpy as np, torch
torch.set_num_threads(1)
from nnlab.symbolic.surrogate import fit_surrogate
rng = np.random.default_rng(0)
X = rng.uniform(1, 5, (500, 4)); y = X[:, 0] * np.cos(X[:, 1] * X[:, 2]) + X[:, 3]
fit_surrogate(X, y, steps=50)  # warm
t, c = time.perf_counter(), time.process_time()
fit_surrogate(X, y, steps=1500)
print(time.perf_counter() - t, time.process_time() - c)
"""


def run(k: int) -> list[tuple[float, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", JOB], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(k)]
    return [tuple(float(v) for v in p.communicate()[0].split()) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    alone, pair = [], []
    for _ in range(args.repeats):
        load = os.getloadavg()[0]
        alone += run(1)
        pair += run(2)
        print(f"load {load:.2f}  alone {alone[-1][0]:.3f} s (cpu {alone[-1][1]:.3f})  "
              f"pair {pair[-2][0]:.3f} / {pair[-1][0]:.3f} s", flush=True)
    a = statistics.median(w for w, _ in alone)
    p = statistics.median(w for w, _ in pair)
    print(f"median wall: alone {a:.3f} s, in a pair {p:.3f} s, ratio {p / a:.2f} "
          f"(two workers at most {2 * a / p:.2f}x); load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
