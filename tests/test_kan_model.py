"""KAN model: trace, scores, regularisation, pruning, save/load, plot, training."""
import math
import warnings

import pytest
import torch

import nnlab as nl
from nnlab.kan import GridRangeWarning, GridUpdate


@pytest.fixture(autouse=True)
def _quiet_grid_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        yield


def data(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g) * 2 - 1
    y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)
    return X, y


def test_forward_trace_scores():
    m = nl.KAN([2, 4, 3], seed=0)
    X, _ = data(64)
    tr = m.trace(X)
    assert [t.edges.shape for t in tr] == [(64, 4, 2), (64, 3, 4)]
    assert torch.allclose(tr[-1].output, m(X), atol=1e-6)
    assert torch.equal(tr[1].input, tr[0].output)
    s = m.edge_scores(X)
    assert s[0].shape == (4, 2) and torch.allclose(s[1], tr[1].edges.abs().mean(0))


def test_seed_reproducible_and_global_rng_untouched():
    torch.manual_seed(5)
    a = torch.rand(1)
    torch.manual_seed(5)
    m1 = nl.KAN([2, 3, 1], seed=3)
    b = torch.rand(1)
    m2 = nl.KAN([2, 3, 1], seed=3)
    assert torch.equal(a, b)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))


def test_regularization_matches_formula():
    m = nl.KAN([2, 3, 1], seed=0)
    X, _ = data(50)
    expected = 0.0
    for t in m.trace(X):
        l1 = t.edges.abs().mean(0)
        p = l1 / l1.sum()
        expected = expected + 1.0 * l1.sum() - 2.0 * (p * p.log()).sum()
    reg = m.regularization(X)
    assert torch.allclose(reg, expected, rtol=1e-5)
    reg.backward()
    assert m.layers[0].coef.grad is not None


def test_prune_same_function_on_what_remains():
    m = nl.KAN([2, 5, 2], seed=0)
    X, _ = data(100)
    with torch.no_grad():  # make hidden nodes 1 and 3 dead, and one edge weak
        for layer in m.layers:
            layer.scale_base.mul_(0.0)
            layer.coef.mul_(20.0)
        m.layers[0].scale_spline[[1, 3]] = 0.0
        m.layers[1].scale_spline[0, 4] *= 1e-4
    scores = m.edge_scores(X)
    p = m.prune(X, threshold=1e-2)
    assert p.width == [2, 3, 2]
    # reference: the original with pruned nodes/edges switched off
    ref = nl.KAN([2, 5, 2], seed=0)
    ref.load_state_dict(m.state_dict())
    with torch.no_grad():
        for l, layer in enumerate(ref.layers):
            layer.mask.mul_((scores[l] > 1e-2).float())
        ref.layers[1].mask[:, [1, 3]] = 0.0
    assert torch.allclose(p(X), ref(X), atol=1e-6)
    assert float(p.layers[1].mask[0, 2]) == 0.0  # the weak edge (old node 4) is gone


def test_save_load_roundtrip(tmp_path):
    m = nl.KAN([2, 3, 1], grid=[4, 6], k=2, seed=0)
    X, _ = data(80)
    m.update_grid(X)
    m.extend_grid(8)
    m.save(tmp_path / "kan")
    assert (tmp_path / "kan" / "config.json").is_file()
    m2 = nl.KAN.load(tmp_path / "kan")
    assert m2.grid == [8, 8] and m2.width == [2, 3, 1]
    assert torch.equal(m2(X), m(X))
    with pytest.raises(FileNotFoundError, match="config.json"):
        nl.KAN.load(tmp_path / "nothing")


def test_update_grid_model_preserves_output():
    m = nl.KAN([2, 4, 1], grid=10, seed=0)
    X = torch.rand(400, 2) * 0.8 + 0.1
    before = m(X)
    m.update_grid(X)
    assert (m(X) - before).abs().max() < 2e-2 * before.abs().max()


def test_plot_returns_figure():
    from matplotlib.figure import Figure
    m = nl.KAN([2, 3, 1], seed=0)
    fig = nl.kan.plot(m, data(40)[0])
    assert isinstance(fig, Figure) and len(fig.axes) == 1 + 2 * 3 + 3
    with pytest.raises(ValueError, match="prune"):
        nl.kan.plot(nl.KAN([30, 30, 1]), torch.rand(5, 30))


@pytest.mark.parametrize("width", [[2], [2, 0, 1], "2,1", [2, 1.5]])
def test_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        nl.KAN(width)


def test_wrong_input_width():
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        nl.KAN([2, 3, 1])(torch.rand(4, 3))


def _train_adam(m, X, y, steps, lr=1e-2, penalty=0.0):
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(X), y)
        if penalty:
            loss = loss + penalty * m.regularization(X)
        loss.backward()
        opt.step()
    return torch.nn.functional.mse_loss(m(X), y).item()


def test_training_adam_and_lbfgs_reduce_loss():
    X, y = data(256)
    m = nl.KAN([2, 5, 1], grid=5, seed=0)
    l0 = torch.nn.functional.mse_loss(m(X), y).item()
    assert _train_adam(m, X, y, 60, lr=3e-2) < 0.05 * l0
    m2 = nl.KAN([2, 5, 1], grid=5, seed=0)
    opt = torch.optim.LBFGS(m2.parameters(), lr=1.0, max_iter=15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m2(X), y)
        loss.backward()
        return loss
    for _ in range(2):
        opt.step(closure)
    assert torch.nn.functional.mse_loss(m2(X), y).item() < 0.01 * l0


def test_sparsity_regularization_shrinks_useless_edges():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(100, 3, generator=g) * 2 - 1
    y = X[:, :1] ** 2  # inputs 1 and 2 are irrelevant
    m = nl.KAN([3, 1], grid=5, seed=0)
    _train_adam(m, X, y, 80, lr=3e-2, penalty=1e-2)
    s = m.edge_scores(X)[0][0]
    assert s[0] > 5 * s[1] and s[0] > 5 * s[2]


class _State:
    def __init__(self, model, epoch):
        self.model, self.epoch = model, epoch


def test_grid_update_callback():
    m = nl.KAN([2, 3, 1], seed=0)
    X = torch.rand(100, 2) * 4 - 2
    cb = GridUpdate(X, every=2, until=3)
    cb.on_epoch_start(_State(m, 1))
    assert torch.allclose(m.layers[0].grid_range[0], torch.tensor([-1.0, 1.0]))
    cb.on_epoch_start(_State(m, 2))
    assert torch.allclose(m.layers[0].grid_range, torch.stack([X.min(0).values, X.max(0).values], 1))
    with pytest.raises(ValueError):
        GridUpdate(X, every=0)


@pytest.mark.parametrize("optimizer, lr, epochs", [("adam", 3e-2, 80), ("lbfgs", 1.0, 5)])
def test_with_nl_fit(optimizer, lr, epochs):
    X, y = data(256)
    m = nl.KAN([2, 5, 1], grid=5, seed=0)
    l0 = torch.nn.functional.mse_loss(m(X), y).item()
    h = nl.fit(m, (X, y), optimizer=optimizer, lr=lr, epochs=epochs, batch_size=256, seed=0,
               progress=False, callbacks=[GridUpdate(X, every=2, until=4)],
               penalty=lambda model, xb: 1e-5 * model.regularization(xb))
    assert h.train_loss[-1] < 0.1 * l0
    assert torch.allclose(m.layers[0].grid_range[:, 0], X.min(0).values)  # GridUpdate ran
