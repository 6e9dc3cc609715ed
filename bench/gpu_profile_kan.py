"""Where a KAN training step spends its time on a GPU: host enqueue time vs GPU busy time and launches per
step, nnlab against the GEMM floor (issue 14: the layer was launch-bound).

    PYTHONPATH=src python bench/gpu_profile_kan.py
"""
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import nnlab as nl

sys.path.insert(0, str(Path(__file__).parent))
from gpu_check_kan import Floor  # noqa: E402  (the same floor as the device check)

for B, I, O, G in [(1024, 64, 64, 5), (4096, 256, 256, 5)]:
    for name in ("floor", "nnlab"):
        m = (Floor(B, I, O, G) if name == "floor" else nl.KANLayer(I, O, grid=G, k=3)).cuda()
        x = (torch.rand(B, I, device="cuda") * 2 - 1).requires_grad_()
        gy = torch.randn(B, O, device="cuda")
        def fb():
            for p in m.parameters():
                p.grad = None
            x.grad = None
            m(x).backward(gy)
        for _ in range(20):
            fb()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(100):
            fb()
        host = (time.perf_counter() - t0) / 100 * 1e3
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / 100 * 1e3
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                fb()
            torch.cuda.synchronize()
        ka = prof.key_averages()
        gpu_ms = sum(e.self_device_time_total for e in ka) / 5 / 1e3
        launches = sum(e.count for e in ka if e.key in ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cuLaunchKernel")) / 5
        print(f"== ({B},{I}->{O},{G}) {name} fwd+bwd: host {host:.3f} ms/step, wall {wall:.3f}, GPU busy {gpu_ms:.3f}, launches/step {launches:.0f}", flush=True)
        if name == "nnlab" and B == 1024:
            print(ka.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=50))
