"""Coupled groups, structured OBS and speed targets (issue 16)."""
import copy

import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab.models_io import load_model, save_model
from nnlab.prune.group_obs import block_saliency, block_update, greedy_select
from nnlab.prune.groups import Member
from nnlab.prune.shrink import flops_of_widths
from nnlab.prune.speedup import SpeedupError


def members(group):
    return {(m.module, m.role) for m in group.members}


def xy(n=120, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g)


# --- dependency groups ------------------------------------------------------------------------

def test_groups_through_residual_adds_equal_hand_written():
    torch.manual_seed(0)
    m = nl.MLP([5, 8, 8, 8, 3], residual=True)
    gs = nl.prune.dependency_groups(m, torch.randn(4, 5))
    assert len(gs) == 1 and gs[0].width == 8
    assert members(gs[0]) == {("0.block.0", "out"), ("0.projection", "out"), ("1.block.0", "out"),
                              ("2.block.0", "out"), ("1.block.0", "in"), ("2.block.0", "in"), ("3", "in")}
    assert {r for _, r in gs.fixed} == {"it is the model's input", "it is the model's output"}


class TwoBlocks(nn.Module):
    """x → stem → (+ F1) → (+ F2) → head; F_i = Linear → LayerNorm → GELU → Linear (an inner hidden axis)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(6, 10)
        self.f1 = nn.Sequential(nn.Linear(10, 7), nn.LayerNorm(7), nn.GELU(), nn.Linear(7, 10))
        self.f2 = nn.Sequential(nn.Linear(10, 5), nn.PReLU(5), nn.Linear(5, 10))
        self.bn = nn.BatchNorm1d(10)
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.f1(h)
        h = self.f2(h) + h
        return self.head(self.bn(h))


def test_groups_of_a_custom_module_with_norms_and_inner_hidden_layers():
    gs = nl.prune.dependency_groups(TwoBlocks(), torch.randn(4, 6))
    got = {frozenset(members(g)) for g in gs}
    want = {
        frozenset({("stem", "out"), ("f1.3", "out"), ("f2.2", "out"), ("f1.0", "in"), ("f2.0", "in"),
                   ("bn", "channel"), ("head", "in")}),
        frozenset({("f1.0", "out"), ("f1.1", "channel"), ("f1.3", "in")}),
        frozenset({("f2.0", "out"), ("f2.1", "channel"), ("f2.2", "in")}),
    }
    assert got == want
    assert [g.width for g in gs] == [10, 7, 5]          # forward order


def test_kan_nodes_and_lora_layers_are_groups():
    kan = nl.KAN([3, 5, 4, 2], seed=0)
    gs = nl.prune.dependency_groups(kan, torch.rand(4, 3) * 2 - 1)
    assert [members(g) for g in gs] == [{("layers.0", "out"), ("layers.1", "in")},
                                       {("layers.1", "out"), ("layers.2", "in")}]
    torch.manual_seed(0)
    m = nl.lora.inject(nl.MLP([6, 12, 9, 3]), rank=2)
    gs = nl.prune.dependency_groups(m, torch.randn(4, 6))
    assert [g.width for g in gs] == [12, 9]
    assert Member("1.0", "in") in gs[0].members and Member("1.0", "out") in gs[1].members


def test_unknown_operations_fix_their_axes():
    m = nn.Sequential(nn.Linear(4, 6), nn.Softmax(-1), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    gs = nl.prune.dependency_groups(m, torch.randn(3, 4))
    assert [members(g) for g in gs] == [{("2", "out"), ("4", "in")}]
    assert any("Softmax" in r for _, r in gs.fixed)


class Concat(nn.Module):
    """Two branches concatenated (and rescaled by one BatchNorm), one of them concatenated again at the head."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 5)
        self.bn = nn.BatchNorm1d(11)
        self.c = nn.Linear(11, 7)
        self.head = nn.Linear(7 + 6, 2)

    def forward(self, x):
        ha, hb = torch.relu(self.a(x)), torch.tanh(self.b(x))
        h = self.c(self.bn(torch.cat([ha, hb], dim=1)))
        return self.head(torch.cat((torch.relu(h), ha), -1))


