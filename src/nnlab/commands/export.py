"""``nnlab export``: write a trained model as ONNX (or a ``torch.export`` program) for use outside nnlab."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import typer
from torch import nn

from nnlab.commands._common import CLIError, check_out_file, user_errors

__all__ = ["register", "FORMATS", "with_preprocessing"]

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}

HELP = (
    "Export a trained model (a run folder, its best/ checkpoint, or a model folder) for use outside "
    "nnlab.\n\n"
    "--format onnx writes an ONNX graph (input 'input': raw features (batch, n_features); output "
    "'output') that onnxruntime or any ONNX runtime runs; the input standardisation saved with a "
    "CSV model is part of the graph, and a KAN goes through an export-friendly path of the same "
    "maths. The export is checked with onnxruntime against torch on fresh inputs. --format pt2 "
    "writes a torch.export program (torch.export.load(path).module()).\n\n"
    "Example: nnlab export runs/spiral --format onnx --out spiral.onnx"
)


def with_preprocessing(model: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """``model`` with the saved input standardisation (x − μ)/σ in front, unless it already has it."""
    if any(type(m).__name__ == "Standardize" for m in model.modules()):
        return model  # load_model already put the standardisation layer in front
    pre = spec.get("preprocess") or (spec.get("meta") or {}).get("preprocess") or {}
    st = pre.get("standardize") if isinstance(pre, dict) else None
    if not st:
        return model
    mean = torch.as_tensor(st["mean"], dtype=torch.float32)
    std = torch.as_tensor(st["std"], dtype=torch.float32)
    affine = nn.Linear(len(mean), len(mean))  # (x − μ)/σ = diag(1/σ)·x − μ/σ
    with torch.no_grad():
        affine.weight.copy_(torch.diag(1.0 / std))
        affine.bias.copy_(-mean / std)
    return nn.Sequential(affine, model).eval()


def _export(model_path: Path, fmt: str, out: Optional[Path], check: bool) -> None:
    from nnlab import export
    from nnlab.models_io import load_model

    if fmt not in FORMATS:
        raise CLIError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out is not None:  # before the export's work, not after it
        check_out_file(out, example=f"model{FORMATS[fmt]}")
    model, spec = load_model(model_path)
    net = with_preprocessing(model, spec)
    n_in = _n_inputs(net, spec)
    folder = model_path if model_path.is_dir() else model_path.parent
    out = out or folder / f"model{FORMATS[fmt]}"
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(8, n_in, generator=gen)
    if fmt == "onnx":
        export.onnx(net, example, out)
        if check:
            fresh = torch.randn(64, n_in, generator=gen) * 2
            diff = export.compare_onnx(out, net, fresh)
            if not diff <= 1e-4:
                raise CLIError(f"the ONNX model in {out} differs from torch by {diff:.3g} on fresh inputs")
            typer.echo(f"wrote {out} (onnxruntime vs torch on 64 fresh inputs: max |diff| {diff:.2g})")
            return
    else:
        export.program(net, example, out)
    typer.echo(f"wrote {out}")


def _n_inputs(net: nn.Module, spec: dict[str, Any]) -> int:
    kw = spec.get("kwargs") or {}
    sizes = kw.get("sizes") or kw.get("width")
    if sizes:
        first = sizes[0]
        return int(first[0] if isinstance(first, (list, tuple)) else first)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
    raise CLIError("cannot tell how many input features this model takes")


def register(app: typer.Typer) -> None:
    @app.command("export", help=HELP)
    @user_errors
    def export_cmd(
        model: Path = typer.Argument(..., help="Run folder, its best/ folder, or a model folder."),
        format: str = typer.Option("onnx", "--format", "-f", help=f"One of {', '.join(FORMATS)}."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file. (default: <run>/model.<format>)"),
        check: bool = typer.Option(True, "--check/--no-check", help="ONNX: compare onnxruntime with torch on fresh inputs."),
    ) -> None:
        _export(model, format, out, check)
