"""Save and load trained models: ``model.safetensors`` (weights) + ``model.json`` (how to rebuild).

A model folder holds::

    model.json          {"format": "nnlab-model", "version": 1, "arch": "mlp"|"resnet"|"kan",
                         "kwargs": {...constructor arguments...}, "lora": null|{rank, alpha, targets},
                         "preprocess": null|{"standardize": {"mean": [...], "std": [...]}},
                         "meta": {...task, data config, metrics...}}
    model.safetensors   the state dict (MLP/ResNet), or the KAN's own files (``nl.KAN.save``)

``arch`` picks the constructor: ``mlp`` -> ``nl.MLP(**kwargs)``, ``resnet`` ->
``nl.MLP(**kwargs, residual=True)`` (§4.2), ``kan`` -> ``nl.KAN(**kwargs)`` (§6). The MLP's
``sizes`` are read back from its ``nn.Linear`` layers when saving, so a model whose hidden
units were pruned away (§5.5) reloads with its new, smaller shapes; residual blocks replaced by
their skip path are listed in ``kwargs["removed_blocks"]`` and removed again on load. A model
with LoRA adapters (§5.3) is saved with its adapter settings and re-injected on load.

Preprocessing is part of the model: a :class:`nnlab.layers.Standardized` model (the network
behind the input standardisation ``nnlab train`` applied to CSV features) is saved as its network
plus ``preprocess.standardize`` (μ, σ), and :func:`load_model` puts the :class:`Standardize` layer
back in front, so the loaded model takes raw features. (Older run folders recorded μ, σ only in
``meta.preprocess``; they are read from there.)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from nnlab.layers.standardize import Standardize, Standardized

from nnlab._io import load_tensors, read_json_object, save_tensors, write_json

__all__ = ["ARCHS", "build_model", "save_model", "load_model", "read_model_json", "mlp_sizes", "removed_blocks",
           "input_standardize"]

ARCHS = ("mlp", "resnet", "kan")
FORMAT, VERSION = "nnlab-model", 1


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Construct a fresh model: ``build_model("mlp", sizes=[2, 16, 2], activation="tanh")``."""
    import nnlab as nl

    if arch in ("mlp", "resnet"):
        kw = dict(kwargs)
        kw["residual"] = arch == "resnet"
        return nl.MLP(**kw)
    if arch == "kan":
        return nl.KAN(**kwargs)
    raise ValueError(f"unknown model {arch!r}; choose one of {', '.join(ARCHS)}")


def _first_linear(module: nn.Module) -> nn.Linear | None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m
        if hasattr(m, "base_layer") and isinstance(getattr(m, "base_layer"), nn.Linear):
            return m.base_layer  # a LoRA wrapper around an nn.Linear
    return None


def mlp_sizes(model: nn.Module) -> list[int]:
    """Layer widths ``[n_in, h_1, ..., n_out]`` read from each child's first ``nn.Linear``.

    A child without any (an ``nn.Identity`` left where a residual block was removed) keeps the width.
    """
    children = list(model.children())
    linears = [_first_linear(child) for child in children]
    if not children or linears[0] is None or linears[-1] is None:
        raise ValueError("the model is not an MLP of nn.Linear blocks; cannot save it as 'mlp'")
    sizes = [linears[0].in_features]
    for child, lin in zip(children, linears):
        if lin is None and not isinstance(child, nn.Identity):
            raise ValueError(f"cannot read the width of a {type(child).__name__} layer; "
                             "nnlab saves MLPs of nn.Linear blocks")
        sizes.append(sizes[-1] if lin is None else lin.out_features)
    return sizes


def removed_blocks(model: nn.Module) -> list[int]:
    """Indices of hidden children of a residual MLP that are no longer blocks (pruned to their skip, §5.5)."""
    return [i for i, child in enumerate(list(model.children())[:-1]) if not hasattr(child, "block")]


def square_projections(model: nn.Module) -> list[int]:
    """Hidden children of a residual MLP whose skip path is a learned square projection P (in = out width).

    ``nl.MLP`` only builds a projection where a block changes the width, so one left square by
    structured pruning (a stream narrowed to the input width, §5.5) must be recorded to reload."""
    out = []
    for i, child in enumerate(list(model.children())[:-1]):
        p = child if isinstance(child, nn.Linear) else getattr(child, "projection", None)
        lin = _first_linear(p) if isinstance(p, nn.Module) else None
        if lin is not None and lin.in_features == lin.out_features:
            out.append(i)
    return out


def _batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


