import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine


@pytest.mark.parametrize("fn,var", [(nl.init.xavier_, lambda fi, fo: 2 / (fi + fo)),
                                    (nl.init.he_, lambda fi, fo: 2 / fi)])
@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_empirical_variance_on_a_large_matrix(fn, var, dist):
    g = torch.Generator().manual_seed(0)
    w = torch.empty(300, 500)               # (fan_out, fan_in) as nn.Linear stores it
    fn(w, dist=dist, generator=g)
    assert abs(w.var().item() / var(500, 300) - 1) < 0.02
    assert abs(w.mean().item()) < 6 * (var(500, 300) / w.numel()) ** 0.5
    if dist == "uniform":
        assert w.abs().max() <= (3 * var(500, 300)) ** 0.5


def test_same_draws_as_torch_nn_init():
    def both(ours, theirs):
        a, b = torch.empty(40, 70), torch.empty(40, 70)
        ours(a, generator=torch.Generator().manual_seed(3))
        theirs(b, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b)
    both(lambda w, generator: nl.init.xavier_(w, "uniform", generator=generator),
         lambda w, generator: nn.init.xavier_uniform_(w, generator=generator))
    both(lambda w, generator: nl.init.xavier_(w, "normal", generator=generator),
         lambda w, generator: nn.init.xavier_normal_(w, generator=generator))
    both(lambda w, generator: nl.init.he_(w, "normal", generator=generator),
         lambda w, generator: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator))
    both(lambda w, generator: nl.init.he_(w, "uniform", generator=generator),
         lambda w, generator: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=generator))


def test_conv_fans_and_initialize():
    assert nl.init.fans(torch.empty(8, 3, 5, 5)) == (75, 200)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    nl.init.initialize_(m, "xavier")
    assert all(torch.count_nonzero(l.bias) == 0 for l in (m[0], m[2]))
    before = m[0].weight.clone()
    nl.init.initialize_(m, "default")
    assert torch.equal(before, m[0].weight)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: nl.init.he_(torch.empty(5)), ValueError, ">= 2 dims"),
    (lambda: nl.init.xavier_(torch.empty(3, 3), dist="laplace"), ValueError, "dist must be one of"),
    (lambda: nl.init.he_(torch.empty(3, 3), gain=-1), ValueError, "gain"),
    (lambda: nl.init.he_([[1.0]]), TypeError, "tensor"),
    (lambda: nl.init.initialize_(nn.Linear(2, 2), "lecun"), ValueError, "unknown init scheme"),
])
def test_init_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def _params_with_grads(seed, scale):
    torch.manual_seed(seed)
    ps = [nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(5)), nn.Parameter(torch.randn(2))]
    for p in ps:
        p.grad = scale * torch.randn_like(p)
    ps[2].grad = None  # parameters without a gradient are skipped
    return ps


@pytest.mark.parametrize("c", [0.1, 1.0, 100.0])
def test_global_norm_matches_torch_and_the_formula(c):
    ours, theirs = _params_with_grads(0, 3.0), _params_with_grads(0, 3.0)
    old = [p.grad.clone() for p in ours[:2]]
    total = torch.sqrt(sum(g.pow(2).sum() for g in old))
    n1 = nl.clip.global_norm_(ours, c)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, c)
    torch.testing.assert_close(n1, n2)
    torch.testing.assert_close(n1, total)
    for p, q, g in zip(ours[:2], theirs[:2], old):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
        expected = c * g / total if total > c else g                  # g ← c·g/‖g‖ when ‖g‖ > c
        torch.testing.assert_close(p.grad, expected)
    new_total = torch.sqrt(sum(p.grad.pow(2).sum() for p in ours[:2]))
    assert new_total <= c * (1 + 1e-6) and (total <= c) == torch.equal(ours[0].grad, old[0])


@pytest.mark.parametrize("c", [0.1, 1.0, 100.0])
def test_value_matches_torch_and_the_formula(c):
    ours, theirs = _params_with_grads(1, 3.0), _params_with_grads(1, 3.0)
    old = [p.grad.clone() for p in ours[:2]]
    n = nl.clip.value_(ours, c)
    torch.nn.utils.clip_grad_value_(theirs, c)
    torch.testing.assert_close(n, torch.sqrt(sum(g.pow(2).sum() for g in old)))
    for p, q, g in zip(ours[:2], theirs[:2], old):
        torch.testing.assert_close(p.grad, q.grad)
        torch.testing.assert_close(p.grad, torch.where(g.abs() > c, c * g.sign(), g))


def test_pure_functions_and_nonfinite_norm():
    g = [torch.tensor([3.0, 4.0])]
    new, norm = nl.clip.clip_by_global_norm(g, 1.0)
    torch.testing.assert_close(new[0], torch.tensor([0.6, 0.8]))
    assert float(norm) == 5.0 and torch.equal(g[0], torch.tensor([3.0, 4.0]))  # input untouched
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([float("inf"), 1.0])
    assert torch.isinf(nl.clip.global_norm_([p], 1.0)) and p.grad[1] == 1.0   # left untouched
    assert float(nl.clip.global_norm_([], 1.0)) == 0.0


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: nl.clip.global_norm_([], 0.0), ValueError, "positive finite"),
    (lambda: nl.clip.value_([], -1), ValueError, "positive finite"),
    (lambda: nl.clip.value_([], float("inf")), ValueError, "positive finite"),
    (lambda: nl.clip.global_norm_(5, 1.0), TypeError, "iterable of tensors"),
    (lambda: nl.clip.global_norm_([1.0], 1.0), TypeError, "must hold tensors"),
])
def test_clip_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=6), min_size=1, max_size=4),
       st.floats(1e-3, 1e3))
def test_clipping_properties(values, c):
    grads = [torch.tensor(v, dtype=torch.float64) for v in values]
    new, norm = nl.clip.clip_by_global_norm(grads, c)
    after = nl.clip.global_norm(new)
    assert after <= c * (1 + 1e-9)
    if norm > c:                       # same direction, length c
        flat_old, flat_new = torch.cat(grads), torch.cat(new)
        torch.testing.assert_close(flat_new * norm / c, flat_old)
    else:
        assert all(torch.equal(a, b) for a, b in zip(grads, new))
    clipped = nl.clip.clip_by_value(grads, c)
    assert all(bool((g.abs() <= c).all()) for g in clipped)
    assert all(torch.equal(torch.sign(a), torch.sign(b)) for a, b in zip(grads, clipped))
