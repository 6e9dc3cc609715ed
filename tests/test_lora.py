"""LoRA (lecture §5.3): invariants, merge/unmerge, adapter files, bad input."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab import lora


def mlp(sizes=(6, 12, 10, 3), seed=0) -> nn.Sequential:
    """Same structure as the nl.MLP contract: hidden blocks Sequential(Linear, act), last a Linear."""
    torch.manual_seed(seed)
    blocks = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-2], sizes[1:-1])]
    return nn.Sequential(*blocks, nn.Linear(sizes[-2], sizes[-1]))


def randomise_b(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora.lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.5)


# One table of injection cases: (targets, exclude, rank, alpha, expected wrapped names)
CASES = [
    (None, (), 2, 4.0, ["0.0", "1.0", "2"]),
    (None, ["2"], 2, 4.0, ["0.0", "1.0"]),
    ("0.0", (), 3, 3.0, ["0.0"]),
    ([r"\d\.0"], (), 4, 16.0, ["0.0", "1.0"]),
    (nn.Linear, "1.0", 1, 1.0, ["0.0", "2"]),
]


@pytest.mark.parametrize("targets,exclude,rank,alpha,names", CASES)
def test_inject_matches_base_at_init_and_freezes_the_rest(targets, exclude, rank, alpha, names):
    base = mlp()
    model = lora.inject(copy.deepcopy(base), rank=rank, alpha=alpha, targets=targets, exclude=exclude)
    assert [n for n, _ in lora.lora_layers(model)] == names
    x = torch.randn(7, 6)
    assert torch.equal(model(x), base(x))  # B = 0 at init: exactly the base model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{k}" for n in names for k in "AB"}
    rep = lora.trainable_report(model)
    expect = sum(rank * (m.in_features + m.out_features) for _, m in lora.lora_layers(model))
    assert rep.trainable == rep.lora == expect
    assert rep.total == sum(p.numel() for p in base.parameters()) + expect
    assert f"{rep.trainable:,}" in str(rep)


def test_lora_forward_is_the_lecture_formula_and_a_is_kaiming_uniform():
    torch.manual_seed(0)
    lin = nn.Linear(20, 9)
    layer = lora.LoRALinear(lin, rank=3, alpha=6)
    bound = 1 / math.sqrt(20)  # kaiming_uniform(a=sqrt(5)) on fan_in 20, as nn.Linear
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.std() > bound / 4
    assert torch.count_nonzero(layer.lora_B) == 0
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 20)
    expect = x @ lin.weight.T + lin.bias + (6 / 3) * (x @ (layer.lora_B @ layer.lora_A).T)
    torch.testing.assert_close(layer(x), expect)
    torch.testing.assert_close(lora.lora_linear(x, lin.weight, lin.bias, layer.lora_A, layer.lora_B, 2.0),
                               expect)
    assert not lin.weight.requires_grad and not lin.bias.requires_grad
    assert layer.weight is lin.weight and layer.in_features == 20 and layer.out_features == 9


def test_only_lora_parameters_get_gradients():
    model = lora.inject(mlp(), rank=2, alpha=4, exclude="2")
    randomise_b(model)
    model(torch.randn(5, 6)).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == ("lora_" in n), n


def test_merge_returns_plain_model_equal_to_the_adapted_one():
    model = lora.inject(mlp(), rank=2, alpha=4)
    randomise_b(model)
    x = torch.randn(32, 6)
    y = model(x)
    plain = lora.merge(model)
    assert not lora.lora_layers(plain)
    assert all(type(m) is nn.Linear for m in plain.modules() if isinstance(m, nn.Linear))
    assert (plain(x) - y).abs().max() <= 1e-5
    assert torch.equal(model(x), y)  # the input model is unchanged
    w0 = model[0][0].base_layer.weight
    torch.testing.assert_close(plain[0][0].weight, w0 + 2.0 * model[0][0].lora_B @ model[0][0].lora_A)
    with pytest.raises(ValueError, match="no LoRA layers"):
        lora.merge(plain)  # a second merge is refused: it cannot add ΔW twice


def test_inplace_merge_unmerge_round_trip_and_double_merge_refused():
    model = lora.inject(mlp(), rank=2, alpha=4)
    randomise_b(model)
    x = torch.randn(16, 6)
    y = model(x)
    w0 = model[1][0].base_layer.weight.clone()
    assert lora.merge(model, inplace=True) is model
    assert all(m.merged for _, m in lora.lora_layers(model))
    assert (model(x) - y).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="already merged.*unmerge"):
        lora.merge(model, inplace=True)
    plain = lora.merge(model)  # copying a model merged in place does not add ΔW again
    assert (plain(x) - y).abs().max() <= 1e-5
    lora.unmerge(model)
    assert (model(x) - y).abs().max() <= 1e-5
    assert (model[1][0].base_layer.weight - w0).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="nothing to unmerge"):
        lora.unmerge(model)


def test_merge_refuses_non_finite_delta_naming_the_layer():
    model = lora.inject(mlp(), rank=2, alpha=4)
    with torch.no_grad():
        model[1][0].lora_B[0, 0] = float("nan")
    before = model[1][0].base_layer.weight.clone()
    with pytest.raises(ValueError, match="'1.0'.*NaN/inf"):
        lora.merge(model)
    with pytest.raises(ValueError, match="'1.0'"):
        lora.merge(model, inplace=True)
    assert torch.equal(model[1][0].base_layer.weight, before)


def test_adapter_file_round_trip_is_small_and_exact(tmp_path):
    base = mlp((6, 64, 64, 3))
    model = lora.inject(copy.deepcopy(base), rank=2, alpha=4, exclude="2")
    nl.transfer.unfreeze(model, "2")  # a head trained next to the adapter
    randomise_b(model)
    with torch.no_grad():
        model[2].weight.add_(1.0)
    path = tmp_path / "adapter.safetensors"
    lora.save_adapter(model, path, include="2")
    n_adapter = sum(2 * (m.in_features + m.out_features) for _, m in lora.lora_layers(model))
    assert path.stat().st_size < 4 * (n_adapter + 64 * 3 + 3) + 2000  # only A, B and the head
    x = torch.randn(9, 6)
    fresh = lora.load_adapter(copy.deepcopy(base), path)  # wraps the named layers itself
    torch.testing.assert_close(fresh(x), model(x))
    again = lora.inject(copy.deepcopy(base), rank=2, alpha=4, exclude="2")
    lora.load_adapter(again, path)  # into an already-injected model
    torch.testing.assert_close(again(x), model(x))


def test_adapter_shape_mismatch_names_the_module(tmp_path):
    path = tmp_path / "a.safetensors"
    lora.save_adapter(lora.inject(mlp((6, 12, 10, 3)), rank=2, alpha=4), path)
    with pytest.raises(ValueError, match="'0.0'.*shape"):
        lora.load_adapter(mlp((6, 16, 10, 3)), path)
    with pytest.raises(ValueError, match="'0.0'.*rank=2.*rank=3"):
        lora.load_adapter(lora.inject(mlp(), rank=3, alpha=4, exclude="2"), path)
    with pytest.raises(ValueError, match="lacks"):
        lora.load_adapter(lora.inject(nn.Sequential(mlp(), nn.Linear(3, 3)), rank=1, alpha=1,
                                      targets="1"), path)
    with pytest.raises(ValueError, match="does not have"):
        lora.load_adapter(nn.Sequential(nn.Linear(6, 12)), path)
    merged = lora.inject(mlp(), rank=2, alpha=4)
    lora.merge(merged, inplace=True)
    with pytest.raises(ValueError, match="unmerge"):
        lora.load_adapter(merged, path)
    other = tmp_path / "other.safetensors"
    nl._io.save_tensors(other, {"w": torch.zeros(2)})
    with pytest.raises(ValueError, match="not an nnlab LoRA adapter"):
        lora.load_adapter(mlp(), other)


@pytest.mark.parametrize("rank", [0, -1, 3, 5])
def test_bad_rank_names_the_layer(rank):
    model = mlp((6, 12, 10, 3))  # last layer is (out=3, in=10): rank must be < 3
    snapshot = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="rank" if rank <= 0 else "'2'.*rank < 3"):
        lora.inject(model, rank=rank, alpha=4)
    assert not lora.lora_layers(model)  # nothing was wrapped
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in snapshot.items())


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(targets="nope"), ValueError, "no nn.Linear.*matches.*available"),
    (dict(targets=nn.ReLU), TypeError, "not an nn.Linear subclass"),
    (dict(targets=3), TypeError, "name pattern"),
    (dict(targets="("), ValueError, "regular expression"),
    (dict(rank=2.0), TypeError, "rank must be an int"),
    (dict(alpha=0), ValueError, "alpha"),
    (dict(alpha=float("nan")), ValueError, "alpha"),
    (dict(dropout=1.0), ValueError, "dropout"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lora.inject(mlp(), **{"rank": 1, "alpha": 2, **kwargs})


def test_inject_twice_and_non_models():
    model = lora.inject(mlp(), rank=1, alpha=2)
    with pytest.raises(ValueError, match="already wrapped"):
        lora.inject(model, rank=1, alpha=2)
    with pytest.raises(TypeError, match="nn.Module"):
        lora.inject("model")
    with pytest.raises(ValueError, match="no LoRA"):
        lora.merge(mlp())
    with pytest.raises(ValueError, match="no LoRA"):
        lora.save_adapter(mlp(), "unused.safetensors")
    with pytest.raises(TypeError, match="nn.Linear"):
        lora.LoRALinear(nn.Conv1d(3, 3, 1), rank=1)


def test_dropout_only_on_the_lora_branch_and_config_object():
    cfg = lora.LoRAConfig(rank=2, alpha=4, dropout=0.5, targets=["0.0"])
    assert cfg.scaling == 2.0
    model = lora.inject(mlp(), config=cfg)
    layer = model[0][0]
    x = torch.randn(8, 6)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.base_layer(x))  # B = 0: dropout changes nothing
    randomise_b(model)
    layer.train()
    torch.manual_seed(0)
    a = layer(x)
    torch.manual_seed(1)
    b = layer(x)
    assert not torch.allclose(a, b)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.base_layer(x) + x @ layer.delta_weight().T)


def test_fused_forward_gradients_match_autograd_oracle():
    torch.manual_seed(0)
    lin = nn.Linear(5, 4).double()
    layer = lora.LoRALinear(lin, rank=2, alpha=3)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)  # (batch, tokens, in)
    assert torch.autograd.gradcheck(
        lambda x, A, B: lora.lora_linear(x, lin.weight, lin.bias, A, B, 1.5), (x, layer.lora_A, layer.lora_B))
    out = layer(x)
    ref = x @ lin.weight.T + lin.bias + 1.5 * (x @ layer.lora_A.T) @ layer.lora_B.T
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, layer.lora_A, layer.lora_B), g)
    refs = torch.autograd.grad(ref, (x, layer.lora_A, layer.lora_B), g)
    for a, b in zip(grads, refs):
        torch.testing.assert_close(a, b)
    lin.register_forward_hook(lambda m, i, o: None)  # a hooked base layer takes the generic path
    torch.testing.assert_close(layer(x), ref)


def test_runs_under_autocast():
    torch.manual_seed(0)
    layer = lora.LoRALinear(nn.Linear(16, 8), rank=2, alpha=4)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 3, 16)
    ref = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)