def input_standardize(spec: Mapping[str, Any]) -> Standardize | None:
    """The :class:`Standardize` layer a saved model's inputs go through, or None."""
    pre = spec.get("preprocess") or (spec.get("meta") or {}).get("preprocess") or {}
    st = pre.get("standardize") if isinstance(pre, dict) else None
    if not st:
        return None
    try:
        return Standardize(st["mean"], st["std"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the input standardisation recorded with this model is damaged ({e})") from None


def save_model(model: nn.Module, folder: str | os.PathLike, arch: str, kwargs: Mapping[str, Any],
               meta: Mapping[str, Any] | None = None, lora: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` to ``folder`` (created; files written atomically). Returns the folder.

    A :class:`Standardized` model is saved as its network plus ``preprocess.standardize``; a bare
    network keeps the standardisation recorded in ``meta["preprocess"]`` (as ``nnlab train``,
    ``prune`` and ``lora`` pass it on)."""
    folder = Path(folder)
    pre = None
    if isinstance(model, Standardized):
        pre = {"standardize": model.standardize.as_dict()}
        model = model.net
    else:
        legacy = input_standardize({"meta": dict(meta or {})})
        pre = {"standardize": legacy.as_dict()} if legacy is not None else None
    _check_arch(model, arch)  # before anything is written: a wrong arch wrote files that never load
    folder.mkdir(parents=True, exist_ok=True)
    kw = dict(kwargs)
    if arch in ("mlp", "resnet"):
        kw["sizes"] = mlp_sizes(model)
        kw["batchnorm"] = _batchnorm(model)
        kw.pop("residual", None)
        kw.pop("removed_blocks", None)
        kw.pop("square_projections", None)
        if arch == "resnet" and removed_blocks(model):
            kw["removed_blocks"] = removed_blocks(model)
        if arch == "resnet" and square_projections(model):
            kw["square_projections"] = square_projections(model)
        save_tensors(folder / "model.safetensors", model.state_dict())
    elif arch == "kan":
        if lora:
            raise ValueError("LoRA adapters apply to nn.Linear layers; a KAN has none")
        model.save(folder / "kan")
        kw = {"width": [int(w) if not isinstance(w, (list, tuple)) else list(w) for w in model.width],
              **{k: v for k, v in kw.items() if k != "width"}}
    else:
        raise ValueError(f"unknown model {arch!r}; choose one of {', '.join(ARCHS)}")
    write_json(folder / "model.json", {"format": FORMAT, "version": VERSION, "arch": arch,
                                       "kwargs": kw, "lora": dict(lora) if lora else None,
                                       "preprocess": pre, "meta": dict(meta or {})})
    return folder


def _check_arch(model: nn.Module, arch: str) -> None:
    """``model`` must be what ``arch`` rebuilds: a KAN for 'kan', residual blocks (or what pruning
    left of them: an identity or a projection) for 'resnet', and none for 'mlp'."""
    if arch not in ARCHS:
        raise ValueError(f"unknown model {arch!r}; choose one of {', '.join(ARCHS)}")
    name = type(model).__name__
    if arch == "kan":
        if not (callable(getattr(model, "save", None)) and hasattr(model, "width")):
            raise ValueError(f"the model is a {name}, not a KAN; cannot save it as 'kan'")
        return
    hidden = list(model.children())[:-1]
    if arch == "mlp" and any(hasattr(c, "block") for c in hidden):
        raise ValueError("the model has residual blocks; save it as 'resnet', not 'mlp'")
    if arch == "resnet" and any(isinstance(c, nn.Sequential) and not hasattr(c, "block") for c in hidden):
        raise ValueError("the model's hidden blocks are plain (no skip connection); save it as 'mlp', "
                         "not 'resnet'")


def read_model_json(folder: str | os.PathLike) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a saved nnlab model (no model.json); "
                                "train one with `nnlab train` (it writes runs/<name>/model/)")
    spec = read_json_object(path)
    if spec.get("format") != FORMAT:
        raise ValueError(f"{path} is not an nnlab model file (format {spec.get('format')!r})")
    missing = [k for k in ("arch", "kwargs") if k not in spec]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; it is damaged")
    version = spec.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{path} has a bad format version {version!r}")
    if version > VERSION:
        raise ValueError(f"{path} was written by a newer nnlab (format version {spec['version']})")
    if spec["arch"] not in ARCHS or not isinstance(spec["kwargs"], dict) \
            or not isinstance(spec.get("meta") or {}, dict) or not isinstance(spec.get("lora") or {}, dict):
        raise ValueError(f"{path} is damaged: arch {spec['arch']!r} (one of {', '.join(ARCHS)}), "
                         "kwargs, meta and lora must be JSON objects")
    return spec


def load_model(folder: str | os.PathLike, preprocess: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model, spec)`` with the model in eval mode.

    ``folder`` may also be a run folder (its ``model/`` subfolder is used). When the model was
    trained behind an input standardisation, the returned model is a :class:`Standardized`
    that takes the raw features (as in the CSV); ``preprocess=False`` returns the bare network,
    which expects standardised inputs.
    """
    folder = Path(folder)
    if not (folder / "model.json").is_file() and (folder / "model" / "model.json").is_file():
        folder = folder / "model"
    spec = read_model_json(folder)
    arch = spec["arch"]
    if arch == "kan":
        import nnlab as nl

        model = nl.KAN.load(folder / "kan")
    else:
        kw = dict(spec["kwargs"])
        removed = kw.pop("removed_blocks", [])
        square = kw.pop("square_projections", [])
        try:
            model = build_model(arch, **kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{folder / 'model.json'} describes a model nnlab cannot build: {e}") from None
        for i in removed:  # a residual block pruned away: only its skip path x (or P(x)) is left
            proj = getattr(model[i], "projection", None)
            model[i] = proj if proj is not None else nn.Identity()
        for i in square:  # a skip projection P left square by structured pruning (in = out width)
            d = kw["sizes"][i]
            lin = nn.Linear(d, d, bias=False)
            if i in removed:
                model[i] = lin
            else:
                model[i].projection = lin
        if spec.get("lora"):
            import nnlab as nl

            nl.lora.inject(model, **spec["lora"])
        state = load_tensors(folder / "model.safetensors")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"weights in {folder} do not match the architecture in model.json: {e}") from None
    st = input_standardize(spec) if preprocess else None
    if st is not None:
        model = Standardized(st, model)
    model.eval()
    return model, spec
