"""Train a model into a run folder: nl.fit + metrics.jsonl + checkpoints + final model + plots.

Shared by ``nnlab train``, ``nnlab lora train`` and ``nnlab prune --finetune-epochs``.
Under ``torchrun`` every rank runs this; ``nl.fit`` detects the distributed environment
(``distributed=None``) and only rank 0 writes files.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from nnlab.commands._common import echo, is_rank_zero
from nnlab.commands._data import Data
from nnlab.layers.standardize import Standardize, Standardized
from nnlab.models_io import save_model
from nnlab.runs import MetricsLogger, RunFolder
from nnlab.viz import decision_boundary, loss_curves, save_figure

__all__ = ["fit_into_run", "write_plots", "summary"]

KAN_PLOT_MAX_EDGES = 400  # one small panel per edge: beyond this the figure is unreadable


def _with_preprocess(net: nn.Module, data: Data) -> nn.Module:
    """The model as saved: the input standardisation training applied is part of it, so
    ``nl.load_model`` gives a model that takes raw features."""
    st = (data.preprocess or {}).get("standardize")
    return Standardized(Standardize(st["mean"], st["std"]), net) if st else net


def fit_into_run(model: nn.Module, data: Data, cfg: Mapping[str, Any], run: RunFolder, *, resume: bool,
                 arch: str, kwargs: Mapping[str, Any], lora: Mapping[str, Any] | None = None,
                 penalty: Any = None, meta: Mapping[str, Any] | None = None,
                 callbacks: tuple = ()) -> Any:
    """Run ``nl.fit`` with the run folder's logger and checkpoints; save the model and its plots."""
    import nnlab as nl
    from nnlab.commands._common import parse_clip

    writer = is_rank_zero()
    logger = MetricsLogger(run.metrics_path, write=writer)
    has_val = data.val is not None and len(data.val[0]) > 0
    info = {"task": data.task, "feature_names": data.feature_names, "preprocess": data.preprocess,
            "data": {k: cfg.get(k) for k in ("data", "target", "features", "samples", "noise",
                                              "val_fraction", "seed", "task", "standardize")},
            **dict(meta or {})}

    def save_best(net: nn.Module, folder: Any) -> None:  # best/ is a model folder too (nl.load_model)
        save_model(_with_preprocess(net, data), folder, arch, _current_kwargs(net, arch, kwargs), lora=lora,
                   meta={**info, "final_metrics": run.metrics()[-1] if run.metrics_path.exists() else {}})

    best = nl.callbacks.ModelCheckpoint(run.path, monitor="val_loss" if has_val else "train_loss",
                                        save_top_k=1, keep_last=0, save_fn=save_best)
    extra = [best]
    if cfg.get("tensorboard"):
        kan_x = data.train[0][:512] if arch == "kan" else None
        extra.append(nl.callbacks.TensorBoard(run.path / "tensorboard", kan_inputs=kan_x,
                                              var_names=_var_names(data) if arch == "kan" else None))
    history = nl.fit(model, data.train, data.val, loss=data.loss, optimizer=cfg["optimizer"],
                     lr=float(cfg["lr"]), epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]),
                     clip=parse_clip(cfg.get("clip")), seed=cfg.get("seed"),
                     progress=bool(cfg.get("progress", True)), callbacks=[logger, *callbacks, *extra],
                     checkpoint_dir=str(run.checkpoints),
                     resume=str(run.checkpoints) if resume else None,
                     penalty=penalty, distributed=None, scheduler=cfg.get("scheduler"),
                     warmup=int(cfg.get("warmup") or 0), grad_norm=True)  # metrics.jsonl has ‖g‖
    model.to("cpu")  # DDP on CUDA moved it; saving and plotting happen on the CPU
    if writer:
        records = run.metrics()
        final = records[-1] if records else {}
        save_model(_with_preprocess(model, data), run.model_dir, arch, _current_kwargs(model, arch, kwargs),
                   meta={**info, "final_metrics": final}, lora=lora)
        if cfg.get("plots", True):
            write_plots(model, data, run, arch, title=run.path.name)
        echo(f"run {run.path}: " + summary(final))
    return history


def _current_kwargs(model: nn.Module, arch: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments as the model is now (a KAN's grid may have been extended)."""
    kw = dict(kwargs)
    if arch == "kan" and hasattr(model, "grid"):
        kw["grid"] = list(model.grid)
    return kw


def _var_names(data: Data) -> list[str] | None:
    names = getattr(data, "feature_names", None)
    return list(names) if names and len(names) == data.n_features else None


def write_plots(model: nn.Module, data: Data, run: RunFolder, arch: str, title: str = "") -> list[str]:
    """loss.png always; boundary.png for 2-D classifiers; kan.png for KANs. Returns the file names."""
    import torch

    written = []
    records = run.metrics()
    if records:
        save_figure(loss_curves(records, title=title), run.path / "loss.png")
        written.append("loss.png")
    model.eval()
    if data.task == "classification" and data.n_features == 2:
        X = torch.cat([data.train[0], data.val[0]])
        y = torch.cat([data.train[1], data.val[1]])
        save_figure(decision_boundary(model, X, y, resolution=150, title=title), run.path / "boundary.png")
        written.append("boundary.png")
    if arch == "kan":
        import nnlab as nl

        n_edges = sum(a * b for a, b in zip(model.width[:-1], model.width[1:]))
        if n_edges <= KAN_PLOT_MAX_EDGES:
            fig = nl.kan.plot(model, data.train[0][:512], max_edges=KAN_PLOT_MAX_EDGES,
                              var_names=_var_names(data), title=f"{title}: KAN {model.width}")
            save_figure(fig, run.path / "kan.png")
            written.append("kan.png")
        else:
            echo(f"kan.png not drawn: {n_edges} edges is too many to read (prune the KAN first, then "
                 f"`nnlab plot kan`)")
    return written


def summary(rec: Mapping[str, Any]) -> str:
    """One line from a metrics record: epoch, risks and accuracy."""
    if not rec:
        return "no epochs trained"
    parts = [f"epoch {rec.get('epoch')}"]
    for key, label in (("train_risk", "training risk"), ("val_risk", "validation risk"),
                       ("accuracy", "accuracy")):
        if rec.get(key) is not None:
            parts.append(f"{label} {rec[key]:.4g}")
    return ", ".join(parts)
