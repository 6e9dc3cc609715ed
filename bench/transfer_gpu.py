"""GPU check for nl.lora (issue 5): correctness on CUDA and a LoRA training step, ours vs PEFT.

Runs on a machine with a CUDA GPU, torch, transformers and peft. The encoder is a BERT with
all-MiniLM-L6-v2's shape (6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522) and random
weights: the sentence-encoder package is not on that machine, and step time does not depend on
the weight values. Checks: injected == base, ours == PEFT given the same A and B, merged ==
unmerged, adapter save/load round trip from CUDA tensors; then interleaved step timings
(forward, cross-entropy, backward, Adam) in float32 and under bf16 autocast.

    PYTHONPATH=src python bench/transfer_gpu.py --out bench/results/transfer_gpu.json
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import nnlab as nl


class MeanPooled(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).long()
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default="")
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a smoke run)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device (use --device cpu for a smoke run)")
    import peft
    from transformers import BertConfig, BertModel

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    encoder = MeanPooled(BertModel(cfg, add_pooling_layer=False)).to(dev).eval()
    head = nn.Linear(384, 4).to(dev)
    base = nl.transfer.attach_head(encoder, head)
    ids = torch.randint(1000, 30000, (args.batch, args.tokens), device=dev)
    y = torch.randint(0, 4, (args.batch,), device=dev)
    report: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
                    "peft": peft.__version__, "batch": args.batch, "tokens": args.tokens}

    ours = nl.lora.inject(copy.deepcopy(base), rank=8, alpha=16, targets=r"extractor\..*")
    nl.transfer.unfreeze(ours, "head")
    with torch.no_grad():
        report["injected_vs_base"] = float((ours(ids) - base(ids)).abs().max())
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "key", "value", "dense"]))
    for p in theirs.base_model.model.head.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        for name, layer in nl.lora.lora_layers(ours):
            layer.lora_B.normal_(0, 0.02)
            peer = theirs.base_model.model.get_submodule(name)
            peer.lora_A["default"].weight.copy_(layer.lora_A)
            peer.lora_B["default"].weight.copy_(layer.lora_B)
        report["ours_vs_peft"] = float((ours(ids) - theirs(ids)).abs().max())
        merged = nl.lora.merge(ours)
        report["merged_vs_unmerged"] = float((merged(ids) - ours(ids)).abs().max())
        ref = ours(ids)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adapter.safetensors"
        nl.lora.save_adapter(ours, path, include="head")
        report["adapter_bytes"] = path.stat().st_size
        fresh = nl.lora.load_adapter(copy.deepcopy(base), path)
        with torch.no_grad():
            report["adapter_round_trip"] = float((fresh(ids) - ref).abs().max())
    report["trainable_ours"] = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    report["trainable_peft"] = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    print(json.dumps(report, indent=1), flush=True)

    for mode in ("float32", "bf16-autocast"):
        opts = {id(m): torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
                for m in (ours, theirs)}

        def step(m: nn.Module) -> float:
            m.train()
            opt = opts[id(m)]
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=mode != "float32"):
                loss = F.cross_entropy(m(ids), y)
            loss.backward()
            opt.step()
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - t0

        for _ in range(5 if cuda else 1):
            step(ours)
            step(theirs)
        t_o, t_t = [], []
        for i in range(args.steps):
            pair = [(ours, t_o), (theirs, t_t)]
            for m, acc in (pair if i % 2 == 0 else pair[::-1]):
                acc.append(step(m))
        ratios = [a / b for a, b in zip(t_o, t_t)]
        report[mode] = {"ours_ms": 1000 * statistics.median(t_o), "peft_ms": 1000 * statistics.median(t_t),
                        "median_ratio": statistics.median(ratios), "steps": args.steps}
        print(mode, json.dumps(report[mode]), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
