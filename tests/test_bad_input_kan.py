"""Bad input to the KAN layers (audit): inputs of another float precision than the layer's."""
from __future__ import annotations

import pytest
import torch

import nnlab as nl


@pytest.mark.parametrize("model_dtype, x_dtype", [(torch.float32, torch.float64),
                                                  (torch.float64, torch.float32)])
def test_input_of_another_precision_gives_the_same_function(model_dtype, x_dtype):
    # float64 data into a float32 KAN (np.random arrays, pandas columns) used to come back as
    # float64 garbage (values of 1e195): the native kernel read float32 weights as float64
    torch.manual_seed(0)
    model = nl.KAN([2, 3, 1], seed=0).to(model_dtype)
    x = torch.rand(16, 2, dtype=torch.float64) * 1.8 - 0.9
    want = model(x.to(model_dtype))
    got = model(x.to(x_dtype))
    assert got.dtype == model_dtype
    torch.testing.assert_close(got, want)
    layer = model.layers[0]
    torch.testing.assert_close(layer(x.to(x_dtype)), layer(x.to(model_dtype)))


def test_update_grid_takes_float64_data_for_a_float32_model():
    torch.manual_seed(0)
    model = nl.KAN([2, 3, 1], seed=0)
    x = torch.rand(64, 2, dtype=torch.float64) * 1.8 - 0.9
    before = model(x.float()).detach()
    model.update_grid(x)  # used to fail deep in the kernel: "expected m1 and m2 to have the same dtype"
    torch.testing.assert_close(model(x.float()).detach(), before, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("kw", [{"lamb_l1": -1.0}, {"lamb_entropy": float("nan")}, {"lamb_coef": float("inf")}])
def test_regularization_weights_must_be_finite_and_non_negative(kw):
    # a negative weight rewarded dense KANs; NaN made the whole penalty (and the loss) NaN
    model = nl.KAN([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        model.regularization(torch.rand(8, 2) * 2 - 1, **kw)


def test_grid_update_checks_its_inputs_when_the_fit_starts():
    # a wrong width used to surface only at the first update, after `every` epochs of training
    model = nl.KAN([2, 3, 1], seed=0)
    x, y = torch.rand(16, 2) * 2 - 1, torch.rand(16, 1)
    seen = []
    with pytest.raises(ValueError, match=r"GridUpdate's x must be \(batch >= 1, 2\)"):
        nl.fit(model, (x, y), epochs=6, progress=False,
               callbacks=[lambda state: seen.append(state.epoch), nl.kan.GridUpdate(torch.rand(16, 3), every=5)])
    assert seen == []
