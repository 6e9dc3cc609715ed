"""``nnlab discover``: from a CSV to a formula (lecture §6.3), with a report folder.

Without a CSV it runs on the bundled ``pendulum.csv``: 200 rows of a simple pendulum's period
``T = 2π·√(L/g)`` (L uniform in [0.1, 2] m, g uniform in [1, 25] m/s², noise-free).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional

import numpy as np
import typer

__all__ = ["discover", "read_csv", "BUNDLED"]

BUNDLED = Path(__file__).resolve().parents[1] / "symbolic" / "data" / "pendulum.csv"


def read_csv(path: Path, target: str, features: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read numeric columns: (X, y, feature names). Empty cells become NaN; anything else that
    is not a number raises ``ValueError`` naming the column, row and value."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no CSV file at {path}")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise ValueError(f"target column {target!r} is not in {path.name}; columns: {', '.join(header)}")
    if features is None:
        features = [h for h in header if h != target]
    for f in features:
        if f not in header:
            raise ValueError(f"feature column {f!r} is not in {path.name}; columns: {', '.join(header)}")
        if f == target:
            raise ValueError(f"column {f!r} is both the target and a feature")
    if not features:
        raise ValueError("no feature columns: the CSV needs at least one column besides the target")
    cols = [header.index(c) for c in features + [target]]
    data = np.empty((len(rows) - 1, len(cols)))
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"row {r} of {path.name} has {len(row)} cells but the header has {len(header)}")
        for j, c in enumerate(cols):
            cell = row[c].strip()
            if cell == "" or cell.lower() in ("nan", "na"):
                data[r - 2, j] = math.nan
                continue
            try:
                data[r - 2, j] = float(cell)
            except ValueError:
                raise ValueError(f"column {header[c]!r} is not numeric: row {r} holds {cell!r}") from None
    return data[:, :-1], data[:, -1], features


def discover(
    csv_path: Optional[Path] = typer.Argument(None, metavar="[DATA.CSV]",
                                              help="CSV with a header row; default: the bundled pendulum data."),
    target: str = typer.Option(None, "--target", "-t", help="target column (default: T for the bundled data, else y)"),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="comma-separated feature columns"),
    out: Path = typer.Option(Path("discover-report"), "--out", "-o", help="report folder"),
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
    try:
        X, y, names = read_csv(path, target, features.split(",") if features else None)
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
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    held = metrics(y[te], est.predict(X[te]))
    typer.echo(f"data:    {path} ({len(y)} rows; target {target}; features {', '.join(names)})")
    typer.echo(f"formula: {target} = {est.formula_}")
    typer.echo(f"held-out ({len(te)} rows): RMSE = {held['rmse']:.3g}, R² = {held['r2']:.12g}")
    if not est.complete_:
        bad = est.result_["unmatched_edges"]
        typer.echo(f"note: {len(bad)} edge(s) kept their spline (no library match); the formula shows them as phi_*")
    folder = write_report(out, est, {"rows": len(te), **held})
    typer.echo(f"report:  {folder}/ (result.json, formula.txt, edges.png)")
