"""nl.Standardize / nl.Standardized: the input standardisation saved with the model (issue 13)."""
from __future__ import annotations

import json

import pytest
import torch

import nnlab as nl


def test_standardize_is_the_formula_and_checks_its_statistics():
    X = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 100.0, 0.01]) + 5
    st = nl.Standardize.fit(X)
    assert torch.allclose(st(X), (X - X.mean(0)) / X.std(0))
    assert set(dict(st.named_buffers())) == {"mean", "std"} and not list(st.parameters())
    const = nl.Standardize.fit(torch.ones(4, 2))
    assert torch.equal(const(torch.ones(4, 2)), torch.zeros(4, 2))  # σ clamped, never 0/0
    for mean, std in (([0.0], [0.0]), ([0.0, 1.0], [1.0]), ([float("nan")], [1.0]), ([0.0], [float("inf")])):
        with pytest.raises(ValueError):
            nl.Standardize(mean, std)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_saved_standardized_model_round_trips_and_traces(tmp_path):
    torch.manual_seed(0)
    X = torch.rand(30, 2) * torch.tensor([1.0, 1000.0])
    model = nl.Standardized(nl.Standardize.fit(X), nl.MLP([2, 8, 1]))
    nl.save_model(model, tmp_path / "m", "mlp", {"sizes": [2, 8, 1]})
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    assert spec["preprocess"]["standardize"]["mean"] == model.standardize.mean.tolist()
    loaded, _ = nl.load_model(tmp_path / "m")
    assert isinstance(loaded, nl.Standardized)
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
        bare, _ = nl.models_io.load_model(tmp_path / "m", preprocess=False)
        assert isinstance(bare, nl.MLP) and torch.equal(bare(model.standardize(X)), model(X))
        traced = torch.jit.trace(loaded, X[:4])  # ordinary torch ops: traceable, exportable
        assert torch.allclose(traced(X), model(X))


def test_older_runs_with_statistics_in_meta_load_with_them(tmp_path):
    net = nl.MLP([2, 4, 1])
    nl.save_model(net, tmp_path / "m", "mlp", {"sizes": [2, 4, 1]},
                  meta={"preprocess": {"standardize": {"mean": [1.0, 2.0], "std": [2.0, 4.0]}}})
    path = tmp_path / "m" / "model.json"
    spec = json.loads(path.read_text())
    spec.pop("preprocess")  # as written before the standardisation became part of the model
    path.write_text(json.dumps(spec))
    loaded, _ = nl.load_model(tmp_path / "m")
    x = torch.tensor([[3.0, 6.0]])
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(torch.tensor([[1.0, 1.0]])))


def test_standardized_model_refuses_the_wrong_number_of_raw_features_and_takes_float64():
    # a (n, 1) input used to broadcast against the (3,) statistics: a 3-feature model predicted
    # from one column without a word; numpy's float64 raw features failed inside nn.Linear
    torch.manual_seed(0)
    st = nl.Standardize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    model = nl.Standardized(st, nl.MLP([3, 4, 1])).eval()
    with pytest.raises(ValueError, match=r"Standardize expects X of shape \(batch, 3\).*got \(5, 1\)"):
        model(torch.randn(5, 1))
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(model(x), model(x.float()))
