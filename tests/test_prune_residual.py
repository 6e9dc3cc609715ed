import pytest
import torch
from torch import nn

import nnlab as nl


def residual_model(zero_blocks=(2, 4), seed=0):
    torch.manual_seed(seed)
    m = nl.MLP([5, 8, 8, 8, 8, 8, 3], residual=True)
    with torch.no_grad():
        for i in zero_blocks:                            # F(x) = relu(0·x − 1) = 0: an identity block
            m[i].block[0].weight.zero_(), m[i].block[0].bias.fill_(-1.0)
    return m


def xy(m, n=64):
    """Inputs and the model's own outputs as regression targets: any real change costs loss."""
    X = torch.randn(n, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return X, m.eval()(X)


@pytest.mark.parametrize("criterion", ["lesion", "norm"])
def test_identity_blocks_are_removed_first_and_outputs_kept(criterion):
    m = residual_model()
    X, y = xy(m)
    small, rep = nl.prune.residual_blocks(m, (X, y), "mse", tolerance=1e-9, criterion=criterion)
    assert sorted(rep.removed) == ["2", "4"]
    assert isinstance(small[2], nn.Identity) and isinstance(small[4], nn.Identity)
    assert rep.lesion["2"] == pytest.approx(0.0, abs=1e-7) and rep.norm_ratio["4"] == 0.0
    assert rep.lesion["1"] > 1e-4
    assert rep.n_params_after < rep.n_params_before
    with torch.no_grad():
        assert torch.allclose(small.eval()(X), m.eval()(X), atol=1e-6)
    assert "lesion" in str(rep)


def test_projection_block_becomes_its_projection_and_max_blocks():
    m = residual_model(zero_blocks=(0, 3))
    X, y = xy(m)
    small, rep = nl.prune.residual_blocks(m, (X, y), "mse", tolerance=float("inf"), max_blocks=1)
    assert len(rep.removed) == 1
    small, rep = nl.prune.residual_blocks(m, (X, y), "mse", tolerance=1e-9)
    assert "0" in rep.removed
    assert isinstance(small[0], nn.Linear) and small[0].weight.shape == (8, 5)   # H(x) = P(x)
    with torch.no_grad():
        assert torch.allclose(small.eval()(X), m.eval()(X), atol=1e-6)


def test_tolerance_stops_removal_and_loss_bound_holds():
    m = residual_model(zero_blocks=())
    X, y = xy(m)
    small, rep = nl.prune.residual_blocks(m, (X, y), "mse", tolerance=0.05)
    assert rep.final_loss - rep.base_loss <= 0.05
    assert len(rep.removed) < 5
    everything, rep2 = nl.prune.residual_blocks(m, (X, y), "mse", tolerance=float("inf"))
    assert len(rep2.removed) == 5 and [s["block"] for s in rep2.steps] == rep2.removed


def test_residual_bad_input():
    m = residual_model()
    X, y = xy(m)
    with pytest.raises(ValueError, match="no residual blocks"):
        nl.prune.residual_blocks(nl.MLP([5, 8, 3]), (X, y), "mse")
    with pytest.raises(ValueError, match="criterion"):
        nl.prune.residual_blocks(m, (X, y), "mse", criterion="random")
    with pytest.raises(ValueError, match="tolerance"):
        nl.prune.residual_blocks(m, (X, y), "mse", tolerance=-1)
    with pytest.raises(ValueError, match="columns but the model"):
        nl.prune.residual_blocks(m, (torch.randn(4, 7), y[:4]), "mse")
