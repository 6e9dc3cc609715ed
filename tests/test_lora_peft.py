"""Hugging Face PEFT as the oracle for our LoRA (PEFT is in the test extra: this runs in CI)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import peft  # the test extra installs it: this oracle test must run, not skip
from nnlab import lora


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Sequential(nn.Linear(10, 24), nn.ReLU()),
                         nn.Sequential(nn.Linear(24, 16), nn.Tanh()), nn.Linear(16, 4))


@pytest.mark.parametrize("rank,alpha,targets", [
    (1, 1.0, ["0.0"]),
    (2, 4.0, ["0.0", "1.0"]),
    (3, 16.0, ["0.0", "1.0", "2"]),
    (8, 8.0, ["0.0", "1.0"]),
])
def test_same_a_and_b_give_peft_outputs(rank, alpha, targets):
    base = mlp()
    ours = lora.inject(copy.deepcopy(base), rank=rank, alpha=alpha, targets=targets)
    cfg = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0)
    theirs = peft.get_peft_model(copy.deepcopy(base), cfg)
    g = torch.Generator().manual_seed(rank)
    with torch.no_grad():
        for name, layer in lora.lora_layers(ours):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g))
            peer = theirs.base_model.model.get_submodule(name)
            peer.lora_A["default"].weight.copy_(layer.lora_A)
            peer.lora_B["default"].weight.copy_(layer.lora_B)
    x = torch.randn(32, 10)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    ours_trainable = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    theirs_trainable = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    assert ours_trainable == theirs_trainable
    merged_ours = lora.merge(ours)
    merged_theirs = theirs.merge_and_unload()
    torch.testing.assert_close(merged_ours(x), merged_theirs(x), rtol=1e-5, atol=1e-5)
    for (n1, p1), (n2, p2) in zip(merged_ours.state_dict().items(), merged_theirs.state_dict().items()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
