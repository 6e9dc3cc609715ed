"""``nnlab discover``: from a CSV to a formula (lecture §6.3), with a report folder.

Without a CSV it runs on the bundled ``pendulum.csv``: 200 rows of a simple pendulum's period
``T = 2π·√(L/g)`` (L uniform in [0.1, 2] m, g uniform in [1, 25] m/s², noise-free).
``--target y1,y2`` runs one search per target (one report sub-folder each); ``--n-jobs`` runs the
candidates on local cores, ``--scheduler tcp://host:8786`` on a Dask cluster.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import typer

from nnlab.commands._common import report_error
from nnlab.commands._validate import check_out_folder
from nnlab.data import read_csv

__all__ = ["discover", "BUNDLED", "search_csv", "parse_targets", "write_reports"]

BUNDLED = Path(__file__).resolve().parents[1] / "symbolic" / "data" / "pendulum.csv"


def parse_targets(text: str) -> list[str]:
    """``"y1,y2"`` -> ``["y1", "y2"]``; empty or repeated names raise ``ValueError``."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise ValueError(f"--target {text!r} has an empty name; give column names separated by commas")
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise ValueError(f"--target names {', '.join(map(repr, dup))} more than once; give each target once")
    return names


def load(path: Path, targets: list[str], features: list[str] | None,
         sep: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X (n, d), Y (n, t), feature names): features default to every column that is not a target."""
    X, y, cols = read_csv(path, targets[0], features, sep=sep)
    if len(targets) == 1:
        return X, y[:, None], cols
    cols = [c for c in cols if c not in targets] if features is None else cols
    clash = [t for t in targets if t in cols]
    if clash:
        raise ValueError(f"target column(s) {', '.join(map(repr, clash))} also listed in features")
    ys = []
    for t in targets:
        X, y, _ = read_csv(path, t, cols, sep=sep)
        ys.append(y)
    return X, np.column_stack(ys), cols


def search_csv(path: Path, targets: list[str], features: list[str] | None, *, sep: str | None = None,
               time_limit: float,
               test_fraction: float, seed: int, drop_nan: bool, n_jobs: int | None, verbose: Any,
               echo: Callable[[str], None]) -> tuple[Any, dict[str, Any], int]:
    """Read ``path``, hold out ``test_fraction`` of the rows, fit; returns (estimator, held-out metrics per
    target, rows). Bad input raises ``ValueError`` / ``FileNotFoundError`` before anything is written."""
    from nnlab.symbolic.regressor import SymbolicRegressor
    from nnlab.symbolic.report import metrics

    X, Y, names = load(path, targets, features, sep)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    finite = np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1)
    if not finite.all():
        if not drop_nan:
            raise ValueError(f"{int((~finite).sum())} row(s) hold NaN/inf or empty cells; clean them or "
                             "pass --drop-nan")
        echo(f"dropped {int((~finite).sum())} row(s) with NaN/inf or empty cells")
        X, Y = X[finite], Y[finite]
    perm = rng.permutation(len(Y))
    n_test = max(1, int(round(test_fraction * len(Y))))
    te, tr = perm[:n_test], perm[n_test:]
    est = SymbolicRegressor(time_limit=time_limit, variables=names, random_state=seed, n_jobs=n_jobs,
                            verbose=verbose)
    est.fit(X[tr], Y[tr, 0] if Y.shape[1] == 1 else Y[tr])
    pred = est.predict(X[te]).reshape(len(te), -1)
    held = {t: {"rows": len(te), **metrics(Y[te, j], pred[:, j])} for j, t in enumerate(targets)}
    return est, held, len(Y)


def discover(
    csv_path: Optional[Path] = typer.Argument(None, metavar="[DATA.CSV]",
                                              help="CSV with a header row; default: the bundled pendulum data."),
    target: str = typer.Option(None, "--target", "-t",
                               help="target column(s), comma-separated (default: T for the bundled data, else y)"),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="comma-separated feature columns"),
    out: Path = typer.Option(Path("discover-report"), "--out", "-o", help="report folder"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing report folder"),
    sep: Optional[str] = typer.Option(None, "--sep", help="CSV separator: , ; or tab (default: sniffed)"),
    time_limit: float = typer.Option(60.0, help="seconds; no new candidate KAN starts after it"),
    test_fraction: float = typer.Option(0.2, help="share of rows held out for RMSE and R²"),
    drop_nan: bool = typer.Option(False, "--drop-nan", help="drop rows with NaN/inf instead of refusing"),
    seed: int = typer.Option(0, min=0, help="seed of the held-out split and of the KANs"),
    n_jobs: Optional[int] = typer.Option(None, "--n-jobs", "-j",
                                         help="candidates in parallel: k processes, -1 = every core (default 1; "
                                              "with --scheduler: every Dask worker)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="run the candidates on a Dask cluster, e.g. tcp://host:8786"),
    show_equations: Optional[bool] = typer.Option(None, "--show-equations/--hide-equations",
                                                  help="print every formula found (default: on at a terminal)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no live progress (it shows only at a terminal)"),
) -> None:
    """Discover a formula for TARGET from the other columns with KAN symbolic regression (§6.3)."""
    from nnlab.symbolic.parallel import dask_client

    path = BUNDLED if csv_path is None else csv_path
    if target is None:
        target = "T" if csv_path is None else "y"
    check_out_folder(out, overwrite, marker="result.json")  # before the search, not after it
    try:
        targets = parse_targets(target)
        if n_jobs is not None:
            from nnlab.symbolic.parallel import check_n_jobs

            check_n_jobs(n_jobs)
        ctx: Any = contextlib.nullcontext()
        if scheduler is not None:
            ctx = dask_client(scheduler)
        with ctx:
            est, held, n = search_csv(path, targets, features.split(",") if features else None, sep=sep, time_limit=time_limit,
                                      test_fraction=test_fraction, seed=seed, drop_nan=drop_nan,
                                      n_jobs=n_jobs if n_jobs is not None or scheduler is not None else 1,
                                      verbose=False if quiet else "auto", echo=typer.echo)
    except (ValueError, FileNotFoundError) as e:
        report_error(e)
    names = est.variables_
    typer.echo(f"data:    {path} ({n} rows; target {', '.join(targets)}; features {', '.join(names)})")
    subs = est.estimators_ if len(targets) > 1 else [est]
    show = sys.stdout.isatty() if show_equations is None else show_equations
    for t, sub in zip(targets, subs):
        h = held[t]
        if show:
            typer.echo(f"\nequations for {t} (> in use, * on the accuracy/complexity front):")
            typer.echo(sub.equations_.table())
            typer.echo("")
        typer.echo(f"formula: {t} = {sub.formula_}")
        typer.echo(f"held-out ({h['rows']} rows): RMSE = {h['rmse']:.3g}, R² = {h['r2']:.12g}")
        res = sub.result_
        if res["dropped"]:
            typer.echo(f"dropped: {', '.join(d['variable'] for d in res['dropped'])} (no information about {t})")
        if res["status"] == "no law found":
            typer.echo(f"note:    no law found: {res['reason']}")
        elif not sub.complete_:
            how = "the KAN (spline edges kept) predicts" if res["predict_with"] == "kan" else "the formula predicts"
            typer.echo(f"note:    no exact law found ({res['reason']}); formula above is the closest closed form, {how}")
        elif res["status"] != "exact":
            typer.echo(f"note:    {res['status']}: {res['reason']}")
        skipped = sub.result_.get("skipped_by_time_limit") or []
        if skipped:
            typer.echo(f"note: the time limit skipped {', '.join(skipped)} (raise --time-limit to run them)")
    folder = write_reports(out, targets, est, held)
    typer.echo(f"report:  {folder}/ (result.json, formula.txt, equations.csv, edges.png"
               f"{'' if len(targets) == 1 else '; one sub-folder per target'})")


def write_reports(out: Path, targets: list[str], est: Any, held: dict[str, Any]) -> Path:
    """The report folder of a search: one folder, or one sub-folder per target when there are several."""
    from nnlab.symbolic.report import write_report

    if len(targets) == 1:
        return write_report(out, est, held[targets[0]])
    for t, sub in zip(targets, est.estimators_):
        write_report(out / t, sub, held[t])
    return out
