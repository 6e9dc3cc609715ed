"""``nnlab predict``: a trained model's predictions on a CSV of raw features (and metrics when the
target column is there).

The model comes from :func:`nnlab.models_io.load_model`, which puts the input standardisation the
training applied in front of the network, so the CSV's columns go in as they are.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from nnlab.commands._common import CLIError, check_out_file, user_errors

__all__ = ["register", "predict_csv"]

HELP = (
    "Predict with a trained model on a CSV file; write the predictions (and print metrics when the "
    "CSV has the target column).\n\n"
    "RUN is a run folder of `nnlab train` (or a model folder). The CSV needs the feature columns the "
    "model was trained on (any order, extra columns ignored), raw as in the training CSV: the "
    "standardisation applied in training is part of the saved model. The output CSV holds the "
    "feature columns, the target (when present) and predicted_<target>; for a classifier also "
    "p_<class> for each class.\n\n"
    "Example: nnlab predict runs/housing new.csv --out preds.csv"
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.9g}"
    return str(v)


def predict_csv(run: Path, data: Path, sep: Optional[str] = None) -> tuple[list[str], list[list[Any]], dict]:
    """``(header, rows, metrics)`` of the predictions of the model in ``run`` on ``data``."""
    import torch

    from nnlab.data import read_csv, read_table
    from nnlab.models_io import load_model

    model, spec = load_model(run)
    meta = spec.get("meta") or {}
    feats = meta.get("feature_names")
    if not feats or not isinstance(feats, list):
        raise CLIError(f"{run} does not record the feature columns it was trained on; it cannot "
                       "read a CSV (train it with `nnlab train --data FILE.csv`)")
    target = (meta.get("data") or {}).get("target")
    header = read_table(data, sep)[0]
    missing = [f for f in feats if f not in header]
    if missing:
        raise CLIError(f"{data} lacks the feature column(s) {', '.join(missing)} that {run} was trained "
                       f"on; its columns: {', '.join(header)}")
    has_target = bool(target) and target in header and target not in feats
    X, y, _ = read_csv(data, target if has_target else None, feats, sep=sep)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise CLIError(f"{int(bad.sum())} row(s) of {data} hold missing or infinite feature values "
                       f"(first on line {int(np.argmax(bad)) + 2}); remove them first")
    with torch.no_grad():
        out = model(torch.from_numpy(X).float()).double()
    task = meta.get("task") or ("classification" if out.shape[1] > 1 else "regression")
    name = f"predicted_{target}" if target else "prediction"
    cols = list(feats) + ([target] if has_target else []) + [name]
    metrics: dict[str, Any] = {"rows": int(X.shape[0])}
    if task == "classification":
        classes = (meta.get("preprocess") or {}).get("classes") or list(range(out.shape[1]))
        if len(classes) != out.shape[1]:
            raise CLIError(f"{run} records {len(classes)} classes but its model has {out.shape[1]} outputs")
        prob = torch.softmax(out, dim=1).numpy()
        pred = [classes[i] for i in prob.argmax(axis=1)]
        cols += [f"p_{_fmt(c)}" for c in classes]
        rows = [[*X[i].tolist(), *([y[i]] if has_target else []), pred[i], *prob[i].tolist()]
                for i in range(X.shape[0])]
        if has_target:
            ok = np.isfinite(y)
            metrics["accuracy"] = float(np.mean([float(pred[i]) == y[i] for i in np.flatnonzero(ok)])) \
                if ok.any() else None
    else:
        pred = out[:, 0].numpy()
        rows = [[*X[i].tolist(), *([y[i]] if has_target else []), float(pred[i])] for i in range(X.shape[0])]
        if has_target:
            ok = np.isfinite(y)
            if ok.any():
                err = pred[ok] - y[ok]
                ss = float(np.sum((y[ok] - y[ok].mean()) ** 2))
                metrics.update(rmse=float(np.sqrt(np.mean(err ** 2))), mae=float(np.mean(np.abs(err))),
                               r2=1.0 - float(np.sum(err ** 2)) / ss if ss > 0 else None)
    if has_target:
        metrics["target"] = target
        metrics["scored"] = int(np.isfinite(y).sum())  # rows with a target value: the metrics' rows
    return cols, rows, metrics


def _metrics_line(m: dict) -> str:
    parts = [f"{m['rows']} rows"]
    if m.get("scored", m["rows"]) != m["rows"]:  # else 'y: 2 rows, RMSE ...' hid that one row had no y
        parts[0] += f" (metrics on the {m['scored']} with a target value)"
    for key in ("accuracy", "rmse", "mae", "r2"):
        if m.get(key) is not None:
            parts.append(f"{key.upper() if key != 'accuracy' else key} {m[key]:.6g}".replace("R2", "R²"))
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    @app.command("predict", help=HELP)
    @user_errors
    def predict(
        run: Path = typer.Argument(..., help="Run folder (or model folder) of a trained model."),
        data: Path = typer.Argument(..., help="CSV with the model's feature columns (raw values)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output CSV. (default: print the CSV)"),
        sep: Optional[str] = typer.Option(None, help="Separator of the CSV: , ; or tab. (default: sniffed)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    ) -> None:
        from nnlab._io import write_text

        if out is not None:  # checked before any work
            check_out_file(out, overwrite=overwrite)
        cols, rows, metrics = predict_csv(run, data, sep)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([_fmt(v) for v in r] for r in rows)
        if out is None:
            typer.echo(buf.getvalue(), nl=False)
            if metrics.get("target"):
                typer.echo(f"{metrics['target']}: " + _metrics_line(metrics), err=True)
            return
        write_text(out, buf.getvalue())
        line = _metrics_line(metrics)
        typer.echo(f"wrote {out} ({line})" if metrics.get("target") else f"wrote {out} ({metrics['rows']} rows)")
