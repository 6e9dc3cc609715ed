"""Saving and loading a KAN: ``config.json`` (constructor arguments) + ``model.safetensors``.

Both files are written atomically through :mod:`nnlab._io`; nothing is pickled.
"""
from __future__ import annotations

import os
from pathlib import Path

from .._io import load_tensors, read_json_object, save_tensors, write_json

__all__ = ["save", "load", "FORMAT"]

FORMAT = "nnlab.kan/1"


def save(model, path: str | os.PathLike) -> None:
    """Write ``model`` to the folder ``path`` (created if needed)."""
    if any(layer.symbolic is not None for layer in model.layers):
        raise ValueError("this KAN has symbolic edges (layer.symbolic set), which save() cannot "
                         "store; save the spline model before fixing symbolic functions, or save "
                         "the symbolic formula itself")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder; KAN.save writes a folder")
    cfg = dict(model.config, grid=model.grid)
    save_tensors(path / "model.safetensors", model.state_dict(), metadata={"format": FORMAT})
    write_json(path / "config.json", {"format": FORMAT, "config": cfg})


def load(path: str | os.PathLike):
    """Read a KAN saved by :func:`save`."""
    from .model import KAN

    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no KAN at {path}: {cfg_file} is missing (expected a folder "
                                "written by KAN.save)")
    meta = read_json_object(cfg_file)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{cfg_file} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{cfg_file} is damaged: 'config' must be a JSON object")
    try:
        model = KAN(**meta["config"])
        model.load_state_dict(load_tensors(path / "model.safetensors"))
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"the KAN in {path} does not match its {cfg_file.name}: {e}") from None
    return model
