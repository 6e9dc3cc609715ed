"""nnlab: the deep-learning lecture as tools you can use (``import nnlab as nl``).

The public API, section by section of the lecture:

§1 Training: empirical and held-out risk
    fit, History, TrainState, callbacks (early stopping, best checkpoints, TensorBoard, CSV),
    data (toy sets, digits, CSV)
§2 Neurons, layers, backpropagation
    logic (threshold neurons, XOR, linear separability), Dense (explicit §2.7 backward),
    LowRank (§2.9 bottleneck), MLP, init (Xavier/He), clip (global-norm and per-element),
    diagnostics (per-layer gradient norms)
§3 Activations
    activation(name), activations (derivatives, sympy forms, names())
§4 Residual connections and auxiliary heads
    Residual, AuxiliaryHeads
§5 Reusing and shrinking trained models
    transfer (freeze, feature extractor, fine-tuning, layer-wise training), lora, prune
§6 Kolmogorov-Arnold Networks and symbolic regression
    KAN, KANLayer, MultKAN (multiplication nodes), kan (splines, grid, plots), symbolic, SymbolicRegressor
Tools
    save_model / load_model (models_io), export (ONNX, torch.export), runs (run folders);
    the ``nnlab`` command line
"""
from __future__ import annotations

__version__ = "0.1.0"

# §2-§4 building blocks
from . import activations, clip, diagnostics, init, logic
from .activations import activation
from .layers import MLP, Dense, LowRank, Residual, Standardize, Standardized
from .layers.auxiliary import AuxiliaryHeads

# §1 training and data
from . import data
from .training import History, TrainState, fit
from . import callbacks

# §5 transfer learning, LoRA, pruning
from . import lora, prune, transfer

# §6 KANs and symbolic regression (``symbolic`` loads sympy/scipy: imported on first use)
from . import kan
from .kan import KAN, KANLayer, MultKAN

# saved models and run folders (used by the CLI)
from . import export, models_io, runs
from .models_io import load_model, save_model

_LAZY = {"symbolic": ("nnlab.symbolic", None), "SymbolicRegressor": ("nnlab.symbolic", "SymbolicRegressor")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = getattr(value, attr) if attr else value
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    # §1
    "fit", "History", "TrainState", "data", "callbacks",
    # §2-§4
    "logic", "Dense", "LowRank", "MLP", "Residual", "AuxiliaryHeads", "init", "clip",
    "Standardize", "Standardized",
    "diagnostics", "activation", "activations",
    # §5
    "transfer", "lora", "prune",
    # §6
    "KAN", "KANLayer", "MultKAN", "kan", "symbolic", "SymbolicRegressor",
    # tools
    "models_io", "runs", "save_model", "load_model", "export",
]
