import warnings

import pytest
import torch
from torch import nn

import nnlab as nl
import importlib

O = importlib.import_module("nnlab.prune.obs")  # the module (nl.prune.obs is the function)


def hessian(n=40, d=5, seed=0, damp=0.01):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    H = O.layer_hessian(X)
    return H + damp * H.diagonal().mean() * torch.eye(d, dtype=torch.float64)


def constrained_optimum(w, H, pruned):
    """Brute force: argmin_v (v − w)ᵀ H (v − w) with v_pruned = 0, by solving the reduced system."""
    keep = [j for j in range(len(w)) if j not in pruned]
    v = torch.zeros_like(w)
    if keep:
        P = list(pruned)
        # stationarity on the kept coordinates: H_KK (v_K − w_K) = H_KP w_P
        v[keep] = w[keep] + torch.linalg.solve(H[keep][:, keep], H[keep][:, P] @ w[P])
    return v, float((v - w) @ H @ (v - w))


def test_saliency_and_update_match_brute_force():
    H = hessian()
    Hinv = torch.linalg.inv(H)                           # explicit inverse
    w = torch.tensor([0.5, -1.2, 0.05, 2.0, -0.3], dtype=torch.float64)
    sal = O.obs_saliency(w, Hinv.diagonal())
    for i in range(5):
        v, inc = constrained_optimum(w, H, [i])
        assert sal[i] == pytest.approx(inc, rel=1e-9)     # L_i = δwᵀHδw = 2·(loss increase ½δwᵀHδw)
        assert torch.allclose(w + O.obs_update(w, Hinv, i), v, atol=1e-10)


def test_exact_layer_matches_brute_force_greedy():
    H = hessian(d=6, seed=1)
    Hinv = torch.linalg.inv(H)
    g = torch.Generator().manual_seed(2)
    W = torch.randn(4, 6, generator=g, dtype=torch.float64)
    protect = torch.tensor([False] * 5 + [True])         # last column: a bias, never pruned
    Wn, keep = O.prune_layer_exact(W, Hinv, 11, protect)
    assert int((keep == 0).sum()) == 11 and torch.all(keep[:, -1] == 1)
    for r in range(4):
        pruned: list[int] = []
        for _ in range(int((keep[r] == 0).sum())):       # greedy: each step the cheapest removal
            incs = {i: constrained_optimum(W[r], H, pruned + [i])[1] for i in range(5) if i not in pruned}
            pruned.append(min(incs, key=incs.get))
        assert set(pruned) == set(torch.nonzero(keep[r] == 0).flatten().tolist())
        v, _ = constrained_optimum(W[r], H, pruned)
        assert torch.allclose(Wn[r], v, atol=1e-8)


def test_exact_allocates_rows_by_loss():
    H = hessian(d=4, seed=3)
    W = torch.tensor([[10.0, 9.0, 8.0, 7.0], [0.01, 0.02, 0.03, 0.04]], dtype=torch.float64)
    _, keep = O.prune_layer_exact(W, torch.linalg.inv(H), 4)
    assert torch.all(keep[1] == 0) and torch.all(keep[0] == 1)   # the tiny row goes first


def test_blockwise_equals_sequential_obs_with_explicit_inverses():
    d = 7
    H = hessian(d=d, seed=4)
    g = torch.Generator().manual_seed(5)
    W = torch.randn(3, d, generator=g, dtype=torch.float64)
    Wn, keep = O.prune_layer_blockwise(W, torch.linalg.inv(H), 0.5, blocksize=d)
    # brute force: sweep columns j = 0..d−1; if j is pruned, apply the OBS update with the explicit
    # inverse of H restricted to the not-yet-processed columns F = j..d−1
    ref = W.clone()
    for j in range(d):
        Finv = torch.linalg.inv(H[j:, j:])
        for r in range(3):
            if keep[r, j] == 0:
                ref[r, j:] += -(ref[r, j] / Finv[0, 0]) * Finv[:, 0]
    assert torch.allclose(Wn, ref * keep, atol=1e-9)
    # and the mask of the single block is the lowest L_j = w_j²/[H⁻¹]_jj computed sequentially
    assert int((keep == 0).sum()) == round(0.5 * W.numel())


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 12), nn.ReLU()),
                         nn.Linear(12, 3))


