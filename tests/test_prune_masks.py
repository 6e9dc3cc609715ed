import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import nnlab as nl


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 12), nn.ReLU()),
                         nn.Linear(12, 3))


def linears(m):
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


@pytest.mark.parametrize("s", [0.0, 0.3, 0.77, 0.95])
def test_global_magnitude_equals_torch_global_unstructured(s):
    ours, ref = mlp(), mlp()
    nl.prune.magnitude(ours, s, scope="global")
    tprune.global_unstructured([(m, "weight") for m in linears(ref)], pruning_method=tprune.L1Unstructured, amount=s)
    for a, b in zip(linears(ours), linears(ref)):
        assert torch.equal(a.weight_mask, b.weight_mask)
        assert torch.equal(a.weight, b.weight)


def test_layer_magnitude_equals_torch_l1_unstructured():
    ours, ref = mlp(1), mlp(1)
    nl.prune.magnitude(ours, 0.6, scope="layer")
    for a, b in zip(linears(ours), linears(ref)):
        tprune.l1_unstructured(b, "weight", amount=0.6)
        assert torch.equal(a.weight_mask, b.weight_mask)


def test_sparsity_report_and_finalize():
    m = mlp()
    nl.prune.magnitude(m, 0.5, scope="layer")
    rep = nl.prune.sparsity(m)
    assert set(rep.layers) == {"0.0", "1.0", "2"}
    assert rep.layers["0.0"] == pytest.approx(0.5)
    assert rep.overall == pytest.approx(sum(rep.zeros.values()) / sum(rep.sizes.values()))
    assert "overall" in str(rep)
    x = torch.randn(5, 8)
    before = m(x)
    nl.prune.finalize(m)
    assert not any(hasattr(l, "weight_mask") for l in linears(m))
    assert all(isinstance(l.weight, nn.Parameter) for l in linears(m))
    assert torch.allclose(m(x), before)
    assert nl.prune.sparsity(m).overall == pytest.approx(rep.overall)


def test_masks_survive_fine_tuning_with_fit():
    m = mlp()
    nl.prune.magnitude(m, 0.8)
    masks = [l.weight_mask.clone() for l in linears(m)]
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    nl.fit(m, (X, y), loss="cross_entropy", epochs=2, lr=1e-2, progress=False, seed=0)
    for l, mk in zip(linears(m), masks):
        assert torch.all(l.weight[mk == 0] == 0)
    assert nl.prune.sparsity(m).overall == pytest.approx(0.8, abs=1e-3)


def test_repruning_keeps_old_zeros_and_reaches_new_target():
    m = mlp()
    nl.prune.magnitude(m, 0.5)
    old = [l.weight_mask.clone() for l in linears(m)]
    nl.prune.magnitude(m, 0.9)
    for l, o in zip(linears(m), old):
        assert torch.all(l.weight_mask[o == 0] == 0)
    assert nl.prune.sparsity(m).overall == pytest.approx(0.9, abs=0.005)


def test_random_prunes_exact_fraction():
    m = mlp()
    nl.prune.random(m, 0.7, seed=3)
    for l in linears(m):
        assert float((l.weight == 0).float().mean()) == pytest.approx(0.7, abs=0.01)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_outside_range(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nl.prune.magnitude(mlp(), bad)


def test_sparsity_wrong_type_and_scope():
    with pytest.raises(TypeError):
        nl.prune.magnitude(mlp(), "0.5")
    with pytest.raises(ValueError, match="scope"):
        nl.prune.magnitude(mlp(), 0.5, scope="row")


def test_no_prunable_layers():
    with pytest.raises(ValueError, match="no prunable layers"):
        nl.prune.magnitude(nn.Sequential(nn.ReLU(), nn.Tanh()), 0.5)
    with pytest.raises(ValueError, match="no prunable layers"):
        nl.prune.sparsity(nn.Conv1d(1, 1, 3))
    with pytest.raises(ValueError, match="not nn.Linear"):
        nl.prune.magnitude(mlp(), 0.5, layers=["nope"])


def test_apply_mask_shape_mismatch():
    with pytest.raises(ValueError, match="does not match"):
        nl.prune.apply_mask(nn.Linear(3, 2), torch.ones(3, 2))
