"""The §6.3 locality claim, small: a KAN keeps earlier peaks, an MLP forgets them."""
import importlib.util
import warnings
from pathlib import Path

from nnlab.kan import GridRangeWarning

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "continual_learning.py"


def test_kan_forgets_less_than_mlp():
    spec = importlib.util.spec_from_file_location("continual_learning", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        res = mod.run(grid=40, steps=40, n=64, hidden=32, seed=0)
    assert len(res["kan"]) == 4
    assert res["kan"][-1] < 0.5 * res["mlp"][-1]
    assert all(a < b for a, b in zip(res["kan"], res["mlp"]))