def test_groups_through_concatenation_equal_hand_written():
    gs = nl.prune.dependency_groups(Concat(), torch.randn(3, 4))
    got = [(g.width, {(m.module, m.role, m.offset) for m in g.members}) for g in gs]
    assert got == [(6, {("a", "out", 0), ("bn", "channel", 0), ("c", "in", 0), ("head", "in", 7)}),
                   (5, {("b", "out", 0), ("bn", "channel", 6), ("c", "in", 6)}),
                   (7, {("c", "out", 0), ("head", "in", 0)})]
    m = nn.ModuleDict({"a": nn.Linear(4, 6), "b": nn.Linear(4, 6), "h": nn.Linear(6, 2)})
    stacked = fx_module(lambda x: m["h"](torch.cat([m["a"](x), m["b"](x)], 0)), m)
    gs = nl.prune.dependency_groups(stacked, torch.randn(3, 4))      # cat along the batch: one feature axis
    assert [members(g) for g in gs] == [{("m.a", "out"), ("m.b", "out"), ("m.h", "in")}]


def fx_module(fn, sub):
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = sub

        def forward(self, x):
            return fn(x)

    return Wrap()


@pytest.mark.parametrize("importance", ["magnitude", "taylor", "obd", "obs"])
def test_pruned_concatenation_model_equals_dense_with_removed_columns_zeroed(importance):
    torch.manual_seed(0)
    m = Concat().eval()
    X, y = xy(n=200, d=4, c=2)
    small, rep = nl.prune.neurons(m, amount=0.4, importance=importance, data=(X, y))
    assert [rep.widths_after[k] for k in ("a", "b", "c")] == [4, 3, 4]
    if importance == "obs":    # OBS moves the kept weights: closer to the dense outputs than magnitude's cut
        mag, _ = nl.prune.neurons(m, amount=0.4, importance="magnitude")
        with torch.no_grad():
            assert (small(X) - m(X)).pow(2).mean() < (mag(X) - m(X)).pow(2).mean()
        return
    ref = copy.deepcopy(m)
    gone = {k: sorted(set(range(w)) - set(rep.kept[k])) for k, w in (("a", 6), ("b", 5), ("c", 7))}
    with torch.no_grad():      # hand-written offsets: a at c[0:6] and head[7:13], b at c[6:11], c at head[0:7]
        for j in gone["a"]:
            ref.c.weight[:, j] = 0
            ref.head.weight[:, 7 + j] = 0
        for j in gone["b"]:
            ref.c.weight[:, 6 + j] = 0
        for j in gone["c"]:
            ref.head.weight[:, j] = 0
        assert torch.allclose(small(X), ref(X), atol=1e-6)


# --- pruning keeps what it should ---------------------------------------------------------------

def test_pruned_residual_model_equals_dense_with_removed_units_zeroed():
    torch.manual_seed(0)
    m = nl.MLP([6, 12, 12, 12, 3], residual=True)
    X, y = xy()
    small, rep = nl.prune.neurons(m, 0.5, importance="magnitude")
    (name, kept), = rep.kept.items()
    removed = sorted(set(range(12)) - set(kept))
    assert len(kept) == 6 and small[-1].in_features == 6
    zeroed = nl.MLP([6, 12, 12, 12, 3], residual=True)
    zeroed.load_state_dict(m.state_dict())
    with torch.no_grad():     # the stream channels j ∉ kept: every layer writing them writes 0
        for lin in (zeroed[0].block[0], zeroed[0].projection, zeroed[1].block[0], zeroed[2].block[0]):
            lin.weight[removed] = 0.0
            if lin.bias is not None:
                lin.bias[removed] = 0.0
    with torch.no_grad():
        assert torch.allclose(small(X), zeroed(X), atol=1e-5)
        assert not torch.allclose(small(X), m(X), atol=1e-3)


