"""The two clipping rules of lecture §2.10 as pure functions, against a direct computation."""
import pytest
import torch

from nnlab.training._clipping import check_clip, clip_global_norm_, clip_value_


def params_with_grads(*grads):
    ps = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        ps.append(p)
    return ps


G = [torch.tensor([3.0, -4.0]), torch.tensor([[12.0]])]  # ‖g‖ = sqrt(9 + 16 + 144) = 13


@pytest.mark.parametrize("c", [1.0, 6.5, 13.0, 100.0])
def test_global_norm_rule(c):
    ps = params_with_grads(*G)
    norm = clip_global_norm_(ps, c)
    assert float(norm) == pytest.approx(13.0)
    scale = c / 13.0 if 13.0 > c else 1.0  # g ← c·g/‖g‖ only when ‖g‖ > c
    for p, g in zip(ps, G):
        torch.testing.assert_close(p.grad, g * scale)


@pytest.mark.parametrize("c", [0.5, 3.5, 50.0])
def test_value_rule(c):
    ps = params_with_grads(*G)
    norm = clip_value_(ps, c)
    assert float(norm) == pytest.approx(13.0)  # the norm before clipping
    for p, g in zip(ps, G):
        expected = torch.where(g.abs() > c, c * torch.sign(g), g)  # g_i ← c·sign(g_i) if |g_i| > c
        assert torch.equal(p.grad, expected)


def test_parameters_without_grad_are_skipped_and_bad_thresholds_rejected():
    p = torch.nn.Parameter(torch.ones(2))
    assert float(clip_global_norm_([p], 1.0)) == 0.0
    with pytest.raises(ValueError, match="positive"):
        clip_value_([p], 0.0)
    with pytest.raises(TypeError, match="positive number"):
        clip_global_norm_([p], "big")
    assert check_clip(None) is None and check_clip(("value", 2)) == ("value", 2.0)


def test_non_finite_norm_leaves_gradients_untouched():
    ps = params_with_grads(torch.tensor([float("inf"), 1.0]))
    norm = clip_global_norm_(ps, 1.0)
    assert norm.isinf() and ps[0].grad[1] == 1.0
