import numpy as np
import pytest
import sympy as sp
import torch

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine
from nnlab import activations as A

ALL = A.names()
DIFFERENTIABLE = [n for n in ALL if A.get(n).differentiable]
# one table of parameter settings: defaults plus non-default values for every parametrised one
CASES = [(n, {}) for n in ALL] + [
    ("leaky_relu", {"alpha": 0.3}), ("prelu", {"alpha": -0.2}), ("elu", {"alpha": 0.5}),
    ("swish", {"beta": 2.5}), ("lecun_tanh", {"a": 0.0}), ("lecun_tanh", {"a": 0.7}),
]


def _grid():
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    return x[x.abs() > 1e-9]  # kinks (relu family, step) sit at 0


def test_names_are_the_lecture_list():
    assert ALL == ["step", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "softplus",
                   "swish", "silu", "mish", "arctan", "softsign", "lecun_tanh"]
    assert DIFFERENTIABLE == [n for n in ALL if n != "step"]


@pytest.mark.parametrize("name,params", [c for c in CASES if c[0] != "step"])
def test_analytic_derivative_equals_autograd(name, params):
    x = _grid().requires_grad_(True)
    y = A.get(name).fn(x, **params)
    (auto,) = torch.autograd.grad(y.sum(), x)
    analytic = A.derivative(name, x.detach(), **params)
    torch.testing.assert_close(analytic, auto, rtol=1e-10, atol=1e-12)


def test_step_is_zero_almost_everywhere():
    x = _grid()
    assert torch.equal(A.get("step").fn(x), (x >= 0).double())
    assert torch.equal(A.derivative("step", x), torch.zeros_like(x))


@pytest.mark.parametrize("name,params", CASES)
def test_sympy_form_matches_torch(name, params):
    spec = A.get(name)
    s = sp.Symbol("x", real=True)
    f = sp.lambdify(s, spec.sympy(s, **params), "numpy")
    x = _grid()
    torch.testing.assert_close(torch.as_tensor(np.asarray(f(x.numpy()), dtype=float)),
                               spec.fn(x, **params), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,params", [c for c in CASES if c[0] != "step"])
def test_sympy_derivative_matches_analytic(name, params):
    spec = A.get(name)
    s = sp.Symbol("x", real=True)
    df = sp.lambdify(s, sp.diff(spec.sympy(s, **params), s), "numpy")
    x = _grid()
    got = np.broadcast_to(np.asarray(df(x.numpy()), dtype=float), x.shape)
    torch.testing.assert_close(torch.as_tensor(got.copy()), spec.derivative(x, **params),
                               rtol=1e-9, atol=1e-12)


def test_lecture_relations():
    x = _grid()
    f = lambda n, **p: A.get(n).fn(x, **p)  # noqa: E731
    sig = f("sigmoid")
    torch.testing.assert_close(f("tanh"), 2 * A.get("sigmoid").fn(2 * x) - 1)   # tanh = 2σ(2x) - 1
    torch.testing.assert_close(A.derivative("softplus", x), sig)               # softplus' = σ
    torch.testing.assert_close(A.derivative("sigmoid", x), sig * (1 - sig))    # σ' = σ(1-σ)
    torch.testing.assert_close(A.derivative("tanh", x), 1 - f("tanh") ** 2)    # tanh' = 1 - tanh²
    torch.testing.assert_close(f("silu"), f("swish", beta=1.0))                 # SiLU = Swish_1
    torch.testing.assert_close(f("mish"), x * torch.tanh(f("softplus")))
    torch.testing.assert_close(f("leaky_relu", alpha=0.0), f("relu"))
    torch.testing.assert_close(f("lecun_tanh", a=0.0), f("tanh"))
    torch.testing.assert_close(f("prelu", alpha=0.01), f("leaky_relu"))
    torch.testing.assert_close(A.derivative("elu", x[x < 0]), f("elu")[x < 0] + 1.0)  # f + α
    # maxima of the derivatives (§3.2, §3.3): 1/4 and 1 at 0
    z = torch.zeros(1, dtype=torch.float64)
    assert float(A.derivative("sigmoid", z)) == 0.25 and float(A.derivative("tanh", z)) == 1.0
    assert float(A.derivative("sigmoid", x).max()) <= 0.25
    # smoothing and integration (§3.8): σ(kx) → [x>0], tanh(kx) → sign, softplus(kx)/k → ReLU
    k = 200.0
    assert torch.allclose(A.get("sigmoid").fn(k * x), f("step"), atol=1e-3)
    assert torch.allclose(torch.tanh(k * x), torch.sign(x), atol=2e-3)
    assert torch.allclose(A.get("softplus").fn(k * x) / k, f("relu"), atol=1e-2)
    assert torch.allclose(f("swish", beta=k), f("relu"), atol=1e-3)
    fine = torch.linspace(-3, 3, 60001, dtype=torch.float64)
    integral = torch.cumulative_trapezoid(A.get("step").fn(fine), fine)
    assert torch.allclose(integral, torch.relu(fine[1:]), atol=1e-3)             # ∫ step = ReLU
    # ELU tends to -α
    assert abs(float(A.get("elu").fn(torch.tensor(-50.0, dtype=torch.float64), alpha=0.7)) + 0.7) < 1e-12


@pytest.mark.parametrize("name", ALL)
def test_module_forward_matches_spec_and_torch_peers(name):
    x = _grid()
    m = nl.activation(name).double()
    torch.testing.assert_close(m(x), A.get(name).fn(x))
    torch.testing.assert_close(m.derivative(x), A.derivative(name, x))
    peers = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
             "leaky_relu": torch.nn.LeakyReLU(0.01), "elu": torch.nn.ELU(), "silu": torch.nn.SiLU(),
             "softplus": torch.nn.Softplus(), "mish": torch.nn.Mish(), "softsign": torch.nn.Softsign(),
             "prelu": torch.nn.PReLU(init=0.25).double()}
    if name in peers:
        torch.testing.assert_close(m(x), peers[name](x).detach())


