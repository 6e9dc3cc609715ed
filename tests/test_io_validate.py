import json

import numpy as np
import pytest
import torch

from nnlab import _io
from nnlab._validate import check_matrix, check_xy


def test_atomic_write_leaves_old_file_on_crash(tmp_path):
    p = tmp_path / "report.json"
    _io.write_json(p, {"a": 1})
    with pytest.raises(RuntimeError):
        with _io.atomic_write(p, "w") as fh:
            fh.write("{half")
            raise RuntimeError("crash")
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["report.json"]


def test_tensors_roundtrip(tmp_path):
    t = {"w": torch.randn(3, 4)}
    _io.save_tensors(tmp_path / "m.safetensors", t, {"k": "v"})
    assert torch.equal(_io.load_tensors(tmp_path / "m.safetensors")["w"], t["w"])


@pytest.mark.parametrize("X,y,msg", [
    (np.array([[1.0, np.nan]]), np.array([1.0]), "NaN/inf"),
    (np.ones((3, 2)), np.ones(2), "3 rows but y has 2"),
    (np.ones((0, 2)), np.ones(0), "empty"),
    (np.array([["a", "b"]]), np.ones(1), "numeric"),
])
def test_check_xy_errors(X, y, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        check_xy(X, y)


def test_check_matrix_columns():
    with pytest.raises(ValueError, match="3 columns but 2"):
        check_matrix(torch.ones(4, 3), n_cols=2)


def test_check_finite_large_finite_values_pass_and_nan_is_found_behind_them():
    from nnlab._validate import check_finite

    big = torch.full((4, 3), 3e38)  # the sum overflows to inf: the exact check decides
    assert check_finite(big) is big
    big[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\) \(first at index \(2, 1\)\)"):
        check_finite(big)
