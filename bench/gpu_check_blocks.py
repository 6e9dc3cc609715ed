"""Device check for the §2–§4 blocks on CUDA (run where a GPU exists; CI has none).

Each block runs on the GPU and is compared with the same computation on the CPU or with
PyTorch's own implementation; prints one line per check and exits non-zero on the first failure.

    PYTHONPATH=src python bench/gpu_check_blocks.py
"""
from __future__ import annotations

import torch
from torch import nn

import nnlab as nl
from nnlab.layers.dense import DenseFunction


def check(name: str, ok: bool) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}", flush=True)
    if not ok:
        raise SystemExit(1)


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    dev = torch.device("cuda")
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
    names = [n for n in nl.activations.names() if nl.activations.get(n).differentiable]

    # activations: derivative on GPU == autograd on GPU == derivative on CPU
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64, device=dev)
    for n in nl.activations.names():
        xg = x.clone().requires_grad_(True)
        out = nl.activations.get(n).fn(xg)
        auto = torch.autograd.grad(out.sum(), xg)[0] if out.requires_grad else None  # step: no graph
        d = nl.activations.derivative(n, x)
        same_cpu = torch.allclose(d.cpu(), nl.activations.derivative(n, x.cpu()), rtol=1e-12, atol=1e-14)
        check(f"activation {n}: analytic == autograd on cuda, == cpu",
              (n == "step" or torch.allclose(d, auto, rtol=1e-10, atol=1e-12)) and same_cpu)

    # Dense: gradcheck on cuda (float64) for every differentiable activation; module on cuda
    for n in names:
        torch.manual_seed(0)
        layer = nl.Dense(6, 5, activation=n).double().to(dev)
        X = torch.randn(7, 6, dtype=torch.float64, device=dev, requires_grad=True)
        a = layer.activation
        ok = torch.autograd.gradcheck(DenseFunction.apply,
                                      (X, layer.A, layer.b, a.spec, a.static, *a.learnable_params()))
        check(f"Dense gradcheck on cuda: {n}", ok)
    torch.manual_seed(0)
    cpu_layer = nl.Dense(64, 32, activation="prelu")
    gpu_layer = nl.Dense(64, 32, activation="prelu").to(dev)
    gpu_layer.load_state_dict(cpu_layer.state_dict())
    X = torch.randn(128, 64)
    cpu_layer(X).pow(2).sum().backward()
    gpu_layer(X.to(dev)).pow(2).sum().backward()
    check("Dense(prelu) cuda grads == cpu grads (A, b, alpha)",
          all(torch.allclose(p.grad.cpu(), q.grad, rtol=1e-4, atol=1e-4)
              for p, q in zip(gpu_layer.parameters(), cpu_layer.parameters())))
    try:
        gpu_layer(X)
        check("Dense rejects a cpu input for cuda weights", False)
    except (RuntimeError, ValueError, TypeError) as e:
        check(f"Dense with cpu input on cuda layer raises ({type(e).__name__})", True)

    # MLP + diagnostics on cuda: same ordering and values (float64) as on cpu
    torch.manual_seed(0)
    mlp = nl.MLP([8] + [16] * 19 + [1], activation="sigmoid", init="xavier", residual=True,
                 batchnorm=True).double()
    xs, ys = torch.randn(64, 8, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    g_cpu = nl.diagnostics.gradient_norms(mlp, xs, ys, "mse")
    g_gpu = nl.diagnostics.gradient_norms(mlp.to(dev), xs.to(dev), ys.to(dev), "mse")
    check("gradient_norms cuda == cpu (20-layer residual+BN MLP)",
          list(g_cpu) == list(g_gpu)
          and all(abs(g_cpu[k] - g_gpu[k]) <= 1e-8 * max(1.0, g_cpu[k]) for k in g_cpu))
    check("MLP[:-1] feature extractor on cuda", mlp[:-1](xs.to(dev)).shape == (64, 16))

    # LowRank.from_dense on cuda: Eckart–Young error
    lin = nn.Linear(300, 200).double().to(dev)
    lr = nl.LowRank.from_dense(lin, 20)
    s = torch.linalg.svdvals(lin.weight.detach())
    err = (lin.weight - lr.weight).detach().pow(2).sum()
    check("LowRank.from_dense on cuda: ||W-W_k||_F^2 == sum of tail sigma^2",
          lr.up.weight.is_cuda and torch.allclose(err, s[20:].pow(2).sum(), rtol=1e-8))

    # init on cuda: variances
    w = torch.empty(2000, 1000, device=dev)
    v_he = nl.init.he_(w).var().item() / (2 / 1000)
    v_xa = nl.init.xavier_(w, "normal").var().item() / (2 / 3000)
    check(f"init on cuda: he var ratio {v_he:.4f}, xavier var ratio {v_xa:.4f}",
          abs(v_he - 1) < 0.01 and abs(v_xa - 1) < 0.01)

    # clipping on cuda == torch.nn.utils
    def params(seed: int) -> list[nn.Parameter]:
        g = torch.Generator(device=dev).manual_seed(seed)
        ps = [nn.Parameter(torch.zeros(50, 40, device=dev)), nn.Parameter(torch.zeros(40, device=dev))]
        for p in ps:
            p.grad = 5 * torch.randn(p.shape, generator=g, device=dev)
        return ps
    a, b = params(1), params(1)
    n1, n2 = nl.clip.global_norm_(a, 1.0), torch.nn.utils.clip_grad_norm_(b, 1.0)
    check("clip.global_norm_ on cuda == clip_grad_norm_",
          torch.allclose(n1, n2) and all(torch.allclose(p.grad, q.grad, atol=1e-6) for p, q in zip(a, b)))
    a, b = params(2), params(2)
    nl.clip.value_(a, 0.5)
    torch.nn.utils.clip_grad_value_(b, 0.5)
    check("clip.value_ on cuda == clip_grad_value_", all(torch.equal(p.grad, q.grad) for p, q in zip(a, b)))
    print("all device checks passed")


if __name__ == "__main__":
    main()
