"""``CSVLogger``: the run's History as a CSV file, one row per epoch, rewritten atomically."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from nnlab._io import write_text

from ._monitor import check_writable_dir

__all__ = ["CSVLogger"]


class CSVLogger:
    """Write ``path`` (a ``.csv`` file) after every epoch: ``epoch, train_loss, val_loss,
    train_acc, val_acc, grad_norm, lr, penalty`` (empty cells where a metric is not recorded).

    The file is rebuilt from the whole History each epoch and replaced atomically, so it never
    holds a torn row and a resumed run continues it without duplicates. Rank 0 writes.
    """

    COLUMNS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "grad_norm", "lr", "penalty")

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def on_fit_start(self, state: Any) -> None:
        if state.rank == 0:
            check_writable_dir(self.path.parent, "CSVLogger")

    def on_epoch_end(self, state: Any) -> None:
        if state.rank != 0:
            return
        h = state.history.as_dict()
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(self.COLUMNS)
        cols = ["epochs", *self.COLUMNS[1:]]
        for i in range(len(h["epochs"])):
            out.writerow(["" if h[c][i] is None else repr(h[c][i]) for c in cols])
        write_text(self.path, buf.getvalue())
