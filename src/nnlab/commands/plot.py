"""``nnlab plot``: loss curves, decision boundaries, activations and their derivatives, KAN edges."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import torch
import typer

from nnlab.commands._common import CLIError, user_errors
from nnlab.commands._data import TOY_NAMES, load_data

__all__ = ["register", "model_data"]

plot_app = typer.Typer(help="Draw PNG figures: loss curves, decision boundaries, activations, KAN edges.\n\n"
                            "`loss`: a run's risks, accuracy, gradient norm and learning rate per epoch; "
                            "`boundary`: the decision regions of a 2-D classifier with its data; "
                            "`activations`: f(x) and f'(x) of each activation (§3); `kan`: the learned "
                            "edge functions of a KAN (§6).",
                       no_args_is_help=True)


def model_data(path: Path, data: Optional[str], target: Optional[str] = None) -> tuple[Any, dict, Any]:
    """Load a saved model (or a run folder's) and the dataset it was trained on (or ``data``/``target``)."""
    from nnlab.models_io import input_standardize, load_model

    model, spec = load_model(path, preprocess=False)  # the bare network: load_data standardises
    cfg = dict(spec.get("meta", {}).get("data") or {})
    if data:
        cfg = {"data": data, "target": target, "seed": cfg.get("seed", 0), "val_fraction": 0.2,
               "samples": cfg.get("samples", 400)}
    if not cfg.get("data"):
        raise CLIError(f"{path} does not record its dataset; pass --data")
    cfg.setdefault("val_fraction", 0.2)
    st = input_standardize(spec)
    if st is not None:  # new data goes through the model's own μ, σ, not its own
        cfg["standardize_stats"] = st.as_dict()
    return model, spec, load_data(cfg)


def _default_out(path: Path, name: str) -> Path:
    return (path if path.is_dir() and not (path / "model.json").is_file() else path.parent) / name


def register(app: typer.Typer) -> None:
    app.add_typer(plot_app, name="plot")


@plot_app.command("loss")
@user_errors
def loss(run: Path = typer.Argument(..., help="A run folder (or its metrics.jsonl)."),
         out: Optional[Path] = typer.Option(None, help="Output PNG. (default: <run>/loss.png)")) -> None:
    """Training and validation risk, accuracy, gradient norm and learning rate per epoch."""
    from nnlab.runs import read_metrics
    from nnlab.viz import loss_curves, save_figure

    records = read_metrics(run)
    folder = run if run.is_dir() else run.parent
    out = out or folder / "loss.png"
    save_figure(loss_curves(records, title=folder.name), out)
    typer.echo(f"wrote {out} ({len(records)} epochs)")


@plot_app.command("boundary")
@user_errors
def boundary(model: Path = typer.Argument(..., help="A run folder or a saved model folder."),
             data: Optional[str] = typer.Option(None, help=f"2-D dataset to draw ({', '.join(TOY_NAMES)} or a CSV); "
                                                           "default: the one the model was trained on."),
             target: Optional[str] = typer.Option(None, help="Target column when --data is a CSV."),
             out: Optional[Path] = typer.Option(None, help="Output PNG. (default: <run>/boundary.png)"),
             resolution: int = typer.Option(200, help="Grid points per axis.")) -> None:
    """Decision boundary of a classifier with 2 input features, with the data points."""
    from nnlab.viz import decision_boundary, save_figure

    net, spec, d = model_data(model, data, target)
    if d.task != "classification" or d.n_features != 2:
        raise CLIError(f"a decision boundary needs a classifier of 2 features; this data has {d.n_features} "
                       f"features ({d.task})")
    out = out or _default_out(model, "boundary.png")
    X, y = torch.cat([d.train[0], d.val[0]]), torch.cat([d.train[1], d.val[1]])
    save_figure(decision_boundary(net, X, y, resolution=resolution, title=model.name), out)
    typer.echo(f"wrote {out}")


@plot_app.command("activations")
@user_errors
def activations(names: Optional[List[str]] = typer.Argument(None, help="Activation names (default: all)."),
                out: Path = typer.Option(Path("activations.png"), help="Output PNG."),
                lo: float = typer.Option(-4.0, help="Left end of the x range."),
                hi: float = typer.Option(4.0, help="Right end of the x range.")) -> None:
    """Each activation f(x) (§3) with its analytic derivative f'(x) (§3.8)."""
    import nnlab as nl
    from nnlab.viz import activation_gallery, save_figure

    if not hasattr(nl, "activations"):
        raise CLIError("nl.activations is not available in this build")
    valid = list(nl.activations.names())
    unknown = [n for n in names or [] if n not in valid]
    if unknown:
        raise CLIError(f"unknown activation(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    if not lo < hi:
        raise CLIError(f"--lo must be below --hi, got {lo} and {hi}")
    save_figure(activation_gallery(names or valid, lo, hi), out)
    typer.echo(f"wrote {out}")


@plot_app.command("kan")
@user_errors
def kan(model: Path = typer.Argument(..., help="A run folder or saved model folder of a KAN."),
        data: Optional[str] = typer.Option(None, help="Dataset whose inputs drive the edges "
                                                      "(default: the training data)."),
        target: Optional[str] = typer.Option(None, help="Target column when --data is a CSV."),
        out: Optional[Path] = typer.Option(None, help="Output PNG. (default: <run>/kan.png)")) -> None:
    """The learned edge functions φ(x) of every KAN layer (§6.2)."""
    import nnlab as nl
    from nnlab.viz import save_figure

    net, spec, d = model_data(model, data, target)
    if spec["arch"] != "kan":
        raise CLIError(f"{model} holds a {spec['arch']} model, not a KAN")
    out = out or _default_out(model, "kan.png")
    save_figure(nl.kan.plot(net, d.train[0][:512]), out)
    typer.echo(f"wrote {out}")