def test_prelu_alpha_is_a_learnable_parameter():
    m = nl.activation("prelu", alpha=0.1)
    assert [n for n, _ in m.named_parameters()] == ["alpha"]
    x = torch.tensor([-2.0, -1.0, 3.0])
    m(x).sum().backward()
    assert torch.isclose(m.alpha.grad, torch.tensor(-3.0))  # ∂/∂α Σ f = Σ min(x, 0)
    torch.testing.assert_close(A.get("prelu").param_derivative("alpha", x, alpha=0.1),
                               torch.tensor([-2.0, -1.0, 0.0]))
    # every other activation has no parameters
    assert all(not list(nl.activation(n).parameters()) for n in ALL if n != "prelu")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*sigmoid.*lecun_tanh"):
        nl.activation("gelu")
    with pytest.raises(ValueError, match="valid names"):
        A.derivative("nope", torch.zeros(2))
    with pytest.raises(TypeError, match="must be a string"):
        A.get(3)
    assert A.get("ReLU").name == "relu"


@pytest.mark.parametrize("name,params,exc,msg", [
    ("relu", {"alpha": 0.1}, TypeError, "unknown parameter.*no parameters"),
    ("leaky_relu", {"beta": 1.0}, TypeError, "accepts alpha=0.01"),
    ("leaky_relu", {"alpha": 2.0}, ValueError, "0 <= alpha <= 1"),
    ("elu", {"alpha": -1.0}, ValueError, "alpha > 0"),
    ("swish", {"beta": float("nan")}, ValueError, "finite"),
    ("lecun_tanh", {"a": "big"}, TypeError, "real number"),
])
def test_bad_params_are_clear(name, params, exc, msg):
    with pytest.raises(exc, match=msg):
        nl.activation(name, **params)


def test_derivative_accepts_arrays_and_repr():
    d = A.derivative("arctan", [0.0, 1.0])
    torch.testing.assert_close(d, torch.tensor([1.0, 0.5]))
    assert "alpha=0.5" in repr(nl.activation("elu", alpha=0.5))
