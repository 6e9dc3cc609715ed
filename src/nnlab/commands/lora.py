"""``nnlab lora inject|train|merge``: low-rank adaptation of a saved model (§5.3, h' = W₀x + (α/r)·BAx)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer

from nnlab.commands._common import CLIError, echo, is_rank_zero, parse_list, user_errors
from nnlab.commands._validate import check_out_folder, check_resumable

__all__ = ["register", "default_targets"]

lora_app = typer.Typer(help="LoRA (§5.3): inject, train and merge low-rank adapters of a saved model.\n\n"
                            "W₀ stays frozen and ΔW = (alpha/rank)·B·A is learned: `inject` adds "
                            "zero-initialised adapters (the model's output is unchanged), `train` trains "
                            "only them on a dataset (writing a run folder), `merge` folds them into plain "
                            "weights W = W₀ + ΔW.",
                       no_args_is_help=True)


def default_targets(model: Any, rank: int) -> list[str]:
    """Names of the ``nn.Linear`` layers where ``rank < min(in, out)`` (LoRA's condition)."""
    from torch import nn

    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and n and rank < min(m.in_features, m.out_features)]


def _inject(model: Any, rank: int, alpha: float, dropout: float, targets: Optional[str]) -> dict[str, Any]:
    """Inject adapters; returns the settings saved in model.json (exact, escaped layer names)."""
    import nnlab as nl

    if not hasattr(nl, "lora"):
        raise CLIError("nl.lora is not available in this build (the transfer branch)")
    if rank <= 0:
        raise CLIError(f"--rank must be a positive integer, got {rank}")
    names = parse_list(targets, "targets", str) if targets else default_targets(model, rank)
    if not names:
        raise CLIError(f"no nn.Linear layer is wide enough for rank {rank} (LoRA needs rank < min(in, out)); "
                       "use a smaller --rank")
    nl.lora.inject(model, rank=rank, alpha=alpha, dropout=dropout, targets=names)
    chosen = [n for n, _ in nl.lora.lora_layers(model)]
    return {"rank": rank, "alpha": alpha, "dropout": dropout, "targets": [re.escape(n) for n in chosen]}


def register(app: typer.Typer) -> None:
    app.add_typer(lora_app, name="lora")


