"""LoRA, low-rank adaptation of a frozen model (lecture §5.3): ``h' = W₀x + (alpha/r)·B·A·x``.

``config``: settings and the target-matching rule; ``layer``: :class:`LoRALinear`;
``inject``: wrapping layers and counting what trains; ``merge``: folding ΔW into W₀ and back;
``io``: adapter-only safetensors files.

Example::

    import nnlab as nl
    model = nl.lora.inject(model, rank=4, alpha=8, targets=["query", "value"])
    print(nl.lora.trainable_report(model))
    ...  # train
    nl.lora.save_adapter(model, "adapter.safetensors")
    plain = nl.lora.merge(model)  # an ordinary model with W₀ + ΔW
"""
from __future__ import annotations

from .config import LoRAConfig, select_linears
from .inject import TrainableReport, inject, lora_layers, trainable_report
from .io import load_adapter, save_adapter
from .layer import LoRALinear, lora_delta, lora_linear
from .merge import merge, unmerge

__all__ = [
    "LoRAConfig", "LoRALinear", "lora_delta", "lora_linear", "select_linears",
    "inject", "lora_layers", "trainable_report", "TrainableReport",
    "merge", "unmerge", "save_adapter", "load_adapter",
]
