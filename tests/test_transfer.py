"""Transfer learning (lecture §5.1, §5.2, §5.4): freezing, extractor + head, two-phase fine-tuning,
layer-wise training."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab import transfer


def mlp(sizes=(4, 16, 12, 3), seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    blocks = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-2], sizes[1:-1])]
    return nn.Sequential(*blocks, nn.Linear(sizes[-2], sizes[-1]))


def blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    y = torch.arange(n) % 3
    X = centers[y] + 0.5 * torch.randn(n, 4, generator=g)
    return X, y


# --- freezing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,frozen", [
    (None, {"0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias"}),
    ("0", {"0.0.weight", "0.0.bias"}),
    (["0", "2"], {"0.0.weight", "0.0.bias", "2.weight", "2.bias"}),
    (r".*\.bias", {"0.0.bias", "1.0.bias", "2.bias"}),
    (r"\d\.0", {"0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias"}),
])
def test_freeze_by_pattern_table(pattern, frozen):
    model = mlp()
    n = transfer.freeze(model, pattern)
    names = {k for k, p in model.named_parameters() if not p.requires_grad}
    assert names == frozen
    assert n == sum(p.numel() for k, p in model.named_parameters() if k in frozen)
    transfer.unfreeze(model, pattern)
    assert all(p.requires_grad for p in model.parameters())


def test_freeze_by_module_parameter_and_list_and_counts():
    model = mlp()
    total = sum(p.numel() for p in model.parameters())
    transfer.freeze(model[0])
    transfer.freeze(model[2].bias)
    transfer.freeze([model[1], model[2].weight])
    c = transfer.count_parameters(model)
    assert (c.trainable, c.total, c.frozen) == (0, total, total)
    transfer.unfreeze([model[2]])
    c = transfer.count_parameters(model)
    assert c.trainable == 12 * 3 + 3 and abs(c.fraction - c.trainable / total) < 1e-12
    assert "trainable of" in str(c)
    assert transfer.count_parameters(model, "2").fraction == 1.0


def test_frozen_parameters_get_no_gradient_and_do_not_move():
    model = mlp()
    transfer.freeze(model, "0")
    w = model[0][0].weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    X, y = blobs()
    nn.functional.cross_entropy(model(X), y).backward()
    opt.step()
    assert model[0][0].weight.grad is None and torch.equal(model[0][0].weight, w)
    assert model[2].weight.grad is not None


@pytest.mark.parametrize("args,exc,match", [
    (("nope",), ValueError, "matches no parameter.*module names"),
    (("(",), ValueError, "regular expression"),
    (([],), TypeError, "pattern"),
])
def test_freeze_bad_patterns(args, exc, match):
    with pytest.raises(exc, match=match):
        transfer.freeze(mlp(), *args)


def test_freeze_bad_targets():
    with pytest.raises(TypeError, match="module to search"):
        transfer.freeze([nn.Linear(2, 2)], "0")
    with pytest.raises(TypeError, match="iterable"):
        transfer.freeze(3)
    with pytest.raises(TypeError, match="cannot freeze a str"):
        transfer.freeze(["weight"])


# --- extractor and head -----------------------------------------------------------------------

def test_feature_extractor_and_attach_head():
    model = mlp()
    body = transfer.feature_extractor(model)
    assert len(body) == 2 and body[0] is model[0]  # shares the pretrained layers
    X, _ = blobs(10)
    torch.testing.assert_close(model[-1](body(X)), model(X))
    assert transfer.feature_extractor(model, 1)(X).shape == (10, 16)
    copied = transfer.feature_extractor(model, -1, copy_weights=True)
    assert copied[0][0].weight is not model[0][0].weight
    torch.testing.assert_close(copied(X), body(X))
    new = transfer.attach_head(body, 5)
    assert [n for n, _ in new.named_children()] == ["extractor", "head"]
    assert new.head.in_features == 12 and new(X).shape == (10, 5)
    custom = transfer.attach_head(body, nn.Sequential(nn.Linear(12, 7), nn.Tanh()))
    assert custom(X).shape == (10, 7)


@pytest.mark.parametrize("call,exc,match", [
    (lambda m: transfer.feature_extractor(m, 0), ValueError, "keeps 0"),
    (lambda m: transfer.feature_extractor(m, -3), ValueError, "keeps 0"),
    (lambda m: transfer.feature_extractor(m, 4), ValueError, "keeps"),
    (lambda m: transfer.feature_extractor(m, 1.5), TypeError, "int"),
    (lambda m: transfer.feature_extractor(nn.Linear(2, 2)), TypeError, "Sequential"),
    (lambda m: transfer.attach_head(m, 0), ValueError, "at least one output"),
    (lambda m: transfer.attach_head(m, "head"), TypeError, "nn.Module or an int"),
    (lambda m: transfer.attach_head(nn.ReLU(), 3), ValueError, "output width"),
])
def test_extractor_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(mlp())


# --- two-phase fine-tuning --------------------------------------------------------------------

def test_finetune_two_phases_groups_and_counts(monkeypatch):
    import nnlab.training as training

    seen = []
    real_fit = training.fit

    def spy(model, train, val=None, **kw):
        opt = kw["optimizer"]
        seen.append(([g["lr"] for g in opt.param_groups],
                     [sum(p.numel() for p in g["params"]) for g in opt.param_groups],
                     {n for n, p in model.named_parameters() if p.requires_grad}))
        return real_fit(model, train, val, **kw)

    monkeypatch.setattr(training, "fit", spy)
    pre = mlp()
    model = transfer.attach_head(transfer.feature_extractor(pre), 3)
    body_w = model.extractor[0][0].weight.clone()
    X, y = blobs()
    res = transfer.finetune(model, (X, y), (X, y), head_epochs=2, full_epochs=2, lr=1e-2,
                            extractor_lr_scale=0.1, batch_size=32, seed=0)
    n_head = 12 * 3 + 3
    n_body = sum(p.numel() for p in model.extractor.parameters())
    (lr1, sz1, tr1), (lr2, sz2, tr2) = seen
    assert lr1 == [1e-2] and sz1 == [n_head] and tr1 == {"head.weight", "head.bias"}
    assert lr2 == pytest.approx([1e-3, 1e-2]) and sz2 == [n_body, n_head]
    assert len(tr2) == 6
    assert [p.params.trainable for p in res.phases] == [n_head, n_head + n_body]
    assert res.phases[0].params.total == n_head + n_body
    assert res.phases[1].lrs == pytest.approx({"extractor": 1e-3, "head": 1e-2})
    assert not torch.equal(model.extractor[0][0].weight, body_w)  # phase 2 moved A′
    assert "head (extractor frozen)" in res.summary()


def test_finetune_head_only_keeps_extractor_and_learns():
    model = transfer.attach_head(transfer.feature_extractor(mlp()), 3)
    body = {k: v.clone() for k, v in model.extractor.state_dict().items()}
    X, y = blobs()
    before = nn.functional.cross_entropy(model(X), y).item()
    res = transfer.finetune(model, (X, y), head_epochs=15, full_epochs=0, lr=3e-2, seed=0)
    assert len(res.phases) == 1
    assert all(torch.equal(v, model.extractor.state_dict()[k]) for k, v in body.items())
    assert nn.functional.cross_entropy(model(X), y).item() < before


def test_finetune_defaults_on_a_plain_sequential():
    model = mlp()
    X, y = blobs()
    res = transfer.finetune(model, (X, y), head_epochs=1, full_epochs=1, seed=0,
                            optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1))
    assert res.phases[0].params.trainable == 12 * 3 + 3
    with pytest.raises(ValueError, match="both 0"):
        transfer.finetune(model, (X, y), head_epochs=0, full_epochs=0)
    with pytest.raises(ValueError, match="head_epochs"):
        transfer.finetune(model, (X, y), head_epochs=-1)
    with pytest.raises(ValueError, match="extractor_lr_scale"):
        transfer.finetune(model, (X, y), extractor_lr_scale=0)
    with pytest.raises(ValueError, match="not a submodule.*children"):
        transfer.finetune(model, (X, y), head="classifier")
    with pytest.raises(ValueError, match="not part of the model"):
        transfer.finetune(model, (X, y), head=nn.Linear(3, 3))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        transfer.finetune(model, (X, y), optimizer="rmsprop")
    with pytest.raises(ValueError, match="cannot guess"):
        transfer.finetune(nn.Linear(4, 3), (X, y))


# --- layer-wise training ----------------------------------------------------------------------

def test_layerwise_trains_one_block_at_a_time(monkeypatch):
    import nnlab.training as training

    stages = []
    real_fit = training.fit

    def spy(model, train, val=None, **kw):
        stages.append(([type(m).__name__ for m in model.children()],
                       sum(p.numel() for p in model.parameters() if p.requires_grad)))
        return real_fit(model, train, val, **kw)

    monkeypatch.setattr(training, "fit", spy)
    X, y = blobs()
    res = transfer.layerwise_fit([4, 8, 6, 3], (X, y), (X, y), stage_epochs=3, finetune_epochs=2,
                                 lr=2e-2, seed=0)
    m = res.model
    assert len(m) == 3 and isinstance(m[-1], nn.Linear)
    # stage 1: f1 + temp head (8 -> 3); stage 2: f1 (frozen) + f2 + the MLP's own head; then all
    assert stages[0] == (["Sequential", "Linear"], 4 * 8 + 8 + 8 * 3 + 3)
    assert stages[1] == (["Sequential", "Sequential", "Linear"], 8 * 6 + 6 + 6 * 3 + 3)
    assert stages[2][1] == sum(p.numel() for p in m.parameters())
    assert [s.depth for s in res.stages] == [1, 2]
    assert [s.params.trainable for s in res.stages] == [stages[0][1], stages[1][1]]
    assert res.finetune_history is not None
    assert all(p.requires_grad for p in m.parameters())
    acc = (m(X).argmax(1) == y).float().mean().item()
    assert acc > 0.8


@pytest.mark.parametrize("kwargs,match", [
    (dict(sizes=[4]), "at least"),
    (dict(sizes=[4, 0, 3]), "positive ints"),
    (dict(sizes=[4, 8, 3], stage_epochs=[1, 1]), "stage_epochs"),
    (dict(sizes=[4, 8, 3], stage_epochs=0), "stage_epochs"),
    (dict(sizes=[4, 8, 3], finetune_epochs=-1), "finetune_epochs"),
])
def test_layerwise_bad_input(kwargs, match):
    X, y = blobs(12)
    sizes = kwargs.pop("sizes")
    with pytest.raises(ValueError, match=match):
        transfer.layerwise_fit(sizes, (X, y), **kwargs)


def test_layerwise_without_hidden_layers():
    X, y = blobs(30)
    res = transfer.layerwise_fit([4, 3], (X, y), stage_epochs=1, seed=0)
    assert len(res.stages) == 1 and res.stages[0].params.trainable == 4 * 3 + 3
    assert isinstance(nl.transfer.LayerwiseResult, type)


def test_frozen_batchnorm_keeps_pretrained_statistics():
    torch.manual_seed(0)
    pre = nl.MLP([4, 16, 3], batchnorm=True)
    bn = pre[0][1]
    with torch.no_grad():
        bn.running_mean.fill_(0.5)
    model = transfer.attach_head(transfer.feature_extractor(pre), 3)
    X, y = blobs(60)
    transfer.finetune(model, (X * 3 + 1, y), head_epochs=2, full_epochs=0, seed=0)
    assert torch.all(bn.running_mean == 0.5)  # phase 1 did not touch the frozen statistics
    assert not bn._forward_pre_hooks
    transfer.finetune(model, (X * 3 + 1, y), head_epochs=1, full_epochs=0, seed=0,
                      freeze_batchnorm=False)
    assert not torch.all(bn.running_mean == 0.5)
    held = bn.running_mean.clone()
    with transfer.hold_batchnorm(model) as n:
        assert n == 1
        model.train()
        model(X * 5)
    assert torch.equal(bn.running_mean, held)
