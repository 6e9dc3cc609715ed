import pytest
import torch
from torch import nn

import nnlab as nl


def dead_unit_model(batchnorm, seed=0):
    torch.manual_seed(seed)
    m = nl.MLP([6, 10, 8, 3], batchnorm=batchnorm)
    m.eval()
    if batchnorm:  # give the batch-norms non-trivial statistics
        for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm1d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    with torch.no_grad():   # units 1, 4 of layer 1 and 0, 5 of layer 2 feed nothing downstream
        m[1][0].weight[:, [1, 4]] = 0.0
        m[2].weight[:, [0, 5]] = 0.0
    return m


def xy(n=50):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("importance", ["magnitude", "taylor", "obd"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_removing_dead_units_keeps_outputs(importance, batchnorm):
    m = dead_unit_model(batchnorm)
    X, y = xy()
    small, rep = nl.prune.neurons(m, 0.25, importance=importance, data=(X, y))
    small.eval()
    assert rep.widths_after == {"0.0": 8, "1.0": 6}
    if importance == "magnitude":   # data-driven scores may also drop ReLU units dead on all of X (ties at 0)
        assert 1 not in rep.kept["0.0"] and 4 not in rep.kept["0.0"] and 0 not in rep.kept["1.0"]
    assert rep.n_params_after < rep.n_params_before == sum(p.numel() for p in m.parameters())
    assert rep.n_params_after == sum(p.numel() for p in small.parameters())
    assert small[0][0].weight.shape == (8, 6) and small[1][0].weight.shape == (6, 8)
    if batchnorm:
        assert small[0][1].num_features == 8 and small[0][1].running_mean.shape == (8,)
    with torch.no_grad():
        assert torch.allclose(small(X), m(X), atol=1e-5)
    assert "params" in str(rep)


def test_plain_sequential_and_masked_input():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    nl.prune.magnitude(m, 0.3)
    small, rep = nl.prune.neurons(m, 0.5)
    assert [l.out_features for l in small if isinstance(l, nn.Linear)] == [3, 3, 2]  # 6→3, 5→3 (2.5 rounds to 2 removed)
    assert small(torch.randn(3, 4)).shape == (3, 2)
    assert hasattr(m[0], "weight_mask")                 # the input model is untouched


def test_neurons_bad_input():
    m = dead_unit_model(False)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nl.prune.neurons(m, 1.0)
    with pytest.raises(ValueError, match="importance"):
        nl.prune.neurons(m, 0.5, importance="random")
    with pytest.raises(ValueError, match="needs data"):
        nl.prune.neurons(m, 0.5, importance="taylor")
    with pytest.raises(ValueError, match="no prunable hidden units"):
        nl.prune.neurons(nl.MLP([4, 2]), 0.5)
    with pytest.raises(ValueError, match="columns but the model"):
        nl.prune.neurons(m, 0.5, importance="obd", data=(torch.randn(5, 3), torch.zeros(5, dtype=torch.long)))
