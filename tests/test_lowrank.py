import pytest
import torch
from torch import nn

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine


def test_shapes_and_parameter_count():
    lr = nl.LowRank(100, 80, rank=8)
    assert lr(torch.randn(5, 100)).shape == (5, 80)
    assert lr.n_params == 8 * (100 + 80) + 80            # k(n+m) + bias
    assert nl.LowRank(100, 80, 8, bias=False).n_params == 8 * 180 < 100 * 80
    assert isinstance(lr.down, nn.Linear) and isinstance(lr.up, nn.Linear)


@pytest.mark.parametrize("rank", [1, 3, 6])
def test_from_dense_is_the_truncated_svd_eckart_young(rank):
    torch.manual_seed(0)
    lin = nn.Linear(10, 7).double()
    W = lin.weight.detach()
    lr = nl.LowRank.from_dense(lin, rank)
    s = torch.linalg.svdvals(W)
    err = W - lr.weight
    # ‖W − W_k‖_F² = Σ_{i>k} σ_i²,  ‖W − W_k‖₂ = σ_{k+1}
    torch.testing.assert_close(err.pow(2).sum(), s[rank:].pow(2).sum())
    torch.testing.assert_close(torch.linalg.matrix_norm(err, ord=2), s[rank])
    assert torch.linalg.matrix_rank(lr.weight) == rank
    x = torch.randn(4, 10, dtype=torch.float64)
    torch.testing.assert_close(lr(x), x @ lr.weight.T + lin.bias)
    # no other rank-k matrix does better (random rank-k competitors, and the SVD perturbed)
    for _ in range(20):
        B = torch.randn(7, rank, dtype=torch.float64) @ torch.randn(rank, 10, dtype=torch.float64)
        assert (W - B).pow(2).sum() >= err.pow(2).sum()
        P = lr.weight + 1e-3 * torch.randn(7, rank, dtype=torch.float64) @ lr.down.weight
        assert (W - P).pow(2).sum() >= err.pow(2).sum()


def test_full_rank_reproduces_the_layer_and_low_rank_layer_compresses():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    full = nl.LowRank.from_dense(lin, 4)
    x = torch.randn(3, 6)
    torch.testing.assert_close(full(x), lin(x), atol=1e-5, rtol=1e-5)
    # an exactly rank-2 weight is recovered exactly at rank 2
    W = torch.randn(4, 2) @ torch.randn(2, 6)
    torch.testing.assert_close(nl.LowRank.from_dense(W, 2).weight, W, atol=1e-5, rtol=1e-5)


def test_from_dense_without_bias():
    lin = nn.Linear(5, 3, bias=False)
    lr = nl.LowRank.from_dense(lin, 2)
    assert lr.up.bias is None


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: nl.LowRank(5, 3, 0), ValueError, r"between 1 and min\(n, m\) = 3"),
    (lambda: nl.LowRank(5, 3, 4), ValueError, "got 4"),
    (lambda: nl.LowRank(5, 3, 1.5), TypeError, "rank must be an int"),
    (lambda: nl.LowRank(0, 3, 1), ValueError, "n must be a positive integer"),
    (lambda: nl.LowRank.from_dense(nn.Linear(5, 3), 9), ValueError, "rank must be between"),
    (lambda: nl.LowRank.from_dense("W", 1), TypeError, "nn.Linear"),
    (lambda: nl.LowRank.from_dense(torch.zeros(3), 1), ValueError, "2-D"),
    (lambda: nl.LowRank.from_dense(torch.full((3, 3), float("nan")), 1), ValueError, "NaN"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