def xy(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    return X, (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()


@pytest.mark.parametrize("algorithm", ["exact", "blockwise"])
@pytest.mark.parametrize("allocation", ["uniform", "global_magnitude"])
def test_obs_model_reaches_sparsity_and_beats_magnitude(algorithm, allocation):
    X, y = xy()
    ref = mlp()
    with torch.no_grad():
        target = ref(X)
    m = mlp()
    nl.prune.obs(m, (X, y), sparsity=0.7, algorithm=algorithm, allocation=allocation, blocksize=8)
    assert nl.prune.sparsity(m).overall == pytest.approx(0.7, abs=0.02)
    if allocation == "uniform":
        for frac in nl.prune.sparsity(m).layers.values():
            assert frac == pytest.approx(0.7, abs=0.02)
    mag = nl.prune.magnitude(mlp(), 0.7, scope="layer" if allocation == "uniform" else "global")
    with torch.no_grad():
        err_obs = (m(X) - target).pow(2).mean()
        err_mag = (mag(X) - target).pow(2).mean()
    assert err_obs < 0.5 * err_mag


@pytest.mark.parametrize("sparsity", [0.3, 0.9, 0.98])
def test_erk_allocation_keeps_the_budget_and_densities_proportional(sparsity):
    shapes = [(256, 64), (128, 256), (10, 128)]
    frac = O.erk_allocation(shapes, sparsity, ["a", "b", "c"])
    kept = {n: (1 - frac[n]) * o * i for n, (o, i) in zip("abc", shapes)}
    assert sum(kept.values()) == pytest.approx((1 - sparsity) * sum(o * i for o, i in shapes))
    free = [(n, o, i) for n, (o, i) in zip("abc", shapes) if frac[n] > 0]     # not capped at dense
    dens = [(1 - frac[n]) * o * i / (o + i) for n, o, i in free]          # density·in·out/(in+out) = ε
    assert dens == pytest.approx([dens[0]] * len(dens))
    if sparsity == 0.3:
        assert frac["c"] == 0.0                                          # the head would pass density 1


def test_obs_erk_allocation_reaches_the_overall_sparsity():
    X, y = xy()
    m = nl.prune.obs(mlp(), (X, y), sparsity=0.8, algorithm="exact", allocation="erk")
    s = nl.prune.sparsity(m)
    assert s.overall == pytest.approx(0.8, abs=0.01)
    want = O.erk_allocation([tuple(mm.weight.shape) for mm in mlp().modules() if isinstance(mm, nn.Linear)],
                            0.8, list(s.layers))
    assert s.layers == pytest.approx(want, abs=0.02)


def test_obs_sequential_flag_and_layers_subset():
    X, y = xy()
    m = mlp()
    nl.prune.obs(m, (X, y), sparsity=0.5, sequential=False, layers=["0.0"], allocation="uniform")
    s = nl.prune.sparsity(m)
    assert s.layers["0.0"] == pytest.approx(0.5, abs=0.01) and s.layers["2"] == 0.0


def test_singular_hessian_is_damped_with_a_warning():
    X, y = xy(60)
    X[:, 3] = 0.0                                        # a dead input: X·Xᵀ is singular
    m = mlp()
    with pytest.warns(RuntimeWarning, match="singular"):
        nl.prune.obs(m, (X, y), sparsity=0.5, damp=0.0)
    assert all(torch.isfinite(p).all() for p in m.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # default damping: no warning needed
        nl.prune.obs(mlp(), (X, y), sparsity=0.5)


def test_obs_bad_input():
    X, y = xy(30)
    with pytest.raises(ValueError, match="columns but the model"):
        nl.prune.obs(mlp(), (torch.randn(30, 4), y), sparsity=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nl.prune.obs(mlp(), (X, y), sparsity=-0.2)
    with pytest.raises(ValueError, match="algorithm"):
        nl.prune.obs(mlp(), (X, y), sparsity=0.5, algorithm="greedy")
    with pytest.raises(ValueError, match="blocksize"):
        nl.prune.obs(mlp(), (X, y), sparsity=0.5, blocksize=0)
    with pytest.raises(ValueError, match="damp"):
        nl.prune.obs(mlp(), (X, y), sparsity=0.5, damp=-1.0)
    with pytest.raises(ValueError, match="allocation has no fraction"):
        nl.prune.obs(mlp(), (X, y), sparsity=0.5, allocation={"0.0": 0.5})
    with pytest.raises(ValueError, match="no prunable layers"):
        nl.prune.obs(nn.Sequential(nn.ReLU()), (X, y), sparsity=0.5)
