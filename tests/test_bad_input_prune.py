"""Bad input to the pruning methods (audit): one clear error, never a hang or a deep traceback."""
from __future__ import annotations

import importlib

import pytest
import torch

import nnlab as nl


def _model_and_data():
    torch.manual_seed(0)
    return nl.MLP([4, 8, 3]), torch.randn(32, 4), torch.randint(0, 3, (32,))


@pytest.mark.parametrize("method", ["obd", "obs"])
@pytest.mark.parametrize("max_samples", [0, -5, 2.5])
def test_max_samples_must_be_a_positive_integer(method, max_samples):
    # max_samples=0 made obs loop forever (the Hessian of no rows is NaN and no damping makes it
    # positive definite) and obd prune from a Hessian of nothing
    model, X, y = _model_and_data()
    with pytest.raises(ValueError, match="max_samples must be an integer >= 1"):
        getattr(nl.prune, method)(model, (X, y), sparsity=0.5, max_samples=max_samples)


def test_damped_inverse_refuses_a_non_finite_hessian_instead_of_looping():
    damped_inverse = importlib.import_module("nnlab.prune.obs").damped_inverse
    H = torch.full((3, 3), float("nan"), dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN/inf"):
        damped_inverse(H, 0.01)


@pytest.mark.parametrize("y, err, msg", [
    (torch.rand(32), TypeError, "integer class labels"),
    (torch.full((32,), 7), ValueError, r"labels must be in \[0, 2\]"),
    (torch.full((32,), -1), ValueError, r"labels must be in \[0, 2\]"),
])
def test_obd_checks_the_labels_like_fit(y, err, msg):
    # used to fail inside the Hessian estimator: "gather(): Expected dtype int32/int64 for index",
    # "index 7 is out of bounds for dimension 2 with size 3"
    model, X, _ = _model_and_data()
    with pytest.raises(err, match=msg):
        nl.prune.obd(model, (X, y), loss="cross_entropy", sparsity=0.5)


def test_obd_mse_target_of_the_wrong_width_is_named():
    model, X, _ = _model_and_data()
    with pytest.raises(ValueError, match="per sample but the model outputs"):
        nl.prune.obd(model, (X, torch.randn(32, 2)), loss="mse", sparsity=0.5)


def test_flops_names_an_example_input_that_does_not_fit():
    model, _, _ = _model_and_data()
    with pytest.raises(ValueError, match=r"example_input of shape \(2, 5\) does not run through MLP"):
        nl.prune.flops(model, torch.randn(2, 5))  # was torch's "mat1 and mat2 shapes cannot be multiplied"


@pytest.mark.parametrize("kw", [{"repeats": 0}, {"repeats": -1}, {"number": 0}, {"repeats": 2.5}])
def test_latency_needs_at_least_one_timing(kw):
    model, X, _ = _model_and_data()
    with pytest.raises(ValueError, match="must be an integer >= 1"):  # repeats=0: StatisticsError
        nl.prune.latency(model, X, **kw)
