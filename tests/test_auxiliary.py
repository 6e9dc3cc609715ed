"""Auxiliary heads (lecture §4.1, GoogLeNet): weighted extra losses in training, none at inference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnlab as nl


def mlp(sizes=(4, 16, 12, 3), seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    blocks = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-2], sizes[1:-1])]
    return nn.Sequential(*blocks, nn.Linear(sizes[-2], sizes[-1]))


def test_training_output_carries_aux_and_loss_is_the_weighted_sum():
    model = mlp()
    aux = nl.AuxiliaryHeads(model, at=[0, "1"], n_classes=3, weight=[0.3, 0.5])
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    out = aux(x)
    assert torch.equal(out, model(x))
    h0, h1 = model[0](x), model[1](model[0](x))
    a0, a1 = out.aux_outputs
    torch.testing.assert_close(a0, aux.heads[0](h0))
    torch.testing.assert_close(a1, aux.heads[1](h1))
    expect = F.cross_entropy(out, y) + 0.3 * F.cross_entropy(a0, y) + 0.5 * F.cross_entropy(a1, y)
    torch.testing.assert_close(aux.loss()(out, y), expect)
    main, outs = aux.forward_all(x)
    torch.testing.assert_close(nl.layers.auxiliary.auxiliary_loss(main, outs, y, aux.weights,
                                                                   F.cross_entropy), expect)
    assert not model[0]._forward_hooks  # hooks live only during a forward call


def test_heads_dropped_at_inference():
    model = mlp()
    calls = []
    aux = nl.AuxiliaryHeads(model, at=[0], n_classes=3)
    aux.heads[0].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(5, 4)
    aux.eval()
    out = aux(x)
    assert not hasattr(out, "aux_outputs") and not calls
    torch.testing.assert_close(out, model(x))
    torch.testing.assert_close(aux.loss()(out, torch.zeros(5, dtype=torch.long)),
                               F.cross_entropy(model(x), torch.zeros(5, dtype=torch.long)))
    assert aux.model is model


def test_aux_loss_pushes_gradient_to_early_layers():
    model = mlp()
    with torch.no_grad():
        model[2].weight.zero_()  # the main path gives layer 0 no gradient at all
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    F.cross_entropy(model(x), y).backward()
    assert model[0][0].weight.grad.abs().max() == 0
    model.zero_grad()
    aux = nl.AuxiliaryHeads(model, at=[0], n_classes=3)
    aux.loss()(aux(x), y).backward()
    assert model[0][0].weight.grad.abs().max() > 0


def test_trains_through_fit_loss_callable():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(150) % 3
    X = torch.eye(3, 4)[y] * 2 + 0.4 * torch.randn(150, 4, generator=g)
    model = mlp()
    aux = nl.AuxiliaryHeads(model, at=[0, 1], n_classes=3, weight=0.3)
    nl.fit(aux, (X, y), (X, y), loss=aux.loss("cross_entropy"), optimizer="adam", lr=1e-2, epochs=15,
        batch_size=32, seed=0, progress=False)
    aux.eval()
    assert (model(X).argmax(1) == y).float().mean() > 0.9
    assert (aux.heads[0](model[0](X)).argmax(1) == y).float().mean() > 0.8  # the heads learned too


def test_custom_heads_and_conv_outputs():
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    aux = nl.AuxiliaryHeads(conv, at=[1], n_classes=2)  # default head pools (B, 4, 6, 6) -> (B, 4)
    out = aux(torch.randn(3, 1, 8, 8))
    assert out.aux_outputs[0].shape == (3, 2)
    mine = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))
    aux2 = nl.AuxiliaryHeads(conv, at=[1], heads=[mine], weight=1.0)
    assert aux2(torch.randn(3, 1, 8, 8)).aux_outputs[0].shape == (3, 2)
    plain = nl.AuxiliaryHeads(conv, at=[1], n_classes=2, weight=0.0)
    assert not hasattr(plain(torch.randn(2, 1, 8, 8)), "aux_outputs")  # weight 0: heads off
    torch.testing.assert_close(aux.loss("mse")(torch.ones(2, 2), torch.ones(2, 2)), torch.tensor(0.0))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(at=[5], n_classes=3), ValueError, "out of range"),
    (dict(at=["nope"], n_classes=3), ValueError, "no layer 'nope'"),
    (dict(at=[], n_classes=3), ValueError, "at is empty"),
    (dict(at=[0, "0"], n_classes=3), ValueError, "twice"),
    (dict(at=[0]), ValueError, "n_classes"),
    (dict(at=[0], n_classes=3, weight=-1), ValueError, "weight"),
    (dict(at=[0], n_classes=3, weight=[0.3, 0.3]), ValueError, "weight"),
    (dict(at=[0], heads=[nn.Linear(16, 3), nn.Linear(16, 3)]), ValueError, "one per entry"),
    (dict(at=[1.5], n_classes=3), TypeError, "layer names or child indices"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nl.AuxiliaryHeads(mlp(), **kwargs)
    with pytest.raises(ValueError, match="base loss"):
        nl.AuxiliaryHeads(mlp(), at=[0], n_classes=3).loss("hinge")
