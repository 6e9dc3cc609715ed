"""nnlab: the deep-learning lecture as tools you can use.

The public API, section by section of the lecture (``import nnlab as nl``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

# §2–§4 building blocks (branch `blocks`): activations, layers, init, clipping, logic, diagnostics
from . import activations, clip, diagnostics, init, logic  # noqa: E402
from .activations import activation  # noqa: E402
from .layers import MLP, Dense, LowRank, Residual  # noqa: E402

__all__ += ["activation", "activations", "init", "clip", "logic", "diagnostics",
            "Dense", "LowRank", "MLP", "Residual"]

# §1 Training: nl.fit(model, train, val, loss=..., optimizer=...) -> History; nl.data toy sets
from nnlab import data
from nnlab.training import History, TrainState, fit

__all__ += ["data", "fit", "History", "TrainState"]

# §4.1, §5.1-5.4: auxiliary heads, transfer learning, fine-tuning, LoRA, layer-wise training
from . import lora, transfer  # noqa: E402
from .layers.auxiliary import AuxiliaryHeads  # noqa: E402

__all__ += ["lora", "transfer", "AuxiliaryHeads"]

# Run folders, saved models and figures for the CLI (issue 7): nl.save_model / nl.load_model
from nnlab import models_io, runs  # noqa: E402
from nnlab.models_io import load_model, save_model  # noqa: E402

__all__ += ["models_io", "runs", "load_model", "save_model"]

# §6 Kolmogorov–Arnold Networks
from . import kan  # noqa: E402
from .kan import KAN, KANLayer  # noqa: E402

__all__ += ["kan", "KAN", "KANLayer"]

# §5.5 pruning: nl.prune.magnitude / obd / obs / residual_blocks / neurons / gradual / sparsity / finalize
from . import prune  # noqa: E402

__all__ += ["prune"]
