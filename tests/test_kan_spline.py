"""B-spline math against scipy (the oracle), plus properties (hypothesis)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.interpolate import BSpline

from nnlab.kan import spline as S
from nnlab.kan.kernel import features

KS = [1, 2, 3, 4, 5]


def scipy_basis(x, t, k, deriv=0):
    """Each basis function as scipy's basis_element on its own knots (zero outside)."""
    t = np.asarray(t)
    out = np.zeros((len(x), len(t) - k - 1))
    for j in range(out.shape[1]):
        b = BSpline.basis_element(t[j:j + k + 2], extrapolate=False)
        if deriv:
            b = b.derivative(deriv)
        out[:, j] = np.nan_to_num(b(np.asarray(x)))
    return out


def random_knots(rng, n):
    return torch.tensor(np.sort(rng.uniform(-2, 2, n)), dtype=torch.float64)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("route", ["cox_de_boor", "local"])
def test_basis_and_derivative_match_scipy(k, route):
    rng = np.random.default_rng(k)
    t = random_knots(rng, 14)
    x = torch.tensor(rng.uniform(-2.5, 2.5, 300), dtype=torch.float64)  # inside and outside
    fb, fd = (S.cox_de_boor, S.cox_de_boor_derivative) if route == "cox_de_boor" else \
        (S.basis, S.basis_derivative)
    np.testing.assert_allclose(fb(x, t, k).numpy(), scipy_basis(x.numpy(), t.numpy(), k), atol=1e-10)
    np.testing.assert_allclose(fd(x, t, k).numpy(), scipy_basis(x.numpy(), t.numpy(), k, 1), atol=1e-9)


@pytest.mark.parametrize("k", KS)
def test_uniform_closed_form_matches_scipy(k):
    t = S.uniform_knots(-1, 1, 7, k, dtype=torch.float64)
    x = torch.linspace(-3, 3, 401, dtype=torch.float64)[:, None]
    h = (t[1] - t[0]).reshape(1)
    first, v, dv = S.local_basis_uniform(x, t[:1], h, len(t), k, derivative=True)
    nb = len(t) - k - 1
    np.testing.assert_allclose(S.to_dense(first, v, nb)[:, 0].numpy(),
                               scipy_basis(x[:, 0].numpy(), t.numpy(), k), atol=1e-10)
    np.testing.assert_allclose(S.to_dense(first, dv, nb)[:, 0].numpy(),
                               scipy_basis(x[:, 0].numpy(), t.numpy(), k, 1), atol=1e-9)


@pytest.mark.parametrize("G", [5, 20])
def test_float32_layer_features_within_1e6_of_float64_reference(G):
    """The fast kernel's basis in float32, inside and outside the grid, vs float64 Cox–de Boor."""
    k = 3
    knots = S.uniform_knots(-1, 1, G, k).expand(4, -1).contiguous()  # float32 knots
    for lo, hi in [(-1, 1), (-2.5, 2.5)]:
        x = torch.rand(512, 4) * (hi - lo) + lo
        F = features(x, knots, k, True, None).view(512, G + k + 1, 4)[:, :G + k]
        ref = S.cox_de_boor(x.double(), knots.double(), k).permute(0, 2, 1)
        assert (F.double() - ref).abs().max() < 1e-6


def test_partition_of_unity_and_zero_outside():
    t = S.uniform_knots(-1, 1, 6, 3, dtype=torch.float64)
    inside = torch.linspace(-1, 0.999, 101, dtype=torch.float64)
    assert torch.allclose(S.basis(inside, t, 3).sum(-1), torch.ones(101, dtype=torch.float64))
    outside = torch.tensor([-5.0, t[0] - 1e-9, t[-1], 7.0], dtype=torch.float64)
    assert S.basis(outside, t, 3).abs().max() == 0


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(0, 6), seed=st.integers(0, 10_000))
def test_properties(k, n, seed):
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(0.05, 1.0, k * 2 + n + 1)
    t = torch.tensor(np.concatenate([[0.0], np.cumsum(gaps)]) - 1.0, dtype=torch.float64)
    x = torch.tensor(rng.uniform(float(t[k]), float(t[-k - 1]), 50), dtype=torch.float64)
    B = S.basis(x, t, k)
    assert (B >= -1e-14).all()  # non-negative
    assert torch.allclose(B.sum(-1), torch.ones_like(x), atol=1e-12)  # partition of unity inside
    assert (B > 1e-15).sum(-1).max() <= k + 1  # local support
    assert torch.allclose(B, S.cox_de_boor(x, t, k), atol=1e-12)
    assert torch.allclose(S.basis_derivative(x, t, k).sum(-1), torch.zeros_like(x), atol=1e-9)


def test_evaluate_and_fit_roundtrip():
    t = S.uniform_knots(-1, 1, 8, 3, dtype=torch.float64).expand(2, -1).contiguous()
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    coef = torch.randn(3, 2, 11, dtype=torch.float64)
    y = S.evaluate(x, t, coef, 3)
    assert y.shape == (200, 3, 2)
    assert torch.allclose(S.fit_coefficients(x, y, t, 3), coef, atol=1e-6)
    # a smooth function is approximated well
    t1 = S.uniform_knots(0, 1, 20, 3, dtype=torch.float64)
    xs = torch.rand(500, dtype=torch.float64)
    c = S.fit_coefficients(xs, torch.sin(6 * xs), t1, 3)
    xt = torch.rand(100, dtype=torch.float64)
    assert (S.evaluate(xt, t1, c, 3) - torch.sin(6 * xt)).abs().max() < 1e-4


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_order_and_grid(bad):
    with pytest.raises(ValueError, match="k must"):
        S.cox_de_boor(torch.zeros(3), torch.arange(8.0), bad)
    with pytest.raises(ValueError, match="grid"):
        S.uniform_knots(-1, 1, bad, 3)
