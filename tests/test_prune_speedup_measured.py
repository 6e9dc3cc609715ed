"""Measured speed targets (``measure="cpu"``/``"latency"``): widths chosen by timing stand-ins (issue 16).

Timing is replaced by a deterministic latency model with SIMD-like stairs (cost ∝ ⌈in/16⌉·⌈out/16⌉),
so the tests check the search, not the machine.
"""
import math

import pytest
import torch

import nnlab as nl
from nnlab.prune import speedup as sp


def stair_latency(model):
    """Per-sample cost: every nn.Linear's in_features · out_features, each rounded up to 16 lanes, plus 50."""
    return 50 + sum(16 * math.ceil(m.in_features / 16) * 16 * math.ceil(m.out_features / 16)
                    for m in model.modules() if isinstance(m, torch.nn.Linear))


def fake_ratio(calls):
    def speed_ratio(dense, pruned, example_input, rounds=7, clock="wall"):
        calls.append(clock)
        a, b = stair_latency(dense), stair_latency(pruned)
        return a, b, a / b
    return speed_ratio


def widest(sizes, target):
    """Brute force: the widest residual stream w whose stair latency is ≥ target times faster than the dense one."""
    dense = stair_latency(nl.MLP(sizes, residual=True))
    ok = [w for w in range(1, sizes[1] + 1)
          if dense / stair_latency(nl.MLP([sizes[0]] + [w] * (len(sizes) - 2) + [sizes[-1]], residual=True)) >= target]
    return max(ok)


@pytest.mark.parametrize("target", [1.5, 2.0, 4.0])
def test_measured_target_keeps_the_widest_widths_that_reach_it(monkeypatch, target):
    calls = []
    monkeypatch.setattr(sp, "speed_ratio", fake_ratio(calls))
    torch.manual_seed(0)
    sizes = [8, 64, 64, 64, 3]
    m = nl.MLP(sizes, residual=True)
    before = [p.clone() for p in m.parameters()]
    X = torch.randn(32, 8)
    small, rep = nl.prune.neurons(m, speedup=target, example_input=X, measure="cpu", steps=2)
    w = widest(sizes, target)
    assert list(rep.widths_after.values()) == [w]
    assert w % 16 == 0          # the stairs: the widest width of a stair, not a FLOPs ratio inside one
    assert rep.speedup == pytest.approx(stair_latency(m) / stair_latency(small)) and rep.speedup >= target
    assert len(rep.steps) == 2 and set(calls) == {"cpu"}
    assert len(calls) <= 40        # the narrowest, a scan in 2 % FLOPs steps, a re-measure, a check of the result
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))     # stand-ins are copies


def test_a_pruned_model_timed_short_is_pruned_a_little_further(monkeypatch):
    """Noise: the stand-in was timed fast enough but the pruned model is not; small FLOPs steps follow."""
    monkeypatch.setattr(sp, "speed_ratio", fake_ratio([]))
    real = sp._measured_widths
    planned = []

    def too_wide(model, groups, orig, example_input, speedup, clock):
        w, got = real(model, groups, orig, example_input, speedup, clock)
        planned.append([k + 1 for k in w])         # one unit wider: a stair too slow
        return planned[-1], got

    monkeypatch.setattr(sp, "_measured_widths", too_wide)
    torch.manual_seed(0)
    m = nl.MLP([8, 64, 64, 64, 3], residual=True)
    small, rep = nl.prune.neurons(m, speedup=2.0, example_input=torch.randn(32, 8), measure="cpu", steps=1)
    w = list(rep.widths_after.values())[0]
    assert rep.speedup >= 2.0 and w < planned[0][0] and len(rep.steps) >= 2
    assert [s["target"] for s in rep.steps] == sorted(s["target"] for s in rep.steps)


def test_unreachable_measured_target_says_how_far_the_narrowest_got(monkeypatch):
    monkeypatch.setattr(sp, "speed_ratio", fake_ratio([]))
    m = nl.MLP([8, 64, 3])
    with pytest.raises(sp.SpeedupError, match=r"CPU-time speed-up .*cannot be reached: even the narrowest model "
                                              r"\(widths \[1\] of \[64\]\) got to \d+\.\d\dx"):
        nl.prune.neurons(m, speedup=100.0, example_input=torch.randn(4, 8), measure="cpu")


def test_measured_scan_ignores_one_lucky_and_costs_one_step_for_one_unlucky_timing(monkeypatch):
    """One timing too fast for a too-wide stand-in is re-measured away; one too slow for the right one
    moves the scan a single 2 % step narrower (not to half the widths, as a bisection's wrong turn would)."""
    sizes, target = [8, 64, 64, 64, 3], 1.5
    w = widest(sizes, target)
    seen: dict[int, int] = {}

    def speed_ratio(dense, pruned, example_input, rounds=7, clock="wall"):
        width = next(m.out_features for m in pruned.modules() if isinstance(m, torch.nn.Linear))
        seen[width] = seen.get(width, 0) + 1
        a, b = stair_latency(dense), stair_latency(pruned)
        if seen[width] == 1 and width == w + 4:
            return a, b, 10.0           # lucky
        if seen[width] == 1 and width == w:
            return a, b, 1.0            # unlucky
        return a, b, a / b

    monkeypatch.setattr(sp, "speed_ratio", speed_ratio)
    torch.manual_seed(0)
    small, rep = nl.prune.neurons(nl.MLP(sizes, residual=True), speedup=target, example_input=torch.randn(16, 8),
                                  measure="cpu")
    got = list(rep.widths_after.values())[0]
    assert seen.get(w + 4) == 2 and w - 3 <= got < w and rep.speedup >= target
