"""Pruning (lecture §5.5): masks, magnitude, OBD, OBS, residual blocks, neurons, recipes.

``import nnlab as nl``::

    nl.prune.magnitude(model, 0.9)                       # |a_i| criterion, global threshold
    nl.prune.obd(model, (X, y), "cross_entropy", 0.9)    # a_i²·H_ii/2
    nl.prune.obs(model, (X, y), sparsity=0.9)            # a_i²/[H⁻¹]_ii with δw compensation
    print(nl.prune.sparsity(model)); nl.prune.finalize(model)
    small, rep = nl.prune.neurons(model, speedup=2.0, example_input=X[:256], importance="obs", data=(X, y))
"""
from .gradual import cubic_schedule, gradual
from .magnitude import magnitude, random
from .masks import Sparsity, apply_mask, finalize, prune_by_scores, sparsity
from .obd import obd
from .obs import obs
from .groups import dependency_groups
from .residual import residual_blocks
from .shrink import flops, latency
from .finetuning import finetune
from .structured import neurons

__all__ = ["sparsity", "finalize", "magnitude", "random", "obd", "obs", "residual_blocks", "neurons", "gradual",
           "dependency_groups", "flops", "latency", "finetune",
           "cubic_schedule", "apply_mask", "prune_by_scores", "Sparsity"]
