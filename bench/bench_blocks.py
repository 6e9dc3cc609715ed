"""Cost of the teaching layer: nl.Dense (explicit §2.7 backward) vs nn.Linear + autograd.

Times one forward + backward pass (median of interleaved repeats; CPU time of this process on
CPU, wall time on GPU) for three contenders:
  dense     nl.Dense: custom autograd.Function with the analytic f' of nnlab.activations
  autograd  nn.Linear followed by nl.activation(name): autograd differentiates f itself
  torch     nn.Linear followed by PyTorch's own activation module (fused native kernels)
and checks the three agree. Also times nl.logic.separable_boolean_functions(3).

    PYTHONPATH=src python bench/bench_blocks.py [--device cuda] [--repeats 30]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

import nnlab as nl

TORCH_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "mish": nn.Mish, "elu": nn.ELU}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _step(model: nn.Module, x: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()


def bench(act: str, batch: int, width: int, device: str, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    dense = nl.Dense(width, width, activation=act).to(device)
    lin = nn.Linear(width, width).to(device)
    with torch.no_grad():
        lin.weight.copy_(dense.A.T)
        lin.bias.copy_(dense.b)
    models = {"dense": dense, "autograd": nn.Sequential(lin, nl.activation(act)),
              "torch": nn.Sequential(lin, TORCH_ACTS[act]())}
    x = torch.randn(batch, width, device=device)
    outs = {k: m(x) for k, m in models.items()}
    for k in outs:
        torch.testing.assert_close(outs[k], outs["dense"], rtol=1e-4, atol=1e-5)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(3):
        for m in models.values():
            _step(m, x)
    _sync(device)
    # on the shared CPU machine wall time mostly measures other people's jobs: use this
    # process's CPU time there (1 thread), wall time on a GPU
    clock = time.process_time if device == "cpu" else time.perf_counter
    for _ in range(repeats):
        for k, m in models.items():  # interleaved
            t = clock()
            for _ in range(10):
                _step(m, x)
            _sync(device)
            times[k].append((clock() - t) / 10)
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    dev = args.device
    name = torch.cuda.get_device_name() if dev == "cuda" else f"{platform.machine()} CPU, 1 thread"
    print(f"device: {name}; torch {torch.__version__}")
    print("| activation | batch x width | nl.Dense (µs) | Linear+nl.activation autograd (µs) "
          "| Linear+torch activation (µs) | Dense / torch |")
    print("|---|---|---|---|---|---|")
    sizes = [(64, 64), (256, 256)] if dev == "cpu" else [(256, 256), (4096, 1024)]
    for act in ["relu", "tanh", "mish"]:
        for batch, width in sizes:
            r = bench(act, batch, width, dev, args.repeats)
            print(f"| {act} | {batch} x {width} | {r['dense']:.1f} | {r['autograd']:.1f} | "
                  f"{r['torch']:.1f} | {r['dense'] / r['torch']:.2f} |")
    if dev == "cpu":
        t = time.perf_counter()
        n = len(nl.logic.separable_boolean_functions(3))
        print(f"\nseparable_boolean_functions(3): {n} of 256 in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
