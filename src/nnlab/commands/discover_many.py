"""``nnlab discover-many``: one symbolic search per CSV file, a report folder each, one summary.

``nnlab discover-many DIR_OR_CSV... --target y [--jobs 4] [--out folder]``: every ``*.csv`` of a
folder (or each file named) is searched as ``nnlab discover`` would; its report lands in
``OUT/<file stem>/`` and a row in ``OUT/summary.csv`` (also printed). A report folder is written
under a temporary name and renamed when complete, so a folder that exists is a finished search:
an interrupted batch run again skips those files and resumes with the rest. ``--jobs k`` runs k
files at once (joblib processes; each search then uses one process).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import typer

from nnlab._io import write_text

__all__ = ["discover_many", "collect", "COLUMNS"]

COLUMNS = ("file", "target", "status", "formula", "rmse", "r2", "complexity", "seconds", "report")


def collect(paths: list[Path]) -> list[Path]:
    """The CSV files named, or found (``*.csv``, sorted) in the folders named; refuses empty folders,
    missing paths and two files whose report folders (their stems) would clash."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.glob("*.csv") if f.is_file())
            if not found:
                raise ValueError(f"folder {p} holds no .csv files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no file or folder at {p}")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems and stems[f.stem].resolve() != f.resolve():
            raise ValueError(f"{stems[f.stem]} and {f} would share the report folder {f.stem!r}; rename one")
        stems[f.stem] = f
    return list(stems.values())


def _check_header(path: Path, targets: list[str]) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
    missing = [t for t in targets if t not in header]
    if missing:
        raise ValueError(f"target column {missing[0]!r} is not in {path}; columns: {', '.join(header) or '(none)'}")


def _row_from_report(path: Path, folder: Path, targets: list[str], status: str) -> dict[str, Any]:
    rows = []
    for t in targets:
        sub = folder if len(targets) == 1 else folder / t
        res = json.loads((sub / "result.json").read_text())
        held = res.get("held_out", {})
        best = res.get("best_index")
        eqs = res.get("equations") or []
        rows.append({"file": str(path), "target": t, "status": status, "formula": res.get("formula"),
                     "rmse": held.get("rmse"), "r2": held.get("r2"),
                     "complexity": eqs[best]["complexity"] if best is not None and best < len(eqs) else None,
                     "seconds": res.get("seconds"), "report": str(sub)})
    return {"rows": rows}


def _one(path: Path, out: Path, targets: list[str], opts: dict[str, Any]) -> dict[str, Any]:
    """Search one file and write its report folder atomically (temporary folder, then rename)."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    from nnlab.commands.discover import search_csv, write_reports

    folder = out / path.stem
    t0 = time.monotonic()
    try:
        est, held, _ = search_csv(path, targets, opts["features"], time_limit=opts["time_limit"],
                                  test_fraction=opts["test_fraction"], seed=opts["seed"], drop_nan=opts["drop_nan"],
                                  n_jobs=1, verbose=False, echo=lambda s: None)
    except (ValueError, FileNotFoundError) as e:
        return {"rows": [{"file": str(path), "target": ",".join(targets), "status": f"failed: {e}",
                          "seconds": round(time.monotonic() - t0, 3)}]}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".partial", dir=out))
    try:
        write_reports(tmp, targets, est, held)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _row_from_report(path, folder, targets, "done")


def _summary_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'file':<24} {'target':<8} {'status':<10} {'R²':>14}  formula", "-" * 90]
    for r in rows:
        status = r["status"] if not r["status"].startswith("failed") else "failed"
        r2 = f"{r['r2']:.12g}" if isinstance(r.get("r2"), float) else "-"
        f = str(r.get("formula") or r["status"])
        lines.append(f"{Path(r['file']).name[:24]:<24} {r['target'][:8]:<8} {status:<10} {r2:>14}  "
                     f"{f if len(f) <= 60 else f[:57] + '...'}")
    return "\n".join(lines)


def discover_many(
    paths: list[Path] = typer.Argument(..., metavar="DIR_OR_CSV...", help="folders of .csv files, or .csv files"),
    target: str = typer.Option("y", "--target", "-t", help="target column(s) of every file, comma-separated"),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="comma-separated feature columns"),
    out: Path = typer.Option(Path("discover-many"), "--out", "-o", help="folder for the reports and summary.csv"),
    jobs: int = typer.Option(1, "--jobs", "-j", help="files searched at once (processes); -1 = every core"),
    time_limit: float = typer.Option(60.0, help="seconds per file; no new candidate KAN starts after it"),
    test_fraction: float = typer.Option(0.2, help="share of rows held out for RMSE and R²"),
    drop_nan: bool = typer.Option(False, "--drop-nan", help="drop rows with NaN/inf instead of refusing"),
    seed: int = typer.Option(0, min=0, help="seed of the held-out split and of the KANs"),
) -> None:
    """Run one formula search per CSV file; a report folder each and a summary table (resumable)."""
    from nnlab.commands.discover import parse_targets
    from nnlab.symbolic.parallel import check_n_jobs

    try:
        targets = parse_targets(target)
        check_n_jobs(jobs)
        files = collect(paths)
        for f in files:
            _check_header(f, targets)
    except (ValueError, FileNotFoundError) as e:
        from nnlab.commands._common import report_error

        report_error(e)
    out.mkdir(parents=True, exist_ok=True)
    opts = {"features": features.split(",") if features else None, "time_limit": time_limit,
            "test_fraction": test_fraction, "seed": seed, "drop_nan": drop_nan}
    rows: dict[Path, list[dict[str, Any]]] = {}
    todo = []
    for f in files:
        if (out / f.stem).is_dir():
            try:
                rows[f] = _row_from_report(f, out / f.stem, targets, "skipped (done)")["rows"]
                continue
            except (OSError, ValueError, KeyError):  # not one of ours: search again
                shutil.rmtree(out / f.stem, ignore_errors=True)
        todo.append(f)
    if len(todo) < len(files):
        typer.echo(f"{len(files) - len(todo)} file(s) already done in {out}/: skipped")

    def save() -> None:
        write_text(out / "summary.csv", _summary_text([r for f in files if f in rows for r in rows[f]]))

    if todo:
        from joblib import Parallel, delayed

        typer.echo(f"searching {len(todo)} file(s), {jobs if jobs != -1 else 'every core'} at a time")
        par = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
        for res in par(delayed(_run)(f, out, targets, opts) for f in todo):
            f, got = res
            rows[f] = got["rows"]
            for r in got["rows"]:
                typer.echo(f"{f.name}: {r['status'] if r['status'] != 'done' else r['target'] + ' = ' + str(r['formula'])}")
            save()
    save()
    all_rows = [r for f in files for r in rows[f]]
    typer.echo("\n" + _table(all_rows))
    typer.echo(f"\nsummary: {out / 'summary.csv'}")
    failed = [r for r in all_rows if r["status"].startswith("failed")]
    if failed:
        typer.echo(f"Error: {len(failed)} file(s) failed (see summary.csv); run again to retry them", err=True)
        raise typer.Exit(code=1)


def _run(f: Path, out: Path, targets: list[str], opts: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    return f, _one(f, out, targets, opts)
