"""Data sets for the lecture's experiments: 2-D toy problems, scikit-learn's digits, CSV files.

* :func:`toy`: the two-class 2-D sets of TensorFlow Playground (lecture §2.4), for seeing what
  a linear classifier cannot do (xor, circles, spiral) and what an MLP learns;
* :func:`digits`: the bundled 8×8 digits (1,797 images, 10 classes), stratified train/val/test;
* :func:`read_csv` / :func:`load_csv`: a numeric CSV file as arrays / ``(X, y)``, with errors that
  name the bad column and line.
"""
from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["toy", "toy_names", "digits", "Splits", "read_csv", "read_table", "load_csv"]


# ---- toy 2-D sets --------------------------------------------------------------------------------
def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _xor(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    X += np.sign(X) * 0.05  # a small margin around the axes, as in the Playground
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)  # 1 when exactly one coordinate is positive
    return X, y


def _circles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_out, n_in = _halves(n)
    r = np.concatenate([rng.uniform(0.0, 0.5, n_in), rng.uniform(0.7, 1.0, n_out)])
    t = rng.uniform(0.0, 2 * np.pi, n)
    y = np.concatenate([np.ones(n_in), np.zeros(n_out)]).astype(np.int64)  # 1: inner disc
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1), y


def _gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n0, n1 = _halves(n)
    X = np.concatenate([rng.normal(-0.5, 0.2, (n0, 2)), rng.normal(0.5, 0.2, (n1, 2))])
    return X, np.concatenate([np.zeros(n0), np.ones(n1)]).astype(np.int64)


def _spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    parts, labels = [], []
    for label, m in enumerate(_halves(n)):
        s = np.arange(m) / max(m, 1)
        r = s  # radius grows from 0 to 1 ...
        t = 1.75 * s * 2 * np.pi + label * np.pi  # ... over 1.75 turns; class 1 rotated by π
        parts.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        labels.append(np.full(m, label, dtype=np.int64))
    return np.concatenate(parts), np.concatenate(labels)


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # the two interleaved half circles of scikit-learn's make_moons, drawn at random angles
    n0, n1 = _halves(n)
    t0, t1 = rng.uniform(0.0, np.pi, n0), rng.uniform(0.0, np.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    X = (np.concatenate([upper, lower]) - np.array([0.5, 0.25])) / 1.5  # centred, about [-1, 1]²
    return X, np.concatenate([np.zeros(n0), np.ones(n1)]).astype(np.int64)


_TOYS: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "xor": _xor, "circles": _circles, "gaussians": _gaussians, "spiral": _spiral, "moons": _moons}


def toy_names() -> list[str]:
    return list(_TOYS)


