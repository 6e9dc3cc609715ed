"""Device check for the KAN layer on CUDA (CI has no GPU): values and gradients on the GPU
equal the CPU float64 reference, and forward+backward time against the equivalent GEMM floor.

    PYTHONPATH=src python bench/gpu_check_kan.py
"""
from __future__ import annotations

import torch
from torch import nn

import nnlab as nl


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
    torch.manual_seed(0)
    layer = nl.KANLayer(16, 8, grid=7, k=3)
    x = torch.rand(512, 16) * 2.4 - 1.2  # some points outside the grid too
    ref = layer.double()
    xr = x.double().requires_grad_()
    yr = ref(xr)
    yr.square().sum().backward()
    cu = nl.KANLayer(16, 8, grid=7, k=3)
    cu.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    cu = cu.cuda()
    xc = x.cuda().requires_grad_()
    yc = cu(xc)
    yc.square().sum().backward()
    dy = (yc.double().cpu() - yr.detach()).abs().max().item()
    dg = (xc.grad.double().cpu() - xr.grad).abs().max().item() / xr.grad.abs().max().item()
    print(f"{'ok  ' if dy < 1e-4 else 'FAIL'} forward on cuda vs cpu float64: max |diff| {dy:.2e}")
    print(f"{'ok  ' if dg < 1e-4 else 'FAIL'} dL/dx on cuda vs cpu float64: max rel diff {dg:.2e}")
    model = nl.KAN([2, 5, 1], grid=5, seed=0).cuda()
    X = torch.rand(1024, 2, device="cuda") * 2 - 1
    Y = torch.exp(torch.sin(torch.pi * X[:, :1]) + X[:, 1:] ** 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    l0 = None
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(X), Y)
        loss.backward()
        opt.step()
        l0 = l0 if l0 is not None else loss.item()
    print(f"{'ok  ' if loss.item() < 0.1 * l0 else 'FAIL'} KAN trains on cuda: mse {l0:.3g} -> {loss.item():.3g}")

    for B, I, O, G in [(1024, 64, 64, 5), (4096, 256, 256, 5), (1024, 64, 64, 20), (256, 2, 5, 5)]:
        lay = nl.KANLayer(I, O, grid=G, k=3).cuda()
        floor = nn.Linear(I * (G + 3 + 1), O).cuda()
        xin = (torch.rand(B, I, device="cuda") * 2 - 1).requires_grad_()
        fin = torch.randn(B, I * (G + 4), device="cuda", requires_grad=True)
        def step(f, a):
            f(a).sum().backward()
        times = {}
        for name, f, a in [("nnlab", lay, xin), ("gemm floor", floor, fin)]:
            for _ in range(10):
                step(f, a)
            torch.cuda.synchronize()
            ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            ev0.record()
            for _ in range(50):
                step(f, a)
            ev1.record()
            torch.cuda.synchronize()
            times[name] = ev0.elapsed_time(ev1) / 50
        print(f"cuda fwd+bwd ({B}, {I}->{O}, G={G}): nnlab {times['nnlab']:.3f} ms, floor "
              f"{times['gemm floor']:.3f} ms, ratio {times['nnlab'] / times['gemm floor']:.2f}")


if __name__ == "__main__":
    main()
