"""GPU check for nl.fit (run on a CUDA machine): PYTHONPATH=src python bench/gpu_check_training.py

1. fit trains a model that lives on CUDA from CPU tensors (batches are moved to the model's device);
2. resume on CUDA with dropout is bit-for-bit the uninterrupted run (CUDA RNG state checkpointed);
3. distributed=True with one NCCL process (torchrun-style variables) follows the plain run.
Prints one PASS/FAIL line per check; exit code 1 if any fails.
"""
from __future__ import annotations

import os
import sys
import tempfile

import torch
from torch import nn

import nnlab as nl


def model(dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 2)).cuda()


def main() -> int:
    assert torch.cuda.is_available(), "no CUDA device"
    print(torch.__version__, torch.cuda.get_device_name())
    X, y = nl.data.toy("spiral", 512, noise=0.02, seed=0)
    ok = True

    m = model()
    h = nl.fit(m, (X, y), loss="cross_entropy", lr=0.03, epochs=200, batch_size=None, seed=0)
    acc = (m(X.cuda()).argmax(1).cpu() == y).float().mean().item()
    good = acc > 0.9 and h.train_loss[-1] < h.train_loss[0]
    ok &= good
    print(f"{'PASS' if good else 'FAIL'} fit on CUDA: train accuracy {acc:.3f}")

    with tempfile.TemporaryDirectory() as d:
        full_m = model(0.3)
        full = nl.fit(full_m, (X, y), loss="cross_entropy", lr=0.01, epochs=6, batch_size=64, seed=1)
        nl.fit(model(0.3), (X, y), loss="cross_entropy", lr=0.01, epochs=3, batch_size=64, seed=1,
               checkpoint_dir=d)
        torch.cuda.manual_seed_all(999)
        res_m = model(0.3, seed=5)
        res = nl.fit(res_m, (X, y), loss="cross_entropy", lr=0.01, epochs=6, batch_size=64, seed=1,
                     resume=d)
        good = res.as_dict() == full.as_dict() and all(
            torch.equal(a, b) for a, b in zip(full_m.state_dict().values(), res_m.state_dict().values()))
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} resume on CUDA with dropout is bit-for-bit")

    ref_m = model()
    ref = nl.fit(ref_m, (X, y), loss="cross_entropy", lr=0.01, epochs=3, batch_size=64, seed=2,
                 distributed=False)
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT="29517")
    ddp_m = model()
    ddp = nl.fit(ddp_m, (X, y), loss="cross_entropy", lr=0.01, epochs=3, batch_size=64, seed=2,
                 distributed=True)
    diff = max((a - b).abs().max().item() for a, b in zip(ref_m.state_dict().values(),
                                                          ddp_m.state_dict().values()))
    good = diff < 1e-4 and abs(ddp.train_loss[-1] - ref.train_loss[-1]) < 1e-4
    ok &= good
    print(f"{'PASS' if good else 'FAIL'} NCCL DDP (1 process) follows the plain run: max |Δw| {diff:.2e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