def test_pruned_custom_module_with_norms_runs_and_keeps_dead_units_output():
    torch.manual_seed(0)
    m = TwoBlocks().eval()
    X, _ = xy()
    with torch.no_grad():   # units 0, 3 of f1's hidden layer and 1 of f2's feed nothing
        m.f1[3].weight[:, [0, 3]] = 0.0
        m.f2[2].weight[:, [1]] = 0.0
        m.f1[1].weight[[0, 3]] = 0.0
        m.f1[1].bias[[0, 3]] = 0.0
    small, rep = nl.prune.neurons(m, 0.25, importance="magnitude", example_input=X)
    assert rep.widths_after == {"stem": 8, "f1.0": 5, "f2.0": 4}
    assert rep.kept["f2.0"] == [0, 2, 3, 4] and set(rep.kept["f1.0"]).isdisjoint({0, 3})
    assert small.bn.num_features == 8 and small.f1[1].normalized_shape == (5,) and small.f2[1].num_parameters == 4
    assert small(X).shape == (120, 3)


def test_kan_nodes_pruned_equal_masked_edges():
    kan = nl.KAN([3, 6, 2], seed=0)
    X = torch.rand(64, 3) * 2 - 1
    small, rep = nl.prune.neurons(kan, 0.5, example_input=X)
    kept = rep.kept["layers.0"]
    masked = nl.KAN([3, 6, 2], seed=0)
    with torch.no_grad():
        masked.layers[1].mask[:, [j for j in range(6) if j not in kept]] = 0.0
        assert small.width == [3, 3, 2] and torch.allclose(small(X), masked(X), atol=1e-6)


def test_lora_layers_shrink_with_their_adapters():
    torch.manual_seed(0)
    m = nl.lora.inject(nl.MLP([6, 12, 9, 3]), rank=2)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    X, y = xy()
    small, rep = nl.prune.neurons(m, 0.5, importance="obs", data=(X, y))
    lay = small[1][0]
    assert lay.lora_A.shape == (2, 6) and lay.lora_B.shape == (5, 2) and lay.base_layer.weight.shape == (5, 6)
    assert small(X).shape == (120, 3)


# --- structured OBS -----------------------------------------------------------------------------

def test_structured_obs_update_is_the_least_squares_refit():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 7, generator=g, dtype=torch.float64) @ torch.randn(7, 7, generator=g, dtype=torch.float64)
    W = torch.randn(4, 7, generator=g, dtype=torch.float64)
    Hinv = torch.linalg.inv(X.T @ X / len(X))
    G = [1, 4, 5]
    K = [0, 2, 3, 6]
    Wn = block_update(W, Hinv, G)
    ref = torch.linalg.lstsq(X[:, K], X @ W.T).solution.T        # min ‖X·Wᵀ − X_K·W_Kᵀ‖
    assert torch.allclose(Wn[:, K], ref, atol=1e-9) and torch.all(Wn[:, G] == 0)
    err = ((X @ (W - Wn).T) ** 2).sum() / len(X)
    assert torch.allclose(block_saliency(W, Hinv, G), err, atol=1e-9)   # L_G = loss increase
    # greedy one-unit-at-a-time removal with downdates ends at the same weights as the block formula
    removed, (Wg,), costs = greedy_select([W], [Hinv], 3, 7)
    assert torch.allclose(Wg, block_update(W, Hinv, removed.tolist()), atol=1e-9)
    assert torch.allclose(costs.sum(), block_saliency(W, Hinv, removed.tolist()), atol=1e-9)
    # and no other set of 3 units costs less than the greedy one by more than the greedy gap... the best 1 is exact
    best1 = min(range(7), key=lambda j: float(block_saliency(W, Hinv, [j])))
    assert int(removed[0]) == best1


