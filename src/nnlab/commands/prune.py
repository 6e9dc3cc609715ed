"""``nnlab prune``: prune a saved model (§5.5), optionally fine-tune, write a run folder with a report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from nnlab.commands._common import CLIError, echo, user_errors
from nnlab.commands._validate import check_prune_options

__all__ = ["register", "METHODS"]

METHODS = ("magnitude", "random", "obd", "obs", "neurons", "residual_blocks",
           "gradual-magnitude", "gradual-obd", "gradual-obs")
GRADUAL_STEPS = 5

HELP = (
    "Prune a saved model (§5.5), optionally fine-tune it; write runs/<name>/.\n\n"
    "MODEL is a run folder of `nnlab train` or a model folder. The run folder gets report.json "
    "(risk, accuracy, sparsity and parameters before, after pruning and after fine-tuning), model/ "
    "(masks made permanent) and, with --finetune-epochs, metrics.jsonl, checkpoints/ and loss.png.\n\n"
    "Methods: magnitude (smallest |a_i|), random, obd (Optimal Brain Damage, saliency a_i²·H_ii/2), "
    "obs (Optimal Brain Surgeon, L_i = a_i²/[H⁻¹]_ii with the compensating update, layer by layer), "
    "neurons (whole hidden units: the layers get smaller), residual_blocks (blocks F of a residual "
    "model whose removal raises the validation loss by at most --tolerance), and gradual-magnitude, "
    "gradual-obd, gradual-obs (or --gradual with magnitude/obd/obs): prune -> fine-tune on the cubic "
    "schedule s_t = s_f(1 - (1 - t/T)^3) of nl.prune.gradual, --steps steps of --finetune-epochs "
    "(default 2) each; gradual OBS uses the exact OBS update. The data the model was "
    "trained on (recorded in its model.json) is used for Hessians, fine-tuning and the report.\n\n"
    "Example: nnlab prune runs/digits --method magnitude --sparsity 0.9 --finetune-epochs 5 --name digits-90"
)


def _prune(model_path: Path, method: str, sparsity: float, tolerance: float, scope: str, hessian: str,
           importance: str, data: Optional[str], target: Optional[str], finetune_epochs: int, lr: float,
           batch_size: int, name: Optional[str], runs_dir: str, overwrite: bool, seed: int,
           gradual: bool = False, steps: int = GRADUAL_STEPS, structured: bool = False,
           speedup: Optional[float] = None, measure: str = "latency") -> None:
    import nnlab as nl
    from nnlab._io import write_json
    from nnlab.commands._common import is_rank_zero
    from nnlab.commands._eval import evaluate, n_params
    from nnlab.commands.plot import model_data
    from nnlab.models_io import save_model
    from nnlab.runs import RunFolder

    if gradual and structured:
        raise CLIError("--gradual and --structured are two different methods: pick one")
    if gradual and not method.startswith("gradual-"):
        if method not in ("magnitude", "obd", "obs"):
            raise CLIError(f"--gradual works with magnitude, obd or obs, not {method!r}")
        method = f"gradual-{method}"
    if speedup is not None and not structured:
        raise CLIError("--speedup removes whole units: add --structured")
    if speedup is not None and not speedup > 1:
        raise CLIError(f"--speedup must be a number > 1 (how many times faster), got {speedup:g}")
    if measure not in ("latency", "cpu", "flops"):
        raise CLIError(f"--measure must be latency, cpu or flops, got {measure!r}")
    method = "neurons" if structured else method
    if method not in METHODS:
        raise CLIError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if steps < 1:
        raise CLIError(f"--steps must be >= 1, got {steps}")
    if not 0.0 <= sparsity < 1.0:
        raise CLIError(f"--sparsity must be in [0, 1), got {sparsity}")
    check_prune_options(scope, hessian, importance, tolerance, lr)
    model, spec, d = model_data(model_path, data, target)
    if not hasattr(nl, "prune"):
        raise CLIError("nl.prune is not available in this build (the pruning branch)")
    if spec.get("lora"):
        raise CLIError(f"{model_path} holds LoRA adapters: merge them first with `nnlab lora merge`")
    if spec["arch"] == "kan":
        raise CLIError("pruning here works on nn.Linear weights; for a KAN use model.prune(x) (§6.3)")
    name = name or f"{Path(model_path).name}-{method}-" + (f"{speedup:g}x" if speedup is not None else f"{sparsity:g}")
    run = RunFolder.open(runs_dir, name, overwrite=overwrite, create=is_rank_zero(), can_resume=False)
    Xv, yv = d.val
    before = {**evaluate(model, Xv, yv, d.task), "params": n_params(model),
              "sparsity": nl.prune.sparsity(model).overall}
    model.train()
    if method == "magnitude":
        nl.prune.magnitude(model, sparsity, scope=scope)
    elif method == "random":
        nl.prune.random(model, sparsity, scope=scope, seed=seed)
    elif method == "obd":
        nl.prune.obd(model, d.train, d.loss, sparsity, hessian=hessian, scope=scope)
    elif method == "obs":
        nl.prune.obs(model, d.train, d.loss, sparsity)
    elif method.startswith("gradual-"):
        base = method[len("gradual-"):]
        kw = {"algorithm": "exact"} if base == "obs" else {"hessian": hessian} if base == "obd" else {}
        per_step = finetune_epochs or 2
        model, log = nl.prune.gradual(model, d.train, d.val, target_sparsity=sparsity, steps=steps,
                                      method=base, method_kwargs=kw, finetune_epochs=per_step,
                                      loss=d.loss, lr=lr, batch_size=batch_size, seed=seed)
        echo(f"gradual {base}: {steps} steps to {sparsity:.0%}, {per_step} fine-tuning epochs each; last "
             f"step: sparsity {log[-1]['sparsity']:.1%}")
        finetune_epochs = 0  # the schedule fine-tuned already
    elif method == "neurons":
        dense, x = model, d.train[0][:256]
        target_kw = {"speedup": speedup, "example_input": x, "measure": measure} if speedup is not None else {}
        model, rep = nl.prune.neurons(model, None if speedup is not None else sparsity, importance=importance,
                                      data=d.train, loss=d.loss, **target_kw)
        echo(str(rep))
        from nnlab.prune.speedup import speed_report

        echo(speed_report(dense, model, x, clocks=("cpu", "wall") if measure == "cpu" else ("wall",)))
    else:
        if spec["arch"] != "resnet":
            raise CLIError(f"residual_blocks needs a residual model (train it with --model resnet); "
                           f"{model_path} is {spec['arch']!r}")
        model, rep = nl.prune.residual_blocks(model, d.val, d.loss, tolerance=tolerance)
        echo(str(rep))
    pruned = {**evaluate(model, Xv, yv, d.task), "params": n_params(model),
              "sparsity": nl.prune.sparsity(model).overall}
    cfg = {"model": str(model_path), "method": method, "sparsity": sparsity, "tolerance": tolerance, "scope": scope,
           "hessian": hessian, "importance": importance, "finetune_epochs": finetune_epochs, "lr": lr,
           "batch_size": batch_size, "seed": seed, "data": spec["meta"].get("data"), "name": name,
           "steps": steps if method.startswith("gradual-") else None,
           "runs_dir": runs_dir}
    if structured:
        cfg.update(structured=True, speedup=speedup, measure=measure)
    if is_rank_zero():
        run.write_config(cfg)
    report: dict[str, Any] = {"before": before, "pruned": pruned}
    kwargs = spec["kwargs"]
    meta = dict(spec.get("meta", {}))
    if finetune_epochs > 0:
        from nnlab.commands._fit import fit_into_run

        # the masks stay in place while fine-tuning, so pruned weights stay zero (§5.5: prune, then re-train)
        fit_into_run(model, d, {**meta.get("data", {}), "optimizer": "adam", "lr": lr, "epochs": finetune_epochs,
                                "batch_size": batch_size, "seed": seed, "progress": True},
                     run, resume=False, arch=spec["arch"], kwargs=kwargs, meta={"pruned_from": str(model_path)})
        report["finetuned"] = {**evaluate(model, Xv, yv, d.task), "params": n_params(model),
                               "sparsity": nl.prune.sparsity(model).overall}
    nl.prune.finalize(model)
    if is_rank_zero():
        meta["pruned_from"] = str(model_path)
        meta["prune"] = {"method": method, "sparsity": sparsity}
        save_model(model, run.model_dir, spec["arch"], kwargs, meta=meta)
        write_json(run.path / "report.json", report)
    for stage, r in report.items():
        acc = "" if r["accuracy"] is None else f", accuracy {r['accuracy']:.4f}"
        echo(f"{stage:<9} risk {r['risk']:.4g}{acc}, sparsity {r['sparsity']:.1%}, params {r['params']}")
    echo(f"wrote {run.path}")


def register(app: typer.Typer) -> None:
    @app.command("prune", help=HELP)
    @user_errors
    def prune(
        model: Path = typer.Argument(..., help="Run folder or model folder to prune."),
        method: str = typer.Option("magnitude", help=f"One of {', '.join(METHODS)}."),
        sparsity: float = typer.Option(0.5, help="Fraction of weights (neurons: of hidden units) to remove, in [0, 1)."),
        tolerance: float = typer.Option(0.01, help="residual_blocks: largest validation-loss increase allowed."),
        scope: str = typer.Option("global", help="global (one threshold) or layer (same fraction per layer)."),
        hessian: str = typer.Option("gauss_newton", help="OBD: exact, gauss_newton, fisher or hutchinson."),
        importance: str = typer.Option("magnitude", help="neurons / --structured: magnitude, taylor, obd or obs."),
        structured: bool = typer.Option(False, "--structured", help="Remove whole units (coupled groups, residual "
                                        "streams too): the model gets smaller and faster; same as --method neurons."),
        speedup: Optional[float] = typer.Option(None, help="--structured: remove units until this many times faster."),
        measure: str = typer.Option("latency", help="--speedup measured as latency (batch of 256 training rows), "
                                    "cpu (its CPU time: steadier on a shared machine) or flops."),
        data: Optional[str] = typer.Option(None, help="Dataset (default: the one recorded with the model)."),
        target: Optional[str] = typer.Option(None, help="Target column when --data is a CSV."),
        finetune_epochs: int = typer.Option(0, min=0, help="Epochs of fine-tuning after pruning (gradual: after each step, default 2)."),
        gradual: bool = typer.Option(False, "--gradual", help="Prune gradually (magnitude, obd, obs): same as --method gradual-<method>."),
        steps: int = typer.Option(GRADUAL_STEPS, help="Gradual pruning: number of cubic prune/fine-tune steps."),
        lr: float = typer.Option(1e-3, help="Fine-tuning learning rate."),
        batch_size: int = typer.Option(64, min=1, help="Fine-tuning batch size."),
        seed: int = typer.Option(0, help="Random seed (random pruning, fine-tuning)."),
        name: Optional[str] = typer.Option(None, "--name", "-n", help="Run name. (default: <model>-<method>-<sparsity>)"),
        runs_dir: str = typer.Option("runs", help="Parent folder of run folders."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder."),
    ) -> None:
        _prune(model, method, sparsity, tolerance, scope, hessian, importance, data, target, finetune_epochs, lr,
               batch_size, name, runs_dir, overwrite, seed, gradual=gradual, steps=steps,
               structured=structured, speedup=speedup, measure=measure)
