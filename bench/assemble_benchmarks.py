"""Rebuild BENCHMARKS.md from the per-topic result files in bench/results/.

Each benchmark script writes (or its author records) a markdown file with its exact command, the
machine and the tables; this script puts the hand-written summary first and then every topic,
in lecture order, with its headings moved one level down. Run it after any benchmark rerun:

    python bench/assemble_benchmarks.py
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ORDER = [  # (file, section title)
    ("kan.md", "KAN layers: speed, memory, exactness, forgetting, KAN vs MLP (issues 3 and 14, §6)"),
    ("symbolic.md", "Symbolic regression on the AI Feynman equations (issues 4 and 11, §6.3)"),
    ("symbolic_decompose.md", "Symbolic regression: recursive decomposition (issue 11, §6.3)"),
    ("symbolic_trust.md", "Symbolic regression: scale, junk columns, noise, snapping (issue 11, §6.3)"),
    ("symbolic_scale.md", "Symbolic search at scale: n_jobs, Dask, overhead (issue 12, §6.3)"),
    ("transfer.md", "Transfer learning, fine-tuning and LoRA (issue 5, §5.1–5.4)"),
    ("prune.md", "Pruning (issue 6, §5.5)"),
    ("prune_structured.md", "Structured pruning for speed, against Torch-Pruning (issue 16, §5.5)"),
    ("training.md", "Training loop and checkpoints (issues 2 and 15, §1)"),
    ("blocks.md", "Building blocks (issue 2, §2–§4)"),
    ("cli.md", "Run folders (issue 7)"),
    ("playground.md", "Playground (issue 8)"),
    ("playground_latency.md", "Playground: pause/delete latency and fair sharing (issue 13)"),
    ("gpu.md", "Device checks on a CUDA GPU"),
]


def demote(text: str) -> str:
    """Move every markdown heading one level down (outside fenced code) and fix relative links."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    body = "\n".join(out)
    # images/links relative to bench/results/ become relative to the repository root
    return re.sub(r"\]\((?!https?:|/|#|bench/|docs/)([^)]+)\)", r"](bench/results/\1)", body)


def main() -> None:
    parts = [(RESULTS / "SUMMARY.md").read_text().rstrip()]
    for name, title in ORDER:
        path = RESULTS / name
        if not path.exists():
            continue
        text = demote(path.read_text().strip())
        text = re.sub(r"\A##+ [^\n]*\n", "", text)  # the file's own title gives way to ours
        parts.append(f"## {title}\n\n_Source: `bench/results/{name}`._\n\n{text.strip()}")
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