def toy(name: str, n: int = 200, noise: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D two-class toy set as in TensorFlow Playground (lecture §2.4).

    Args:
        name: ``"xor"``, ``"circles"``, ``"gaussians"``, ``"spiral"`` or ``"moons"``.
        n: number of points (split evenly between the two classes).
        noise: standard deviation of Gaussian noise added to each coordinate (data lie in about
            [-1, 1]², so 0.1 is mild and 0.3 is heavy).
        seed: the only source of randomness; equal seeds give equal sets.

    Returns:
        ``X`` float32 ``(n, 2)`` and ``y`` int64 ``(n,)`` with labels 0/1, in shuffled order.
    """
    if name not in _TOYS:
        raise ValueError(f"unknown toy data set {name!r}; expected one of {toy_names()}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (points in both classes), got {n!r}")
    noise = float(noise)
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    X, y = _TOYS[name](int(n), rng)
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    perm = rng.permutation(len(y))
    return torch.from_numpy(X[perm].astype(np.float32)), torch.from_numpy(y[perm])


# ---- digits --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Splits:
    """Train/validation/test splits, each an ``(X, y)`` pair of tensors."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    n_classes: int


def digits(seed: int = 0, val: float = 0.15, test: float = 0.15) -> Splits:
    """scikit-learn's bundled 8×8 digits: X float32 ``(n, 64)`` scaled to [0, 1], y int64 in 0..9.

    The split is stratified by class (each split has the same class proportions), with fractions
    ``val`` and ``test`` of the 1,797 images; ``seed`` fixes it.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(f"val and test must be fractions in (0, 1) with val + test < 1; got {val}, {test}")
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test, stratify=y, random_state=seed)
    X_tr, X_val, y_tr, y_val = train_test_split(X_rest, y_rest, test_size=val / (1 - test),
                                                stratify=y_rest, random_state=seed)
    t = torch.from_numpy
    return Splits((t(X_tr), t(y_tr)), (t(X_val), t(y_val)), (t(X_test), t(y_test)), n_classes=10)


# ---- CSV -----------------------------------------------------------------------------------------
_MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "None"}
SEPARATORS = (",", ";", "\t")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _sniff(lines: list[str]) -> str:
    """The separator among comma, semicolon and tab that splits the first lines into the same
    number (> 1) of fields most often, the most fields winning ties; comma if none does."""
    best, best_key = ",", (0, 0)
    for sep in SEPARATORS:
        counts = [len(r) for r in csv.reader(lines, delimiter=sep) if any(c.strip() for c in r)]
        if not counts or counts[0] < 2:
            continue
        key = (sum(c == counts[0] for c in counts), counts[0])
        if key > best_key:
            best, best_key = sep, key
    return best


def read_table(path: str | Path, sep: str | None = None) -> tuple[list[str], list[list[str]], str]:
    """A CSV file's ``(header, data rows, separator)``: UTF-8 with or without a byte-order mark,
    separator ``sep`` or sniffed (comma, semicolon or tab), blank lines skipped; a header with
    duplicate or empty column names is refused, naming them."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a CSV file", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    if sep is not None:
        sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(sep, sep)
        if len(sep) != 1 or sep in "\"\r\n":
            raise ValueError(f"sep must be one character such as , ; or tab, got {sep!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig drops a byte-order mark
    except UnicodeDecodeError as e:
        raise ValueError(f"{path.name} is not UTF-8 text (byte {e.start}: {e.reason}); save it as "
                         "UTF-8 CSV") from None
    if "\x00" in text:
        raise ValueError(f"{path.name} holds NUL bytes: it is not a text CSV file")
    lines = text.splitlines()
    if sep is None:
        sep = _sniff([ln for ln in lines[:50] if ln.strip()])
    try:
        rows = list(csv.reader(lines, delimiter=sep))
    except csv.Error as e:
        raise ValueError(f"{path.name} is not a valid CSV file: {e}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path} is empty; expected a header row and data rows")
    header = [h.strip() for h in rows[0]]
    empty = [i + 1 for i, h in enumerate(header) if not h]
    if empty:
        raise ValueError(f"column(s) {', '.join(map(str, empty))} of {path.name} have no name in the "
                         f"header ({_SEP_NAMES.get(sep, repr(sep))}-separated); name every column")
    seen: dict[str, int] = {}
    for h in header:
        seen[h] = seen.get(h, 0) + 1
    dups = [h for h, n in seen.items() if n > 1]
    if dups:
        raise ValueError(f"{path.name} has duplicate column names: "
                         + ", ".join(f"{h!r} ({seen[h]} times)" for h in dups)
                         + "; give every column its own name")
    return header, rows[1:], sep


def read_csv(path: str | Path, target: str | None, features: Sequence[str] | None = None,
             sep: str | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Parse a numeric CSV file with a header row: ``(X float64 (n, d), y float64 (n,), feature names)``.

    The one CSV reader of nnlab (``load_csv``, ``nnlab train``, ``nnlab predict`` and ``nnlab
    discover`` build on it). The file is UTF-8 (a byte-order mark is dropped); the separator is
    ``sep`` or sniffed among comma, semicolon and tab. Duplicate or empty column names are refused.
    ``features`` picks and orders the input columns (default: every column but ``target``);
    ``target=None`` reads features only and returns ``y=None``.
    Empty or NaN-like cells (``""``, ``nan``, ``NA``, ``null``, ...) become NaN, so callers decide
    whether to refuse or drop those rows; anything else that is not a number raises ``ValueError``
    naming the column, line and value. A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    header, body, sep = read_table(path, sep)
    columns = ", ".join(header)
    if target is not None and target not in header:
        raise ValueError(f"target column {target!r} is not in {path.name}; columns: {columns}")
    cols = [c for c in header if c != target] if features is None else list(features)
    if len(set(cols)) != len(cols):
        raise ValueError(f"features name a column twice: {', '.join(cols)}")
    unknown = [c for c in cols if c not in header]
    if unknown:
        raise ValueError(f"feature column(s) {', '.join(map(repr, unknown))} not in {path.name}; "
                         f"columns: {columns}")
    if target is not None and target in cols:
        raise ValueError(f"target column {target!r} is also listed in features")
    if not cols:
        raise ValueError(f"{path.name} has no feature columns besides the target {target!r}")
    if not body:
        raise ValueError(f"{path} has a header but no data rows")
    idx = [header.index(c) for c in cols + ([target] if target is not None else [])]
    data = np.empty((len(body), len(idx)), dtype=np.float64)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{path.name} line {r + 2} has {len(row)} fields but the header has "
                             f"{len(header)} ({_SEP_NAMES.get(sep, repr(sep))}-separated)")
        for j, i in enumerate(idx):
            cell = row[i].strip()
            if cell in _MISSING:
                data[r, j] = np.nan
                continue
            try:
                data[r, j] = float(cell)
            except ValueError:
                raise ValueError(f"column {header[i]!r} of {path.name} is not numeric: line {r + 2} "
                                 f"holds {cell[:40]!r}; encode it as numbers or leave it out of "
                                 "features") from None
    if target is None:
        return data, None, cols
    return data[:, :-1], data[:, -1], cols


def load_csv(path: str | Path, target: str, features: Sequence[str] | None = None,
             dropna: bool = False, sep: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a numeric CSV file with a header row into ``(X float32 (n, d), y (n,))``.

    ``y`` is int64 when every target value is an integer (class labels), float32 otherwise.
    ``features`` picks and orders the input columns (default: every column but ``target``).
    Rows with a missing or NaN value are an error that counts them, unless ``dropna=True``
    (they are then dropped with a warning). Parsing and its errors: :func:`read_csv`.
    """
    path = Path(path)
    X, t, _ = read_csv(path, target, features, sep=sep)
    data = np.column_stack([X, t])
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad)) + 2
        msg = f"{int(bad.sum())} of {len(data)} rows in {path.name} have missing/NaN/inf values (first on line {first})"
        if not dropna:
            raise ValueError(msg + "; clean them or pass dropna=True to drop them")
        warnings.warn(msg + "; dropped", UserWarning, stacklevel=2)
        data = data[~bad]
        if len(data) == 0:
            raise ValueError(f"every row of {path.name} has a missing value; nothing left")
    X = torch.from_numpy(data[:, :-1].astype(np.float32))
    t = data[:, -1]
    y = torch.from_numpy(t.astype(np.int64)) if np.all(t == np.round(t)) else torch.from_numpy(t.astype(np.float32))
    return X, y
