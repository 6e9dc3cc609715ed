"""``nnlab train``: train an MLP, a residual MLP or a KAN on a toy set, digits or a CSV."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import torch
import typer

from nnlab.commands._common import (CLIError, echo, is_rank_zero, parse_clip, parse_list,
                                    read_config_file, resolve_config, user_errors)
from nnlab.commands._data import TOY_NAMES, load_data
from nnlab.commands._validate import check_number, check_resumable
from nnlab.models_io import ARCHS, build_model
from nnlab.runs import RunFolder

__all__ = ["DEFAULTS", "register", "model_kwargs"]

# every key a config file may hold (and its default); flags override the file
DEFAULTS: dict[str, Any] = {
    "name": None, "runs_dir": "runs",
    "model": "mlp", "hidden": [32, 32], "activation": "relu", "init": "he", "batchnorm": False,
    "dropout": 0.0, "grid": 5, "k": 3, "kan_lambda": 0.0,
    "data": "spiral", "target": None, "features": None, "task": "auto", "samples": 400, "noise": 0.0,
    "val_fraction": 0.2, "standardize": True, "sep": None,
    "optimizer": "adam", "lr": 1e-2, "epochs": 100, "batch_size": 64, "clip": None, "seed": 0,
    "progress": True, "plots": True,
    "scheduler": None, "warmup": 0, "early_stopping": None, "tensorboard": False,
    "update_grid": "5:50", "grid_extend": None,
}

# what --resume may change (epochs: the new total); anything else would not continue the same run
RESUME_MAY_CHANGE = frozenset({"epochs", "progress", "plots", "name", "runs_dir", "tensorboard",
                               "early_stopping"})

HELP = (
    "Train an MLP, a residual MLP or a KAN; write runs/<name>/.\n\n"
    "The run folder gets config.json (the resolved options), metrics.jsonl (one line per epoch), "
    "checkpoints/ (for --resume), model/ (the final model, for prune, lora, plot, export), best/ (the "
    "epoch with the lowest validation loss: a model folder and a checkpoint), PNG plots and, with "
    "--tensorboard, tensorboard/.\n\n"
    "Options come from flags, a YAML/TOML --config file (keys = option names, e.g. `epochs: 50`), "
    f"or both (flags win). --data is a toy set ({', '.join(TOY_NAMES)}), `digits`, or a CSV path "
    "with --target COLUMN.\n\n"
    "Under `torchrun --nproc_per_node=N -m nnlab train ...` training runs on N processes "
    "(DistributedDataParallel); only rank 0 writes the run folder.\n\n"
    "Example: nnlab train --data spiral --model mlp --hidden 32,32 --epochs 200 --name spiral"
)


def model_kwargs(cfg: dict[str, Any], n_in: int, n_out: int) -> dict[str, Any]:
    """Constructor arguments for ``build_model(cfg['model'], ...)`` from the resolved config."""
    hidden = parse_list(cfg["hidden"], "hidden")
    if any(h <= 0 for h in hidden):
        raise CLIError(f"hidden widths must be positive integers, got {hidden}")
    sizes = [n_in, *hidden, n_out]
    if cfg["model"] == "kan":
        return {"width": sizes, "grid": int(cfg["grid"]), "k": int(cfg["k"])}
    return {"sizes": sizes, "activation": cfg["activation"], "init": cfg["init"],
            "batchnorm": bool(cfg["batchnorm"]), "dropout": float(cfg["dropout"])}


def _check(cfg: dict[str, Any]) -> None:
    if cfg["model"] not in ARCHS:
        raise CLIError(f"unknown model {cfg['model']!r}; choose one of {', '.join(ARCHS)}")
    for key in ("epochs", "batch_size", "samples"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            raise CLIError(f"{key} must be a positive integer, got {cfg[key]!r}")
    seed = cfg["seed"]
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise CLIError(f"seed must be an integer >= 0, got {seed!r}")
    if cfg["optimizer"] not in ("adam", "sgd", "lbfgs"):
        raise CLIError(f"unknown optimizer {cfg['optimizer']!r}; choose adam, sgd or lbfgs")
    check_number(cfg, "lr", low=0.0, low_open=True)
    check_number(cfg, "val_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    check_number(cfg, "dropout", low=0.0, high=1.0, high_open=True)
    check_number(cfg, "noise", low=0.0)
    check_number(cfg, "kan_lambda", low=0.0)
    for key in ("grid", "k"):
        if cfg["model"] == "kan" and (not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0):
            raise CLIError(f"{key} must be a positive integer, got {cfg[key]!r}")
    model_kwargs(cfg, 1, 1)  # hidden widths
    parse_clip(cfg["clip"])
    from nnlab.training.schedulers import names as scheduler_names

    if cfg["scheduler"] not in (None, "none") and cfg["scheduler"] not in scheduler_names():
        raise CLIError(f"unknown scheduler {cfg['scheduler']!r}; choose one of {', '.join(scheduler_names())}")
    if not isinstance(cfg["warmup"], int) or isinstance(cfg["warmup"], bool) or cfg["warmup"] < 0:
        raise CLIError(f"warmup must be a number of epochs >= 0, got {cfg['warmup']!r}")
    if cfg["warmup"] and cfg["scheduler"] in (None, "none"):
        raise CLIError("--warmup needs a --scheduler (cosine, step, onecycle or plateau)")
    es = cfg["early_stopping"]
    if es is not None and (not isinstance(es, int) or isinstance(es, bool) or es < 0):
        raise CLIError(f"early_stopping is the patience in epochs and must be >= 0, got {es!r}")
    parse_update_grid(cfg["update_grid"])
    grids = parse_list(cfg["grid_extend"], "grid_extend")
    if grids and cfg["model"] != "kan":
        raise CLIError("--grid-extend refines a KAN's grid; use it with --model kan")
    _refuse_ignored(cfg)
    if grids:
        from nnlab.kan.callbacks import grid_schedule

        try:
            grid_schedule(grids, int(cfg["epochs"]))
        except ValueError as e:
            raise CLIError(f"--grid-extend: {e}") from None


def parse_update_grid(value: Any) -> tuple[int, int] | None:
    """``"5:50"`` -> every 5 epochs before epoch 50 (``nl.kan.GridUpdate``); ``"off"`` -> None."""
    if value is None or str(value).lower() in ("off", "none", "0", ""):
        return None
    every, _, until = str(value).partition(":")
    try:
        e, u = int(every), int(until) if until else 50
    except ValueError:
        e = u = -1
    if e < 1 or u < 0:
        raise CLIError(f"update_grid must be EVERY[:UNTIL] (e.g. 5:50: every 5 epochs before epoch 50) "
                       f"or off; got {value!r}")
    return e, u


def _normalise(cfg: dict[str, Any]) -> dict[str, Any]:
    """One spelling per value, so a config file, flags and config.json compare equal."""
    cfg = dict(cfg)
    cfg["hidden"] = parse_list(cfg["hidden"], "hidden")
    clip = parse_clip(cfg["clip"])
    cfg["clip"] = None if clip is None else f"{clip[0]}:{clip[1]:g}"
    if cfg.get("grid_extend") not in (None, "", []):
        cfg["grid_extend"] = ",".join(map(str, parse_list(cfg["grid_extend"], "grid_extend")))
    else:
        cfg["grid_extend"] = None
    if cfg.get("scheduler") == "none":
        cfg["scheduler"] = None
    if isinstance(cfg.get("features"), (list, tuple)):
        cfg["features"] = ",".join(map(str, cfg["features"]))
    return cfg


def _refuse_ignored(cfg: dict[str, Any]) -> None:
    """An option set away from its default that this model or dataset would not use is an error,
    not silently dropped (e.g. --activation tanh for a KAN, --features for the spiral)."""
    def given(keys):
        return [f"--{k.replace('_', '-')}" for k in keys if cfg[k] != DEFAULTS[k]]

    kan = cfg["model"] == "kan"
    ignored = given(("activation", "init", "batchnorm", "dropout") if kan else ("grid", "k", "kan_lambda"))
    if ignored:
        many = len(ignored) > 1
        raise CLIError(f"{', '.join(ignored)} {'do' if many else 'does'} not apply to --model {cfg['model']}; "
                       f"{'they shape' if many else 'it shapes'} "
                       + ("MLP and ResNet layers" if kan else "a KAN (--model kan)"))
    data = str(cfg["data"])
    builtin = data in TOY_NAMES or data == "digits"
    ignored = given(("target", "features", "task", "sep")) if builtin else []
    ignored += given(("samples", "noise")) if data not in TOY_NAMES else []
    if ignored:
        what = (f"--data {data} is a built-in dataset" if builtin else f"--data {data} is a CSV file")
        raise CLIError(f"{', '.join(ignored)} {'do' if len(ignored) > 1 else 'does'} not apply here: {what} "
                       "(--target, --features, --task and --sep are for CSV files; --samples and "
                       "--noise for the toy sets)")


def _train(config: Optional[Path], flags: dict[str, Any], overwrite: bool, resume: bool) -> None:
    file_cfg = read_config_file(config) if config else {}
    resolve_config(DEFAULTS, file_cfg, {}, source=str(config))  # refuses unknown keys, listing them
    name = flags.get("name") or file_cfg.get("name")
    runs_dir = flags.get("runs_dir") or file_cfg.get("runs_dir") or DEFAULTS["runs_dir"]
    if resume and overwrite:
        raise CLIError("choose either --resume (continue the run) or --overwrite (start it again), not both")
    if resume:
        if not name:
            raise CLIError("--resume needs the --name of the run to continue")
        run = RunFolder.open(runs_dir, name, resume=True)
        check_resumable(run)
        saved = run.read_config()
        cfg = _normalise(resolve_config(DEFAULTS, saved, {**file_cfg, **flags}, source=str(run.config_path)))
        before = _normalise({**DEFAULTS, **saved})
        changed = sorted(k for k in cfg if k not in RESUME_MAY_CHANGE and cfg[k] != before[k])
        if changed:
            raise CLIError(f"--resume continues run {name!r} as it was configured; these options differ "
                           f"from its config.json: {', '.join(changed)}. Only "
                           f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change; start a new run otherwise")
    else:
        cfg = _normalise(resolve_config(DEFAULTS, file_cfg, flags, source=str(config)))
        if not cfg["name"]:
            cfg["name"] = f"{cfg['model']}-{Path(str(cfg['data'])).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    _check(cfg)
    # everything is checked (and the data read) before the run folder is created or replaced
    data = load_data(cfg)
    X = data.train[0]
    kwargs = model_kwargs(cfg, data.n_features, data.n_outputs)
    grids = parse_list(cfg["grid_extend"], "grid_extend")
    if grids:  # coarse-to-fine: the model is built (or resumed) at its stage's grid
        from nnlab.kan.callbacks import grid_at

        kwargs["grid"] = grids[0] if not resume else grid_at(grids, int(cfg["epochs"]), _done_epochs(run))
    torch.manual_seed(int(cfg["seed"] or 0))
    model = build_model(cfg["model"], **kwargs)
    if not resume:
        run = RunFolder.open(cfg["runs_dir"], cfg["name"], overwrite=overwrite, create=is_rank_zero())
    if cfg["model"] == "kan":
        model.update_grid(X)  # every layer's spline grid on the inputs it actually sees (KAN §2.4)
    if is_rank_zero():
        run.write_config(cfg)
    penalty, callbacks = None, []
    if cfg["model"] == "kan":
        import nnlab as nl

        schedule = parse_update_grid(cfg["update_grid"])
        if schedule:  # re-place the spline grids on the training inputs early on (KAN §2.4)
            callbacks.append(nl.kan.GridUpdate(X, every=schedule[0], until=min(schedule[1], int(cfg["epochs"]))))
        if grids:
            callbacks.insert(0, nl.kan.GridExtend(nl.kan.grid_schedule(grids, int(cfg["epochs"]))))
    if cfg["model"] == "kan" and float(cfg["kan_lambda"]) > 0:
        lam = float(cfg["kan_lambda"])

        def penalty(m, xb):  # §6.3 step 1: sparsity regularisation
            return lam * getattr(m, "module", m).regularization(xb)

    echo(f"training {cfg['model']} {kwargs.get('sizes') or kwargs.get('width')} on {cfg['data']} "
         f"({data.task}, {data.train[0].shape[0]} train / {data.val[0].shape[0]} validation rows) "
         f"-> {run.path}")
    from nnlab.commands._fit import fit_into_run

    if cfg["early_stopping"] is not None:
        import nnlab as nl

        callbacks.append(nl.callbacks.EarlyStopping(_monitor(data), patience=int(cfg["early_stopping"])))
    fit_into_run(model, data, cfg, run, resume=resume, arch=cfg["model"], kwargs=kwargs, penalty=penalty,
                 callbacks=tuple(callbacks))


def _monitor(data: Any) -> str:
    return "val_loss" if data.val is not None and len(data.val[0]) else "train_loss"


def _done_epochs(run: RunFolder) -> int:
    from nnlab.training.checkpoint import load_checkpoint

    return load_checkpoint(run.checkpoints).epoch if run.checkpoints.exists() else 0


def register(app: typer.Typer) -> None:
    @app.command("train", help=HELP)
    @user_errors
    def train(
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML or TOML file of options."),
        data: Optional[str] = typer.Option(None, help=f"Toy set ({', '.join(TOY_NAMES)}), 'digits', or a CSV path. (default: spiral)"),
        target: Optional[str] = typer.Option(None, help="Target column of a CSV dataset."),
        sep: Optional[str] = typer.Option(None, help="Separator of a CSV dataset: , ; or tab. (default: sniffed)"),
        features: Optional[str] = typer.Option(None, help="Comma-separated feature columns of a CSV (default: all but the target)."),
        task: Optional[str] = typer.Option(None, help="auto, classification or regression (CSV only). (default: auto)"),
        samples: Optional[int] = typer.Option(None, help="Number of points of a toy set. (default: 400)"),
        noise: Optional[float] = typer.Option(None, help="Noise of a toy set. (default: 0)"),
        val_fraction: Optional[float] = typer.Option(None, help="Fraction held out for validation. (default: 0.2)"),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="mlp, resnet (residual MLP, §4) or kan (§6). (default: mlp)"),
        hidden: Optional[str] = typer.Option(None, help="Hidden widths, comma-separated. (default: 32,32)"),
        activation: Optional[str] = typer.Option(None, help="Activation of MLP/ResNet layers (§3). (default: relu)"),
        init: Optional[str] = typer.Option(None, help="Weight initialisation: he or xavier (§2.10). (default: he)"),
        batchnorm: Optional[bool] = typer.Option(None, "--batchnorm/--no-batchnorm", help="Batch normalisation in hidden blocks."),
        dropout: Optional[float] = typer.Option(None, help="Dropout probability in hidden blocks. (default: 0)"),
        grid: Optional[int] = typer.Option(None, help="KAN: spline grid intervals. (default: 5)"),
        k: Optional[int] = typer.Option(None, help="KAN: spline order. (default: 3)"),
        kan_lambda: Optional[float] = typer.Option(None, help="KAN: weight of the sparsity regulariser (§6.3). (default: 0)"),
        update_grid: Optional[str] = typer.Option(None, help="KAN: move the grids onto the data every EVERY epochs before epoch UNTIL (EVERY:UNTIL), or off. (default: 5:50)"),
        grid_extend: Optional[str] = typer.Option(None, help="KAN: coarse-to-fine grids, e.g. 5,10,20: start at 5, refine to 10 and 20 at equal shares of the epochs."),
        optimizer: Optional[str] = typer.Option(None, help="adam, sgd or lbfgs. (default: adam)"),
        lr: Optional[float] = typer.Option(None, help="Learning rate. (default: 0.01)"),
        epochs: Optional[int] = typer.Option(None, help="Total epochs (with --resume: the new total). (default: 100)"),
        batch_size: Optional[int] = typer.Option(None, help="Global batch size. (default: 64)"),
        clip: Optional[str] = typer.Option(None, help="Gradient clipping, norm:C or value:C (§2.10). (default: none)"),
        scheduler: Optional[str] = typer.Option(None, help="Learning-rate schedule: cosine, step, onecycle or plateau. (default: none)"),
        warmup: Optional[int] = typer.Option(None, help="Epochs of linear learning-rate warm-up (with --scheduler). (default: 0)"),
        early_stopping: Optional[int] = typer.Option(None, help="Stop after this many epochs without a lower validation loss. (default: off)"),
        tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard", help="Write TensorBoard logs into <run>/tensorboard/."),
        seed: Optional[int] = typer.Option(None, help="Random seed (data split, init, batches). (default: 0)"),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (off anyway when not on a terminal)."),
        plots: Optional[bool] = typer.Option(None, "--plots/--no-plots", help="Write PNG plots into the run folder. (default: plots)"),
        name: Optional[str] = typer.Option(None, "--name", "-n", help="Run name: the folder runs/<name>. (default: <model>-<data>-<time>)"),
        runs_dir: Optional[str] = typer.Option(None, help="Parent folder of run folders. (default: runs)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder of that name."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run <name> from its last checkpoint."),
    ) -> None:
        given = dict(locals())
        flags = {key: v for key, v in given.items()
                 if key not in ("config", "overwrite", "resume") and v is not None}
        _train(config, flags, overwrite, resume)
