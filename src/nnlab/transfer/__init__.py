"""Reusing trained models (lecture §5.1, §5.2, §5.4).

``freeze``: freezing and counting parameters; ``extractor``: the pretrained part A′ and a new head
B; ``finetune``: the two-phase recipe (head only, then everything with a smaller lr for A′);
``layerwise``: greedy layer-by-layer training. LoRA (§5.3) lives in :mod:`nnlab.lora`.

Example::

    import nnlab as nl
    body = nl.transfer.feature_extractor(pretrained)          # A′ = pretrained[:-1]
    model = nl.transfer.attach_head(body, 5)                   # A′ + B, B = Linear(width, 5)
    res = nl.transfer.finetune(model, (X, y), val, head_epochs=20, full_epochs=20)
    print(res.summary())                                       # trainable parameters per phase
"""
from __future__ import annotations

from .extractor import attach_head, feature_extractor, output_width
from .finetune import FinetuneResult, Phase, finetune, make_optimizer
from .freeze import (ParamCount, count_parameters, freeze, hold_batchnorm, select_parameters,
                     unfreeze)
from .layerwise import LayerwiseResult, Stage, layerwise_fit

__all__ = [
    "freeze", "unfreeze", "count_parameters", "ParamCount", "select_parameters", "hold_batchnorm",
    "feature_extractor", "attach_head", "output_width",
    "finetune", "FinetuneResult", "Phase", "make_optimizer",
    "layerwise_fit", "LayerwiseResult", "Stage",
]