def test_neurons_obs_refits_the_head_by_least_squares():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    X, y = xy(300)
    X = X.double()
    small, rep = nl.prune.neurons(m, 0.5, importance="obs", data=(X, y), damp=0.0)
    kept = rep.kept["0"]
    with torch.no_grad():
        hid = torch.tanh(m[0](X))
        A = torch.cat([hid[:, kept], torch.ones(len(X), 1, dtype=torch.float64)], 1)
        sol = torch.linalg.lstsq(A, m(X)).solution.T              # [W_K | b] refit to the dense outputs
    assert torch.allclose(small[2].weight, sol[:, :-1], atol=1e-6)
    assert torch.allclose(small[2].bias, sol[:, -1], atol=1e-6)
    # OBS keeps the outputs better than magnitude at the same widths
    mag, _ = nl.prune.neurons(m, 0.5, importance="magnitude")
    with torch.no_grad():
        assert ((small(X) - m(X)) ** 2).mean() < ((mag(X) - m(X)) ** 2).mean()


# --- speed targets --------------------------------------------------------------------------------

@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("target", [2.0, 3.0])
def test_flops_target_reached_within_ten_percent(residual, target):
    torch.manual_seed(0)
    m = nl.MLP([6, 64, 48, 3] if not residual else [6, 32, 32, 32, 3], residual=residual)
    X, y = xy()
    small, rep = nl.prune.neurons(m, speedup=target, importance="obs", data=(X, y), example_input=X,
                                  measure="flops", steps=2, finetune_epochs=1, fit_kwargs={"lr": 1e-3, "seed": 0})
    ratio = rep.flops_before / rep.flops_after
    assert target <= ratio <= 1.1 * target, ratio
    assert rep.flops_after == nl.prune.flops(small, X) and rep.flops_before == nl.prune.flops(m, X)
    assert len(rep.steps) == 2 and rep.speedup == pytest.approx(ratio)
    assert small(X).shape == (120, 3)


@pytest.mark.parametrize("residual", [False, True])
def test_a_flops_target_met_exactly_keeps_those_widths(residual):
    """speedup = f0 / FLOPs(widths w) must give widths w, not one unit fewer (f0 / s rounds either way)."""
    torch.manual_seed(0)
    m = nl.MLP([64, 256, 128, 10] if not residual else [64, 256, 256, 256, 10], residual=residual)
    x = torch.zeros(4, 64)
    f0 = nl.prune.flops(m, x)
    for amount in [i / 40 for i in range(1, 36)]:
        fixed, _ = nl.prune.neurons(m, amount)                  # some widths w
        s = f0 / nl.prune.flops(fixed, x)
        small, rep = nl.prune.neurons(m, speedup=s, example_input=x, measure="flops")
        assert [p.shape for p in small.parameters()] == [p.shape for p in fixed.parameters()], amount
        assert rep.speedup >= s


def test_flops_count_matches_the_widths():
    m = nl.MLP([6, 20, 10, 3])
    assert nl.prune.flops(m, torch.randn(5, 6)) == 2 * (6 * 20 + 20 * 10 + 10 * 3)
    gs = nl.prune.dependency_groups(m, torch.randn(5, 6))
    assert flops_of_widths(m, gs.calls, {"0.0": (6, 4), "1.0": (4, 2), "2": (2, 3)}) == 2 * (24 + 8 + 6)
    assert nl.prune.latency(m, torch.randn(5, 6), repeats=3) > 0
    assert nl.prune.latency(m, torch.randn(5, 6), repeats=3, clock="cpu") > 0
    with pytest.raises(ValueError, match="clock must be 'wall'"):
        nl.prune.latency(m, torch.randn(5, 6), clock="gpu")


