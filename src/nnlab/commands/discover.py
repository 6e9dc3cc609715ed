"""``nnlab discover``: from a CSV to a formula (lecture §6.3), with a report folder.

Without a CSV it runs on the bundled ``pendulum.csv``: 200 rows of a simple pendulum's period
``T = 2π·√(L/g)`` (L uniform in [0.1, 2] m, g uniform in [1, 25] m/s², noise-free).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from nnlab.commands._common import report_error
from nnlab.commands._validate import check_out_folder
from nnlab.data import read_csv

__all__ = ["discover", "BUNDLED"]

BUNDLED = Path(__file__).resolve().parents[1] / "symbolic" / "data" / "pendulum.csv"


def discover(
    csv_path: Optional[Path] = typer.Argument(None, metavar="[DATA.CSV]",
                                              help="CSV with a header row; default: the bundled pendulum data."),
    target: str = typer.Option(None, "--target", "-t", help="target column (default: T for the bundled data, else y)"),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="comma-separated feature columns"),
    out: Path = typer.Option(Path("discover-report"), "--out", "-o", help="report folder"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing report folder"),
    sep: Optional[str] = typer.Option(None, "--sep", help="CSV separator: , ; or tab (default: sniffed)"),
    time_limit: float = typer.Option(60.0, help="seconds; no new candidate KAN starts after it"),
    test_fraction: float = typer.Option(0.2, help="share of rows held out for RMSE and R²"),
    drop_nan: bool = typer.Option(False, "--drop-nan", help="drop rows with NaN/inf instead of refusing"),
    seed: int = typer.Option(0, help="seed of the held-out split and of the KANs"),
) -> None:
    """Discover a formula for TARGET from the other columns with KAN symbolic regression (§6.3)."""
    from nnlab.symbolic.regressor import SymbolicRegressor
    from nnlab.symbolic.report import metrics, write_report

    path = BUNDLED if csv_path is None else csv_path
    if target is None:
        target = "T" if csv_path is None else "y"
    check_out_folder(out, overwrite, marker="result.json")  # before the search, not after it
    try:
        X, y, names = read_csv(path, target, features.split(",") if features else None, sep=sep)  # nl.data
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        rng = np.random.default_rng(seed)
        finite = np.isfinite(X).all(axis=1) & np.isfinite(y)
        if not finite.all():
            if not drop_nan:
                raise ValueError(f"{int((~finite).sum())} row(s) hold NaN/inf or empty cells; clean them or "
                                 "pass --drop-nan")
            typer.echo(f"dropped {int((~finite).sum())} row(s) with NaN/inf or empty cells")
            X, y = X[finite], y[finite]
        perm = rng.permutation(len(y))
        n_test = max(1, int(round(test_fraction * len(y))))
        te, tr = perm[:n_test], perm[n_test:]
        est = SymbolicRegressor(time_limit=time_limit, variables=names, random_state=seed)
        est.fit(X[tr], y[tr])
    except (ValueError, FileNotFoundError) as e:
        report_error(e)
    held = metrics(y[te], est.predict(X[te]))
    typer.echo(f"data:    {path} ({len(y)} rows; target {target}; features {', '.join(names)})")
    typer.echo(f"formula: {target} = {est.formula_}")
    typer.echo(f"held-out ({len(te)} rows): RMSE = {held['rmse']:.3g}, R² = {held['r2']:.12g}")
    res = est.result_
    if res["dropped"]:
        typer.echo(f"dropped: {', '.join(d['variable'] for d in res['dropped'])} (no information about {target})")
    if res["status"] == "no law found":
        typer.echo(f"note:    no law found: {res['reason']}")
    elif not est.complete_:
        how = "the KAN (spline edges kept) predicts" if res["predict_with"] == "kan" else "the formula predicts"
        typer.echo(f"note:    no exact law found ({res['reason']}); formula above is the closest closed form, {how}")
    elif res["status"] != "exact":
        typer.echo(f"note:    {res['status']}: {res['reason']}")
    folder = write_report(out, est, {"rows": len(te), **held})
    typer.echo(f"report:  {folder}/ (result.json, formula.txt, edges.png)")
