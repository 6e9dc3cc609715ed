"""Rewrite ``bench/results/symbolic.md`` from the saved Feynman records (``bench/results/feynman/*.json``)."""
from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import numpy as np

from feynman_classes import CLASSES, LABELS, failure_tags

METHODS = ("ours", "gplearn", "pykan")
HERE = Path(__file__).resolve().parent
NOTES = HERE / "feynman_notes.md"  # hand-written notes appended to the generated file


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        name = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        name = platform.processor() or "unknown"
    return name


def _load_line(runs: dict) -> str:
    loads = [r["load1"] for recs in runs.values() for r in recs.values() if r.get("load1") is not None]
    if not loads:
        return "the load was not recorded."
    return (f"the 1-minute load average when a fit ended was {np.median(loads):.0f} (median; max "
            f"{max(loads):.0f}) on 2 cores.")


def load_runs(runs_dir: Path) -> dict:
    """{(set, method, noise): {id: record}} from every saved JSON file."""
    out = {}
    for p in sorted(runs_dir.glob("*__*__noise*.json")):
        set_name, method, noise = p.stem.split("__")
        out[(set_name, method, float(noise[len("noise"):]))] = json.loads(p.read_text())
    return out


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "–"


def _summary_row(label: str, recs: list[dict], expected: int) -> str:
    small = [r for r in recs if r["n_vars"] <= 3]
    secs = [r["seconds"] for r in recs if r.get("seconds") is not None]
    med = f"{np.median(secs):.1f}" if secs else "–"
    mx = f"{max(secs):.1f}" if secs else "–"
    cpu = [r["cpu_seconds"] for r in recs if r.get("cpu_seconds") is not None]
    cpu_s = f"{np.median(cpu):.1f} / {max(cpu):.1f}" if cpu else "–"
    run = f"{len(recs)}" + ("" if len(recs) >= expected else f" of {expected} (**partial**)")
    return (f"| {label} | {run} | {_pct(sum(r['exact'] for r in recs), len(recs))} | "
            f"{_pct(sum(r['exact'] for r in small), len(small))} | {med} | {mx} | {cpu_s} | "
            f"{sum(r['status'] == 'crash' for r in recs)} | {sum(r['status'] == 'timeout' for r in recs)} |")


SUMMARY_HEAD = ["| method | equations run | exact (all) | exact (1–3 vars) | wall s median | wall s max "
                "| CPU s median / max | crashes | timeouts (> 120 CPU s) |", "|---|---|---|---|---|---|---|---|---|"]


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if r["status"] != "ok":
        return f"{r['status']} / – / {r['seconds']}"
    rel = r["rel_err"]
    rel_s = f"{rel:.1e}" if rel is not None and rel == rel else "nan"
    return f"{'**yes**' if r['exact'] else 'no'} / {rel_s} / {r['seconds']}"


def _short(f: str | None, n: int = 80) -> str:
    f = (f or "").replace("|", "\\|")
    return f if len(f) <= n else f[: n - 3] + "..."