@pytest.mark.parametrize("arch", ["mlp", "resnet"])
def test_pruned_model_saves_and_loads(tmp_path, arch):
    torch.manual_seed(0)
    m = nl.MLP([6, 24, 24, 3], residual=arch == "resnet")
    X, y = xy()
    small, _ = nl.prune.neurons(m, speedup=2.0, importance="obd", data=(X, y), example_input=X, measure="flops")
    save_model(small, tmp_path / "m", arch, {"sizes": [6, 24, 24, 3]})
    back, _ = load_model(tmp_path / "m")
    with torch.no_grad():
        assert torch.allclose(back(X), small(X))
    assert back.sizes == small.sizes and back.sizes[1] < 24


def test_residual_stream_pruned_to_the_input_width_reloads_with_its_projection(tmp_path):
    torch.manual_seed(0)
    m = nl.MLP([8, 16, 16, 3], residual=True)
    X, _ = xy(d=8)
    small, _ = nl.prune.neurons(m, amount=0.5, importance="magnitude")
    assert small.sizes == [8, 8, 8, 3] and small[0].projection.weight.shape == (8, 8)   # P stays: not the identity
    small[1] = nn.Identity()                         # block 1 removed as well: only its skip x is left
    m2 = nl.MLP([8, 16, 16, 16, 3], residual=True)
    small2, _ = nl.prune.neurons(m2, amount=0.5, importance="magnitude")
    small2[0] = small2[0].projection                 # block 0 removed: its square projection is the skip
    for i, model in enumerate((small, small2)):
        save_model(model, tmp_path / str(i), "resnet", {"sizes": model.sizes})
        back, spec = load_model(tmp_path / str(i))
        assert spec["kwargs"]["square_projections"] == [0]
        with torch.no_grad():
            assert torch.allclose(back(X), model(X))


# --- bad input ------------------------------------------------------------------------------------

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:
            h = torch.relu(h)
        return self.b(h)


def test_bad_input_gets_one_clear_message():
    torch.manual_seed(0)
    m = nl.MLP([6, 16, 3])
    X, y = xy()
    with pytest.raises(ValueError, match="no prunable hidden units"):
        nl.prune.neurons(nn.Sequential(nn.Linear(6, 3)), 0.5)
    with pytest.raises(SpeedupError, match=r"cannot be reached.*at most"):
        nl.prune.neurons(m, speedup=1000.0, example_input=X, measure="flops")
    with pytest.raises(SpeedupError, match="got to"):
        nl.prune.neurons(m, speedup=1e6, example_input=X[:1], measure="latency")
    with pytest.raises(SpeedupError, match="CPU-time speed-up.*got to"):
        nl.prune.neurons(m, speedup=1e6, example_input=X[:1], measure="cpu")
    with pytest.raises(ValueError, match="measure must be"):
        nl.prune.neurons(m, speedup=2.0, example_input=X, measure="time")
    for bad in (1.0, 0.5, True, "2"):
        with pytest.raises(ValueError, match="speedup must be a number > 1"):
            nl.prune.neurons(m, speedup=bad, example_input=X)
    with pytest.raises(ValueError, match="needs example_input"):
        nl.prune.neurons(m, speedup=2.0)
    with pytest.raises(ValueError, match="not both"):
        nl.prune.neurons(m, 0.5, speedup=2.0, example_input=X)
    with pytest.raises(ValueError, match="columns but the model"):
        nl.prune.neurons(m, speedup=2.0, importance="obs", data=(torch.randn(5, 4), torch.zeros(5).long()),
                         example_input=X)
    with pytest.raises(ValueError, match="example_input of shape"):
        nl.prune.dependency_groups(m, torch.randn(3, 5))
    with pytest.raises(ValueError, match="cannot trace Branchy"):
        nl.prune.dependency_groups(Branchy(), torch.randn(3, 4))
    with pytest.raises(ValueError, match="measure must be"):
        nl.prune.neurons(m, speedup=2.0, example_input=X, measure="time")
    with pytest.raises(ValueError, match="KANLayer"):
        nl.prune.neurons(nl.KAN([3, 4, 2], seed=0), 0.5, importance="obs",
                         data=(torch.rand(20, 3), torch.zeros(20).long()))
