import pytest
import torch

import nnlab as nl


def test_cubic_schedule():
    s = nl.prune.cubic_schedule(0.9, 4)
    assert s[-1] == pytest.approx(0.9)
    assert s == pytest.approx([0.9 * (1 - (1 - t / 4) ** 3) for t in range(1, 5)])
    assert all(a < b for a, b in zip(s, s[1:]))
    steps = [b - a for a, b in zip([0.0] + s, s)]
    assert all(a > b for a, b in zip(steps, steps[1:]))    # prunes fast first, slow near the target


@pytest.mark.parametrize("method,kw", [("magnitude", {}), ("obs", {"algorithm": "exact"})])
def test_gradual_reaches_target_with_masks_kept(method, kw):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(128, 6, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    m = nl.MLP([6, 16, 2])
    m, log = nl.prune.gradual(m, (X, y), (X, y), target_sparsity=0.8, steps=3, method=method, method_kwargs=kw,
                              finetune_epochs=1, lr=1e-2, seed=0)
    assert len(log) == 3 and log[-1]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert "val_acc" in log[-1]
    assert nl.prune.sparsity(m).overall == pytest.approx(0.8, abs=0.01)


def test_gradual_bad_input():
    m = nl.MLP([6, 4, 2])
    X, y = torch.randn(8, 6), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="steps"):
        nl.prune.gradual(m, (X, y), steps=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nl.prune.gradual(m, (X, y), target_sparsity=1.2)
    with pytest.raises(ValueError, match="unknown method"):
        nl.prune.gradual(m, (X, y), method="lottery")
    with pytest.raises(ValueError, match="finetune_epochs"):
        nl.prune.gradual(m, (X, y), finetune_epochs=-1)
