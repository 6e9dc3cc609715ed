"""Shared bits of the example scripts: ``--fast`` / ``--out`` flags and figure saving."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def parse_args(doc: str, argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes (a few seconds; used by the tests)")
    p.add_argument("--out", type=Path, default=Path("figures"), help="folder for the figure (default: figures/)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    return args


def save(fig, out: Path, name: str) -> Path:
    from nnlab.viz import save_figure

    path = out / name
    save_figure(fig, path)
    print(f"figure: {path}")
    return path
