"""Bad input to nl.fit: each raises ValueError/TypeError naming the problem and what is expected."""
import numpy as np
import pytest
import torch
from torch import nn

import nnlab as nl

torch.set_num_threads(1)

X = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
Y_REG = torch.randn(8, 1, generator=torch.Generator().manual_seed(1))
Y_CLS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


def reg():
    return nn.Linear(2, 1)


def cls():
    return nn.Linear(2, 3)


NAN_X = X.clone()
NAN_X[3, 1] = float("nan")
INF_Y = Y_REG.clone()
INF_Y[0, 0] = float("inf")

CASES = [
    # (id, model, kwargs, error, message)
    ("1-D X", reg, dict(train=(torch.zeros(8), Y_REG)), ValueError, r"shape \(n_samples, n_features\)"),
    ("X columns vs model", reg, dict(train=(torch.zeros(8, 3), Y_REG)), ValueError,
     r"cannot take train samples of shape \(3,\)"),
    ("NaN in X", reg, dict(train=(NAN_X, Y_REG)), ValueError, r"train X contains 1 NaN/inf.*\(3, 1\)"),
    ("inf in y", reg, dict(train=(X, INF_Y)), ValueError, "train y contains 1 NaN/inf"),
    ("X/y lengths", reg, dict(train=(X, Y_REG[:5])), ValueError, "8 rows but train y has 5"),
    ("empty", reg, dict(train=(torch.zeros(0, 2), torch.zeros(0, 1))), ValueError, "empty"),
    ("empty dataset", reg, dict(train=torch.utils.data.TensorDataset(torch.zeros(0, 2), torch.zeros(0, 1))),
     ValueError, "empty"),
    ("not a pair", reg, dict(train=(X, Y_REG, Y_REG)), ValueError, r"\(X, y\) pair"),
    ("train type", reg, dict(train="data.csv"), TypeError, "Dataset or a DataLoader"),
    ("strings", reg, dict(train=(np.array([["a", "b"]] * 8), Y_REG)), TypeError, "numeric"),
    ("unknown loss", reg, dict(train=(X, Y_REG), loss="hinge"), ValueError, r"unknown loss 'hinge'.*'mse'"),
    ("loss type", reg, dict(train=(X, Y_REG), loss=3), TypeError, "loss must be one of"),
    ("unknown optimizer", reg, dict(train=(X, Y_REG), optimizer="adagrad"), ValueError,
     r"unknown optimizer 'adagrad'.*'adam', 'sgd', 'lbfgs'"),
    ("optimizer type", reg, dict(train=(X, Y_REG), optimizer=0.1), TypeError, "optimizer must be"),
    ("mse shape", reg, dict(train=(X, torch.zeros(8, 2))), ValueError,
     r"shape \(2,\) per sample but the model outputs \(1,\).*must match"),
    ("mse val shape", reg, dict(train=(X, Y_REG), val=(X, torch.zeros(8, 3))), ValueError, "val y has shape"),
    ("labels out of range", cls, dict(train=(X, torch.tensor([0, 1, 2, 3, 0, 1, 2, 0])),
                                      loss="cross_entropy"), ValueError, r"\[0, 3\].*3 classes.*\[0, 2\]"),
    ("negative label", cls, dict(train=(X, -Y_CLS), loss="cross_entropy"), ValueError, "labels must be in"),
    ("float labels", cls, dict(train=(X, Y_CLS.float()), loss="cross_entropy"), TypeError,
     r"integer class labels.*y.long\(\)"),
    ("2-D labels", cls, dict(train=(X, Y_CLS.reshape(-1, 1)), loss="cross_entropy"), ValueError,
     r"1-D class labels"),
    ("clip kind", reg, dict(train=(X, Y_REG), clip=("l2", 1.0)), ValueError, "'norm'.*'value'"),
    ("clip threshold", reg, dict(train=(X, Y_REG), clip=("norm", -1.0)), ValueError, "positive"),
    ("clip form", reg, dict(train=(X, Y_REG), clip=1.0), TypeError, r"\('norm', c\)"),
    ("lr", reg, dict(train=(X, Y_REG), lr=0.0), ValueError, "lr must be a finite number > 0"),
    ("lr_inf", reg, dict(train=(X, Y_REG), lr=float("inf")), ValueError, "lr must be a finite number > 0"),
    ("lr_nan", reg, dict(train=(X, Y_REG), lr=float("nan")), ValueError, "lr must be a finite number > 0"),
    ("epochs", reg, dict(train=(X, Y_REG), epochs=-1), ValueError, "epochs must be >= 0"),
    ("epochs type", reg, dict(train=(X, Y_REG), epochs=2.5), TypeError, "epochs must be an integer"),
    ("batch_size", reg, dict(train=(X, Y_REG), batch_size=0), ValueError, "batch_size must be >= 1"),
    ("penalty", reg, dict(train=(X, Y_REG), penalty=1.0), TypeError, "penalty must be a callable"),
    ("model", lambda: "mlp", dict(train=(X, Y_REG)), TypeError, "torch.nn.Module"),
    # callable losses that give no scalar failed inside backward(); a file as checkpoint_dir only
    # after the first epoch, as mkdir's "File exists"
    ("loss per element", reg, dict(train=(X, Y_REG), loss=lambda out, y: (out - y) ** 2), TypeError,
     r"must return a scalar tensor .* got \(2, 1\)"),
    ("loss float", reg, dict(train=(X, Y_REG), loss=lambda out, y: 1.0), TypeError,
     "must return a scalar tensor .* got float"),
    ("checkpoint_dir file", reg, dict(train=(X, Y_REG), checkpoint_dir=__file__), ValueError,
     "checkpoint_dir .* is a file, not a folder"),
]


@pytest.mark.parametrize("name,make,kwargs,err,msg", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(name, make, kwargs, err, msg):
    with pytest.raises(err, match=msg):
        nl.fit(make(), epochs=kwargs.pop("epochs", 1), **kwargs)


def test_bad_penalty_return_value():
    with pytest.raises(TypeError, match="scalar tensor"):
        nl.fit(reg(), (X, Y_REG), epochs=1, penalty=lambda m, xb: [1.0])


def test_nan_in_a_dataset_batch_is_caught():
    Xn = X.clone()
    Xn[5, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN/inf"):
        nl.fit(reg(), torch.utils.data.TensorDataset(Xn, Y_REG), epochs=1, batch_size=8)


def test_diverging_training_is_an_error_and_keeps_the_last_finite_checkpoint(tmp_path):
    from nnlab.training import DivergenceError, load_checkpoint

    Xb = 1e3 * X
    seen = []
    with pytest.raises(DivergenceError, match=r"diverged at epoch \d+.*clip") as err:
        nl.fit(nn.Linear(2, 1), (Xb, Y_REG), optimizer="sgd", lr=10.0, epochs=10, batch_size=8,
               checkpoint_dir=tmp_path, callbacks=[lambda st: seen.append(st.epoch)])
    bad_epoch = seen[-1]
    assert f"epoch {bad_epoch}" in str(err.value)
    assert seen == list(range(1, bad_epoch + 1))  # the diverged epoch is still reported to callbacks
    if bad_epoch > 1:
        ckpt = load_checkpoint(tmp_path)
        assert ckpt.epoch == bad_epoch - 1
        assert all(torch.isfinite(t).all() for t in ckpt.model_state().values())


def test_mse_accepts_1d_targets_for_one_output():
    h = nl.fit(reg(), (X, Y_REG.flatten()), epochs=2, batch_size=4, seed=0)
    assert len(h.train_loss) == 2
