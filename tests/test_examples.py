"""Every example in examples/ runs in its --fast mode, writes its figure and reproduces its claim."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import nnlab as nl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _has(*names: str) -> str | None:
    """None if every dotted name exists on nnlab, else the first missing one."""
    for name in names:
        obj, path = nl, "nnlab"
        for part in name.split("."):
            path = f"{path}.{part}"
            if not hasattr(obj, part):
                try:  # a subpackage not imported by nnlab/__init__.py (yet)
                    importlib.import_module(path)
                except ImportError:
                    return name
            if not hasattr(obj, part):
                return name
            obj = getattr(obj, part)
    return None


def check_logic(r):
    assert (r["n2"], r["n3"]) == (14, 104)
    assert r["xor_table"] == [0, 1, 1, 0]
    acc = r["accuracy"]
    assert acc["linear OR"] == 1.0 and acc["linear XOR"] <= 0.75 and acc["MLP XOR"] == 1.0


def check_backprop(r):
    assert r["worst"] < 1e-12 and len(r["errors"]) >= 10


def check_low_rank(r):
    assert r["gap"] < 1e-10
    assert all(rand >= svd - 1e-9 for rand, svd in zip(r["random_err"], r["svd_err"]))
    n, m = 48, 32
    assert all(v == k * (n + m) for k, v in r["n_params"].items())


def check_vanishing(r):
    ratios = r["ratios"]
    assert ratios["sigmoid, Xavier (vanishing)"] < 1e-6
    for cure in ("ReLU, He init", "sigmoid + batch norm", "sigmoid + residual"):
        assert ratios[cure] > 1e-2, cure
    assert r["clip_before"] > 1e3 and abs(r["clip_after"] - 1.0) < 1e-4 and r["value_max"] <= 0.01 + 1e-12


def check_activations(r):
    assert max(r["errors"].values()) < 1e-10
    assert all(abs(v) < 1e-12 for v in r["relations"].values())


def check_residual(r):
    for depth in (10, 20, 50):
        assert r["residual"][depth]["train_loss"][-1] < r["plain"][depth]["train_loss"][-1], depth
    assert r["residual"][50]["accuracy"] > r["plain"][50]["accuracy"] + 0.15


def check_transfer(r):
    res = r["results"]
    assert r["merge_diff"] < 1e-4
    assert res["LoRA r=4 + head"][1] < 0.2 * res["from scratch"][1]
    assert res["head only (A′ frozen)"][0] > 0.5  # far above chance (0.2): A′'s features transfer
    assert "scratch" in r["conclusion"] and "bench/results/transfer.md" in r["conclusion"]


def check_pruning(r):
    acc = r["accuracy"]
    assert acc["magnitude"][0.0] > 0.8
    assert acc["magnitude"][0.9] > acc["random"][0.9]
    assert acc["OBS"][0.9] >= acc["magnitude"][0.9]  # the compensating update pays off


def check_kan(r):
    import sympy

    x1, x2 = sympy.symbols("x1 x2")
    assert sympy.simplify(sympy.sympify(r["formula"]) - (sympy.sin(sympy.pi * x1) + x2 ** 2)) == 0, r["formula"]
    assert r["rmse"] < 1e-4 and r["kan_rmse"] < 0.1
    assert r["pruned_width"][1] < 5  # pruning removed hidden nodes, in fast mode too


# (script, figure, dotted names it needs, check)
CASES = [
    ("logic_xor", "logic_xor.png", ("logic", "fit", "MLP"), check_logic),
    ("backprop", "backprop.png", ("Dense", "activations"), check_backprop),
    ("low_rank", "low_rank.png", ("LowRank",), check_low_rank),
    ("vanishing_gradients", "vanishing_gradients.png", ("diagnostics", "clip", "MLP"), check_vanishing),
    ("activation_gallery", "activation_gallery.png", ("activations",), check_activations),
    ("residual_depth", "residual_depth.png", ("fit", "data.toy", "MLP"), check_residual),
    ("transfer_lora", "transfer_lora.png", ("transfer.finetune", "lora.inject", "data.digits"), check_transfer),
    ("pruning_curves", "pruning_curves.png", ("prune.magnitude", "prune.obd", "data.digits"), check_pruning),
    ("kan_discovery", "kan_discovery.png", ("KAN", "kan.plot", "symbolic.SymbolicRegressor"), check_kan),
]


@pytest.mark.parametrize("script,figure,needs,check", CASES, ids=[c[0] for c in CASES])
def test_example_fast(tmp_path, monkeypatch, script, figure, needs, check):
    missing = _has(*needs)
    assert not missing, f"examples/{script}.py needs nl.{missing}, which nnlab lacks"
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{script}", EXAMPLES / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--fast", "--out", str(tmp_path)])
    assert (tmp_path / figure).stat().st_size > 5000
    check(result)


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    scripts.discard("continual_learning")  # the KAN engineer's example has its own test
    assert scripts <= {c[0] for c in CASES}, scripts - {c[0] for c in CASES}