@lora_app.command("inject")
@user_errors
def inject(model: Path = typer.Argument(..., help="Run folder or model folder (without LoRA)."),
           out: Path = typer.Option(..., "--out", "-o", help="Folder for the model with adapters."),
           rank: int = typer.Option(4, help="Rank r of ΔW = B·A (0 < r < min(in, out))."),
           alpha: float = typer.Option(8.0, help="Scale numerator: ΔW is multiplied by alpha/rank."),
           dropout: float = typer.Option(0.0, help="Dropout on the LoRA branch input."),
           targets: Optional[str] = typer.Option(None, help="Comma-separated layer names or patterns "
                                                            "(default: every Linear wide enough for the rank)."),
           overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder.")) -> None:
    """Add zero-initialised LoRA adapters to a saved model (its output is unchanged)."""
    import nnlab as nl
    from nnlab.models_io import load_model, save_model

    net, spec = load_model(model, preprocess=False)
    if spec.get("lora"):
        raise CLIError(f"{model} already has LoRA adapters; merge them first with `nnlab lora merge`")
    if spec["arch"] == "kan":
        raise CLIError("LoRA adapts nn.Linear layers; a KAN has none")
    check_out_folder(out, overwrite, marker="model.json")
    settings = _inject(net, rank, alpha, dropout, targets)
    save_model(net, out, spec["arch"], spec["kwargs"], meta=spec.get("meta"), lora=settings)
    typer.echo(str(nl.lora.trainable_report(net)))
    typer.echo(f"wrote {out}")


@lora_app.command("train")
@user_errors
def train(model: Path = typer.Argument(..., help="Model folder with adapters (from `lora inject`), or a "
                                                 "plain one (adapters are injected with --rank/--alpha)."),
          data: Optional[str] = typer.Option(None, help="Dataset (default: the one recorded with the model)."),
          target: Optional[str] = typer.Option(None, help="Target column when --data is a CSV."),
          rank: int = typer.Option(4, help="Rank when injecting into a plain model."),
          alpha: float = typer.Option(8.0, help="alpha when injecting into a plain model."),
          targets: Optional[str] = typer.Option(None, help="Layers to adapt when injecting."),
          train_head: bool = typer.Option(False, "--train-head", help="Also train the last layer fully."),
          epochs: int = typer.Option(20, min=1, help="Epochs."),
          lr: float = typer.Option(1e-2, help="Learning rate."),
          batch_size: int = typer.Option(64, min=1, help="Batch size."),
          optimizer: str = typer.Option("adam", help="adam, sgd or lbfgs."),
          seed: int = typer.Option(0, help="Random seed."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
          name: Optional[str] = typer.Option(None, "--name", "-n", help="Run name. (default: <model>-lora)"),
          runs_dir: str = typer.Option("runs", help="Parent folder of run folders."),
          overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder."),
          resume: bool = typer.Option(False, "--resume", help="Continue the run <name> from its checkpoint.")) -> None:
    """Train only the LoRA matrices (and optionally the head); writes runs/<name>/ with adapter.safetensors."""
    import nnlab as nl
    from nnlab.commands._data import load_data
    from nnlab.commands._fit import fit_into_run
    from nnlab.models_io import load_model
    from nnlab.runs import RunFolder

    net, spec = load_model(model, preprocess=False)
    if spec["arch"] == "kan":
        raise CLIError("LoRA adapts nn.Linear layers; a KAN has none")
    settings = spec.get("lora") or _inject(net, rank, alpha, 0.0, targets)
    if train_head:
        for p in list(net.children())[-1].parameters():
            p.requires_grad_(True)
    dcfg = dict(spec.get("meta", {}).get("data") or {})
    if data:
        dcfg = {"data": data, "target": target, "seed": seed, "val_fraction": 0.2}
    if not dcfg.get("data"):
        raise CLIError(f"{model} does not record its dataset; pass --data")
    from nnlab.models_io import input_standardize

    st = input_standardize(spec)
    d = load_data({**dcfg, "standardize_stats": st.as_dict()} if st is not None else dcfg)
    name = name or f"{Path(model).name}-lora"
    run = RunFolder.open(runs_dir, name, overwrite=overwrite, resume=resume, create=is_rank_zero())
    if resume:
        check_resumable(run)
    cfg = {**dcfg, "model_path": str(model), "lora": settings, "train_head": train_head, "epochs": epochs,
           "lr": lr, "batch_size": batch_size, "optimizer": optimizer, "seed": seed, "progress": progress,
           "name": name, "runs_dir": runs_dir}
    if is_rank_zero():
        run.write_config(cfg)
    echo(str(nl.lora.trainable_report(net)))
    fit_into_run(net, d, cfg, run, resume=resume, arch=spec["arch"], kwargs=spec["kwargs"], lora=settings,
                 meta={"lora_base": str(model)})
    if is_rank_zero():
        head_name, head = list(net.named_children())[-1]
        extra = [re.escape(head_name)] if train_head and not isinstance(head, nl.lora.LoRALinear) else []
        nl.lora.save_adapter(net, run.path / "adapter.safetensors", include=extra)
        echo(f"adapter: {run.path / 'adapter.safetensors'}")


@lora_app.command("merge")
@user_errors
def merge(model: Path = typer.Argument(..., help="Run folder or model folder with LoRA adapters."),
          out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged plain model."),
          overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder.")) -> None:
    """Fold the adapters into the weights, W = W₀ + (alpha/rank)·B·A: a plain model, same outputs."""
    import torch

    import nnlab as nl
    from nnlab.models_io import load_model, save_model

    net, spec = load_model(model, preprocess=False)
    if not spec.get("lora"):
        raise CLIError(f"{model} has no LoRA adapters to merge")
    check_out_folder(out, overwrite, marker="model.json")
    merged = nl.lora.merge(net)
    x = torch.randn(16, spec["kwargs"]["sizes"][0], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((merged(x) - net(x)).abs().max())
    meta = dict(spec.get("meta", {}))
    meta["merged_lora"] = spec["lora"]
    save_model(merged, out, spec["arch"], spec["kwargs"], meta=meta)
    typer.echo(f"merged {len(spec['lora']['targets'])} layer(s); max |merged - unmerged| on random inputs: "
               f"{diff:.2e}")
    typer.echo(f"wrote {out}")