def section(set_name: str, eqs: list[dict], runs: dict, title: str) -> list[str]:
    by_id = {e["id"]: e for e in eqs}
    tags = {e["id"]: failure_tags(e["formula"], e["variables"], e["ranges"]) for e in eqs}
    clean = [(m, runs[(set_name, m, 0.0)]) for m in METHODS if (set_name, m, 0.0) in runs]
    lines = [f"## {title}", "", *SUMMARY_HEAD]
    for m, recs in clean:
        lines.append(_summary_row(m, [r for i, r in recs.items() if i in by_id], len(eqs)))
    common = [i for i in by_id if all(i in recs for _, recs in clean)]
    if len(clean) > 1:
        lines += ["", f"On the {len(common)} equations every method ran: " + ", ".join(
            f"{m} {sum(recs[i]['exact'] for i in common)}/{len(common)}" for m, recs in clean) + " exact."]
    # failure classes
    lines += ["", f"### Exact recoveries by failure class ({set_name}, no noise)", "",
              "Primary class = the first matching tag in the order below, read from the truth's sympy tree and "
              "its ranges by `bench/feynman_classes.py:failure_tags` (no hand list). A row counts each equation "
              "once; the last column counts every equation carrying the tag.", "",
              "| class | equations | " + " | ".join(m for m, _ in clean) + " | tagged (any) |",
              "|---|---|" + "---|" * len(clean) + "---|"]
    for c in CLASSES:
        ids = [i for i in by_id if tags[i][0] == c]
        cells = [f"{sum(recs[i]['exact'] for i in ids if i in recs)}/{sum(i in recs for i in ids)}" for _, recs in clean]
        lines.append(f"| {LABELS[c]} | {len(ids)} | " + " | ".join(cells) + f" | {sum(c in t for t in tags.values())} |")
    # noise
    noisy = sorted((m, g) for (s, m, g) in runs if s == set_name and g > 0)
    if noisy:
        small = [e for e in eqs if e["n_vars"] <= 3]
        lines += ["", f"### Noise (SRBench protocol), {set_name}, the {len(small)} equations with 1–3 variables", "",
                  "Target noise of standard deviation γ·RMS(y) on the training rows only (seed 2); exact = the "
                  "returned formula is sympy-equivalent to the truth (after snapping), scored on noiseless fresh "
                  "points.", "",
                  "| method | γ | equations run | exact | same equations at γ = 0 | median s | max s | CPU s median / max "
                  "| crashes | timeouts |", "|---|---|---|---|---|---|---|---|---|---|"]
        for m in METHODS:
            for g in sorted({0.0} | {g for mm, g in noisy if mm == m}):
                recs = runs.get((set_name, m, g))
                if not recs or m not in {mm for mm, _ in noisy}:
                    continue
                rs = [recs[e["id"]] for e in small if e["id"] in recs]
                secs = [r["seconds"] for r in rs if r.get("seconds") is not None]
                cpu = [r["cpu_seconds"] for r in rs if r.get("cpu_seconds") is not None]
                cpu_s = f"{np.median(cpu):.1f} / {max(cpu):.1f}" if cpu else "–"
                run = f"{len(rs)}" + ("" if len(rs) >= len(small) else f" of {len(small)} (**partial**)")
                base = runs.get((set_name, m, 0.0), {})
                same = [base[r["id"]]["exact"] for r in rs if r["id"] in base]
                lines.append(f"| {m} | {g:g} | {run} | {_pct(sum(r['exact'] for r in rs), len(rs))} | "
                             f"{_pct(sum(same), len(same))} | "
                             f"{np.median(secs) if secs else float('nan'):.1f} | {max(secs) if secs else float('nan'):.1f} | "
                             f"{cpu_s} | {sum(r['status'] == 'crash' for r in rs)} | "
                             f"{sum(r['status'] == 'timeout' for r in rs)} |")
    # per equation
    cols = [(m, 0.0) for m, _ in clean] + [("ours", g) for m, g in noisy if m == "ours"]
    lines += ["", f"### Per equation ({set_name})", "", "Cells: exact / relative RMSE on fresh points / seconds.", "",
              "| id | vars | class | truth | " + " | ".join(m if g == 0 else f"{m} γ={g:g}" for m, g in cols) +
              " | ours: formula |", "|---|---|---|---|" + "---|" * len(cols) + "---|"]
    for i, e in by_id.items():
        cells = [_cell(runs[(set_name, m, g)].get(i)) for m, g in cols]
        f = runs.get((set_name, "ours", 0.0), {}).get(i, {}).get("formula")
        lines.append(f"| {i} | {e['n_vars']} | {', '.join(tags[i])} | `{e['formula']}` | " + " | ".join(cells) +
                     f" | `{_short(f)}` |")
    return lines + [""]


def write_report(runs_dir: Path, sets: dict) -> str:
    import sys

    sys.path.insert(0, str(HERE.parent / "src"))
    from feynman import load_equations
    from nnlab._io import write_text

    runs = load_runs(runs_dir)
    commands = sorted({r.get("command", "") for recs in runs.values() for r in recs.values()} - {""})
    head = [
        "# Symbolic regression on the Feynman equations (issues 4 and 11)", "",
        "**Rerun ours** (e.g. after merging the symbolic branches), from the repository root:", "",
        "    python bench/feynman.py --suite ours --force", "",
        "It refits ours on the 51 public equations, the unseen set (`bench/data/feynman_unseen.csv`), the held-out "
        "rest of the database (`bench/data/feynman_heldout.csv`) and the "
        "27 public equations with 1–3 variables at noise γ = 1e-3 and 1e-2, 2 workers, a 40 s soft limit and a "
        "120 s hard cap per equation (both in CPU seconds of the worker), then rewrites this file from `bench/results/feynman/*.json` (the peers' "
        "records stay). Without `--force` a run resumes: equations already saved are skipped. "
        "`python bench/feynman.py --suite peers` reruns gplearn and pykan; `--report-only` only rewrites this file.", "",
        f"Machine: {_cpu()}, 2 cores **shared with other engineers'** builds, tests and benchmarks, so wall "
        f"times are noisy and pessimistic: {_load_line(runs)} 1 torch thread per worker process. "
        "The soft limit and the cap count CPU seconds of the worker (`--clock cpu`, the default; see "
        "Definitions), so a record does not depend on the load or the number of workers. Records with a "
        "`machine` field ran elsewhere (the peers' last 44 fits: the CPU of the session's device machine, "
        "see bench/feynman_notes.md).", "",
        "Commands that produced the records below (a row marked **partial** was cut by the session's "
        "deadline; the same command without `--force` resumes it, skipping saved equations):", ""]
    head += [f"    {c}" for c in commands] + [""]
    body = []
    for set_name, title in (("public", "Public Feynman (51 equations)"),
                            ("unseen", "Unseen Feynman-style set (`bench/data/feynman_unseen.csv`)"),
                            ("heldout", "Held-out: the rest of the AI Feynman database "
                                        "(`bench/data/feynman_heldout.csv`, 15 equations + 14 bonus)")):
        if set_name in sets and Path(sets[set_name]).is_file():
            body += section(set_name, load_equations(Path(sets[set_name])), runs, title)
    notes = NOTES.read_text().splitlines() if NOTES.is_file() else []
    text = "\n".join(head + body + notes) + "\n"
    write_text(HERE / "results" / "symbolic.md", text)
    return text
