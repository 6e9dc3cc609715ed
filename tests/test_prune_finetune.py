"""nl.prune.finetune: cosine-annealed fine-tuning that keeps its best-by-validation weights."""
import copy

import pytest
import torch
import torch.nn.functional as F

import nnlab as nl
from nnlab.prune.finetuning import split_off


def data(n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).long()


def trained():
    torch.manual_seed(0)
    m = nl.MLP([6, 24, 24, 2])
    nl.fit(m, data(), loss="cross_entropy", epochs=20, lr=1e-2, seed=0, progress=False)
    return m


def val_loss(m, val):
    with torch.no_grad():
        return float(F.cross_entropy(m(val[0]), val[1]))


def test_a_harmful_finetune_returns_the_starting_weights():
    m, val = trained(), data(80, seed=1)
    start = copy.deepcopy(m.state_dict())
    before = val_loss(m, val)
    # SGD at lr 50 with no annealing wrecks the model every epoch: the start must win
    hist, kept = nl.prune.finetune(m, data(), val, epochs=3, optimizer="sgd", lr=50.0, scheduler=None, seed=0)
    assert kept == 0 and len(hist.val_loss) == 3 and min(hist.val_loss) > before
    assert all(torch.equal(v, start[k]) for k, v in m.state_dict().items())


def test_a_useful_finetune_keeps_its_best_epoch():
    torch.manual_seed(0)
    m, val = nl.MLP([6, 24, 2]), data(80, seed=1)      # untrained: every epoch helps
    before = val_loss(m, val)
    hist, kept = nl.prune.finetune(m, data(), val, epochs=4, lr=1e-2, seed=0)
    assert kept == 1 + min(range(4), key=lambda i: (hist.val_loss[i], -i))
    assert val_loss(m, val) == pytest.approx(min(hist.val_loss), rel=1e-5) and val_loss(m, val) < before


def test_without_val_it_is_fit_with_a_cosine_schedule():
    m1, m2 = trained(), trained()
    h1, kept = nl.prune.finetune(m1, data(), epochs=2, lr=1e-2, seed=0)
    h2 = nl.fit(m2, data(), loss="cross_entropy", epochs=2, lr=1e-2, seed=0, scheduler="cosine", progress=False)
    assert kept is None and h1.train_loss == h2.train_loss
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_split_off_holds_out_disjoint_rows():
    X, y = data(50)
    (Xt, yt), (Xv, yv) = split_off(X, y, 0.2, seed=3)
    assert len(Xt) == 40 and len(Xv) == 10
    rows = {tuple(r.tolist()) for r in torch.cat([Xt, Xv])}
    assert len(rows) == 50
    for bad in (0.0, 1.0, 1, True, "0.1"):
        with pytest.raises(ValueError, match="validation fraction"):
            split_off(X, y, bad)


@pytest.mark.parametrize("val", [0.25, "tuple"])
def test_speedup_finetunes_keep_the_best_weights(val):
    m, (X, y) = trained(), data()
    v = data(60, seed=2) if val == "tuple" else val
    small, rep = nl.prune.neurons(m, speedup=2.0, importance="obs", data=(X, y), example_input=X, measure="flops",
                                  steps=2, finetune_epochs=2, val=v, fit_kwargs={"lr": 1e-2, "seed": 0})
    assert [s["kept_epoch"] in (0, 1, 2) for s in rep.steps] == [True, True]
    assert rep.flops_before / rep.flops_after >= 2.0


def test_val_bad_input():
    m, (X, y) = trained(), data()
    with pytest.raises(ValueError, match="needs finetune_epochs > 0"):
        nl.prune.neurons(m, speedup=2.0, data=(X, y), example_input=X, measure="flops", val=0.2)
    with pytest.raises(ValueError, match="val X has 4 columns but the model"):
        nl.prune.neurons(m, speedup=2.0, data=(X, y), example_input=X, measure="flops", finetune_epochs=1,
                         val=(torch.randn(5, 4), torch.zeros(5).long()))
    with pytest.raises(ValueError, match="no use for val"):
        nl.prune.neurons(m, 0.5, data=(X, y), val=0.2)
