"""nnlab: the deep-learning lecture as tools you can use.

The public API, section by section of the lecture (``import nnlab as nl``).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

# §4.1, §5.1-5.4: auxiliary heads, transfer learning, fine-tuning, LoRA, layer-wise training
from . import lora, transfer  # noqa: E402
from .layers.auxiliary import AuxiliaryHeads  # noqa: E402

__all__ += ["lora", "transfer", "AuxiliaryHeads"]
