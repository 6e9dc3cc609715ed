"""§2.9: a bottleneck n → k → m has k(n + m) weights instead of nm; truncated SVD is the best rank k.

Left: parameter counts of the full matrix and of the low-rank pair; they cross at
k* = nm/(n + m). Right: the error ‖W − W_k‖_F of nl.LowRank.from_dense (truncated SVD) on a
matrix with a decaying spectrum equals sqrt(Σ_{i>k} s_i²), the Eckart–Young optimum, and a
random rank-k factorisation fitted by least squares is never better.

    python examples/low_rank.py [--fast] [--out figures]
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

import nnlab as nl
from _common import parse_args, save


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    n, m = (48, 32) if args.fast else (256, 128)
    g = torch.Generator().manual_seed(args.seed)
    U, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, m, generator=g, dtype=torch.float64))
    s_true = 0.8 ** torch.arange(m, dtype=torch.float64)
    W = (U * s_true) @ V.T  # (out=m, in=n), singular values 0.8^i
    s = torch.linalg.svdvals(W)
    ks = list(range(1, m))
    svd_err, optimum, random_err = [], [], []
    for k in ks:
        lr = nl.LowRank.from_dense(W, k)
        svd_err.append(float(torch.linalg.norm(W - lr.weight.detach())))
        optimum.append(float(s[k:].pow(2).sum().sqrt()))
        P = torch.randn(n, k, generator=g, dtype=torch.float64)  # a random down-projection, best up
        B = torch.linalg.lstsq(P.T @ P, (W @ P).T).solution.T
        random_err.append(float(torch.linalg.norm(W - B @ P.T)))
    full = n * m
    low = [k * (n + m) for k in ks]
    k_star = full / (n + m)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    a1.plot(ks, low, label="k(n+m): n→k→m")
    a1.axhline(full, color="k", ls="--", label="nm: n→m")
    a1.axvline(k_star, color="0.6", ls=":", label=f"k* = nm/(n+m) = {k_star:.1f}")
    a1.set(xlabel="rank k", ylabel="weights", title=f"§2.9 parameter count (n={n}, m={m})")
    a1.legend()
    a2.semilogy(ks, svd_err, label="nl.LowRank.from_dense (SVD)")
    a2.semilogy(ks, optimum, "k--", label="Eckart–Young sqrt(Σ_{i>k} s_i²)")
    a2.semilogy(ks, random_err, label="random projection + least squares")
    a2.set(xlabel="rank k", ylabel="‖W − W_k‖_F", title="approximation error")
    a2.legend()
    save(fig, args.out, "low_rank.png")
    gap = max(abs(a - b) for a, b in zip(svd_err, optimum))
    print(f"claim: k(n+m) < nm exactly when k < {k_star:.1f}; SVD error = optimum (max gap {gap:.1e}); "
          f"random factorisation worse at every k: {all(r >= e - 1e-9 for r, e in zip(random_err, svd_err))}")
    return {"k_star": k_star, "gap": gap, "svd_err": svd_err, "random_err": random_err,
            "n_params": {k: nl.LowRank(n, m, k, bias=False).n_params for k in (1, int(k_star), m - 1)}}


if __name__ == "__main__":
    main()
