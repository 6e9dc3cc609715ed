"""nl.data: toy sets, digits splits and CSV loading with clear errors."""
import numpy as np
import pytest
import torch

import nnlab as nl


@pytest.mark.parametrize("name", ["xor", "circles", "gaussians", "spiral", "moons"])
def test_toy_sets_shape_dtype_balance_and_seed(name):
    X, y = nl.data.toy(name, 101, noise=0.1, seed=3)
    assert X.shape == (101, 2) and X.dtype == torch.float32
    assert y.shape == (101,) and y.dtype == torch.int64
    assert set(y.tolist()) == {0, 1}
    if name != "xor":
        assert abs(int(y.sum()) - 50) <= 1  # split evenly between the classes
    X2, y2 = nl.data.toy(name, 101, noise=0.1, seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    X3, _ = nl.data.toy(name, 101, noise=0.1, seed=4)
    assert not torch.equal(X, X3)
    assert X.abs().max() < 2.0


def _linear_accuracy(X, y):
    """Best training accuracy of a linear classifier (logistic regression) on X."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X.numpy(), y.numpy()).score(X.numpy(), y.numpy())


def test_gaussians_are_linearly_separable_but_xor_circles_spiral_are_not():
    assert _linear_accuracy(*nl.data.toy("gaussians", 200)) == 1.0
    for name in ("xor", "circles", "spiral"):
        assert _linear_accuracy(*nl.data.toy(name, 200)) < 0.75, name


def test_xor_labels_follow_the_quadrants():
    X, y = nl.data.toy("xor", 200)
    assert torch.equal(y, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).long())


def test_toy_errors():
    with pytest.raises(ValueError, match=r"unknown toy data set 'blobs'.*'spiral'"):
        nl.data.toy("blobs", 10)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        nl.data.toy("xor", 1)
    with pytest.raises(ValueError, match="noise"):
        nl.data.toy("xor", 10, noise=-0.1)


def test_digits_splits_are_stratified_scaled_and_disjoint():
    d = nl.data.digits(seed=0)
    sizes = [len(s[1]) for s in (d.train, d.val, d.test)]
    assert sum(sizes) == 1797 and sizes[1] == pytest.approx(0.15 * 1797, abs=2)
    for X, y in (d.train, d.val, d.test):
        assert X.dtype == torch.float32 and y.dtype == torch.int64 and X.shape[1] == 64
        assert 0.0 <= X.min() and X.max() <= 1.0
        props = torch.bincount(y, minlength=10).float() / len(y)
        assert torch.allclose(props, torch.full((10,), 0.1), atol=0.02)  # stratified
    rows = {tuple(r.tolist()) for r in d.test[0]}
    assert sum(tuple(r.tolist()) in rows for r in d.train[0]) < 20  # only true duplicates overlap
    assert torch.equal(nl.data.digits(seed=0).train[0], d.train[0])
    assert not torch.equal(nl.data.digits(seed=1).train[0], d.train[0])


def _csv(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


def test_load_csv_reads_numbers_and_labels(tmp_path):
    p = _csv(tmp_path, "a,b,label\n1,2,0\n3.5,4,1\n5,6,1\n")
    X, y = nl.data.load_csv(p, "label")
    assert torch.equal(X, torch.tensor([[1, 2], [3.5, 4], [5, 6]], dtype=torch.float32))
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 1]
    X, y = nl.data.load_csv(p, "a", features=["label"])
    assert X.shape == (3, 1) and y.dtype == torch.float32


def test_load_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CSV file"):
        nl.data.load_csv(tmp_path / "nope.csv", "y")
    p = _csv(tmp_path, "a,b,label\n1,2,0\n")
    with pytest.raises(ValueError, match=r"target column 'target' is not in d.csv; columns: a, b, label$"):
        nl.data.load_csv(p, "target")
    with pytest.raises(ValueError, match=r"feature column\(s\) 'c' not in d.csv; columns: a, b, label$"):
        nl.data.load_csv(p, "label", features=["a", "c"])
    p = _csv(tmp_path, "a,b,label\n1,x,0\n")
    with pytest.raises(ValueError, match=r"column 'b' of d.csv is not numeric: line 2 holds 'x'"):
        nl.data.load_csv(p, "label")
    p = _csv(tmp_path, "a,b,label\n1,2,0\n1,,1\nnan,3,0\n4,5,1\n")
    with pytest.raises(ValueError, match=r"2 of 4 rows .* missing/NaN.*line 3.*dropna=True"):
        nl.data.load_csv(p, "label")
    with pytest.warns(UserWarning, match="dropped"):
        X, y = nl.data.load_csv(p, "label", dropna=True)
    assert X.shape == (2, 2) and y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="no data rows"):
        nl.data.load_csv(_csv(tmp_path, "a,label\n"), "label")


def test_fit_trains_on_a_csv(tmp_path):
    X, y = nl.data.toy("gaussians", 40)
    rows = "\n".join(f"{a},{b},{c}" for (a, b), c in zip(X.tolist(), y.tolist()))
    Xc, yc = nl.data.load_csv(_csv(tmp_path, "x1,x2,cls\n" + rows + "\n"), "cls")
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    h = nl.fit(model, (Xc, yc), loss="cross_entropy", lr=0.1, epochs=20, batch_size=None, seed=0)
    assert h.train_acc[-1] == 1.0
    assert np.allclose(Xc.numpy(), X.numpy(), atol=1e-6)
