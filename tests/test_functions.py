"""One function registry (issue 11, item 9): activations and the symbolic library read the same
specs; every library function's analytic derivative matches autograd, its sympy form matches torch."""
import pickle

import pytest
import sympy
import torch

import nnlab as nl
from nnlab import functions as F
from nnlab.symbolic.library import DEFAULT_NAMES, LIBRARY

SYMBOLIC = F.function_names(symbolic=True)


def test_one_entry_serves_both_uses():
    assert set(DEFAULT_NAMES) == set(SYMBOLIC) and list(LIBRARY) == list(DEFAULT_NAMES)
    for name in ("tanh", "arctan"):
        spec = nl.activations.get(name)
        assert spec is F.function(name) and LIBRARY[name].torch_fn is spec.raw_fn
    assert "x^2" not in nl.activations.names()  # library-only entries are not activations
    with pytest.raises(ValueError, match="unknown activation"):
        nl.activation("x^2")
    pickle.loads(pickle.dumps(LIBRARY))


@pytest.mark.parametrize("name", SYMBOLIC)
def test_derivative_and_sympy_form_match(name):
    spec = F.function(name)
    x = torch.linspace(-0.9, 0.9, 37, dtype=torch.float64)
    if name in ("sqrt", "1/sqrt", "log"):
        x = x.abs() + 0.1
    if name in ("1/x", "1/x^2", "abs", "sgn"):
        x = x[x.abs() > 0.05]
    xr = x.clone().requires_grad_(True)
    out = spec.raw_fn(xr)
    g = torch.autograd.grad(out.sum(), xr)[0] if out.requires_grad else torch.zeros_like(x)  # "0" is constant
    torch.testing.assert_close(spec.raw_derivative(x), g)
    s = sympy.Symbol("s")
    f = sympy.lambdify(s, spec.raw_sympy(s), "numpy")
    torch.testing.assert_close(torch.as_tensor(f(x.numpy()) * torch.ones_like(x).numpy()), spec.raw_fn(x))
