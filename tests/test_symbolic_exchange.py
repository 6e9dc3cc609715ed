"""The helper job of a parallel search (issue 12): a value computed once, by whichever side claims it
first (exchange.py), and the decomposition's second surrogate fitted by a helper (surrogate.help_decompose).
The value, and so the search, is the same whichever side computed it."""
import dataclasses
import time

import numpy as np
import pytest
import sympy
import torch

from nnlab.symbolic.exchange import Exchange
from nnlab.symbolic.surrogate import fit_surrogate, help_decompose

torch.set_num_threads(1)


def _no_call():
    raise AssertionError("computed on the wrong side")


def _speculated(ex, name):
    """Whether ``ex.speculate`` ran the computation of ``name`` (it keeps any error to itself, so a
    computation that must not run is recorded, not raised)."""
    ran = []
    ex.speculate(name, lambda stop: ran.append(name))
    return bool(ran)


def test_the_owner_computes_what_no_helper_claimed(tmp_path):
    ex = Exchange(str(tmp_path), "job3")
    assert ex.take("v", lambda: 41 + 1, patience=5) == 42
    assert not _speculated(ex, "v")  # a helper that starts later finds the work taken


def test_the_owner_takes_the_helpers_value(tmp_path):
    ex = Exchange(str(tmp_path), "job3")
    assert ex.speculate("v", lambda stop: {"w": np.arange(3.0)}) is True
    got = ex.take("v", _no_call, patience=5)
    assert np.array_equal(got["w"], np.arange(3.0))


def test_a_helper_that_fails_leaves_the_work_to_the_owner(tmp_path):
    ex = Exchange(str(tmp_path), "job3")

    def boom(stop):
        raise FloatingPointError("diverged")

    assert ex.speculate("v", boom) is False
    t0 = time.monotonic()
    assert ex.take("v", lambda: "mine", patience=60) == "mine"
    assert time.monotonic() - t0 < 5  # told at once, not after the patience


def test_a_helper_that_never_hands_over_is_waited_for_only_patience_seconds(tmp_path):
    ex = Exchange(str(tmp_path), "job3")
    ex._claim("v")  # a helper claimed the work and then vanished (a lost worker)
    t0 = time.monotonic()
    assert ex.take("v", lambda: "mine", patience=0.2) == "mine"
    assert time.monotonic() - t0 < 5


def test_without_a_shared_folder_each_side_works_alone(tmp_path):
    ex = Exchange(str(tmp_path / "not-here"), "job3")  # a worker on another machine
    assert not _speculated(ex, "v")
    assert ex.take("v", lambda: "mine", patience=60) == "mine"


def _params(sur):
    return [p.detach().clone() for p in sur.net.parameters()]


def _same(a, b):
    return (a.sigma, a.error, a.y_mean, a.y_std) == (b.sigma, b.error, b.y_mean, b.y_std) and \
        np.array_equal(a.signs, b.signs) and np.array_equal(a.lo, b.lo) and \
        all(torch.equal(p, q) for p, q in zip(_params(a), _params(b)))


def test_a_value_of_another_name_is_computed_by_the_owner_at_once(tmp_path):
    ex = Exchange(str(tmp_path), "job3")
    assert ex.speculate("a", lambda stop: 1) is True
    t0 = time.monotonic()
    assert ex.take("b", lambda: 2, patience=60) == 2 and ex.take("a", _no_call) == 1
    assert time.monotonic() - t0 < 5


def test_the_owner_takes_the_helpers_surrogate_fit_bit_for_bit(tmp_path, monkeypatch):
    """The helper fits the raw-input surrogate (here first, in this process); the owner's fit of the same
    name comes from it and equals the fit made alone; a fit of other arguments is the owner's own."""
    import nnlab.symbolic.surrogate as surrogate

    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (120, 2))
    y = X[:, 0] - X[:, 1] + 0.1 * X[:, 0] ** 2
    alone = fit_surrogate(X, y, steps=60, log_inputs=False)
    ex = Exchange(str(tmp_path), "job7")
    assert help_decompose(X, y, ex, steps=60) is True
    calls = []
    fit = surrogate.fit_surrogate
    monkeypatch.setattr(surrogate, "fit_surrogate", lambda *a, **k: calls.append(k) or fit(*a, **k))
    shared = surrogate.fit_surrogate(X, y, steps=60, log_inputs=False, exchange=ex)
    assert len(calls) == 1  # the call itself: no fit of its own
    assert _same(shared, alone)
    other = surrogate.fit_surrogate(X, y, steps=60, seed=1, log_inputs=False, exchange=ex)
    assert _same(other, fit(X, y, steps=60, seed=1, log_inputs=False))


def test_a_declined_helper_does_nothing(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (120, 2))
    ex = Exchange(str(tmp_path), "job7")
    ex.decline()
    assert (tmp_path / "job7.declined").exists()
    assert help_decompose(X, X[:, 0] * X[:, 1], ex, steps=60) is False


def test_without_a_fixed_sign_column_the_helper_has_nothing_to_do():
    """Log inputs apply to fixed-sign columns only: with none, the raw-input fit is the first one
    (the decomposition skips it), so the helper fits nothing."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (120, 2))
    y = X[:, 0] - X[:, 1] ** 3
    assert _same(fit_surrogate(X, y, steps=60), fit_surrogate(X, y, steps=60, log_inputs=False))
    assert help_decompose(X, y, Exchange("/nonexistent", "j"), steps=60) is False


def test_decomposition_shards_share_their_surrogate_fits_and_merge_into_the_law_of_one_process(tmp_path, monkeypatch):
    """The decomposition's two shards: the second, run first here, fits the raw-input surrogate (the
    helper's part), then the first it needs; the first shard takes every fit from it (none of its
    own); merged, the law is the one of n_jobs=1 bit for bit."""
    import nnlab.symbolic.decompose as decompose
    import nnlab.symbolic.surrogate as surrogate
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import Candidate

    rng = np.random.default_rng(1)
    X = rng.uniform(1, 5, (160, 3))
    y = np.sin(X[:, 0] - X[:, 1]) * X[:, 2]  # the log-input surrogate is not enough (error > 1e-2)
    data = (X[:120], y[:120], X[120:], y[120:])
    opts = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())
    job = CandidateJob(3, Candidate("decompose"), data, tuple(sympy.symbols("a b c")), LIBRARY, opts,
                       time.time() + 3600)
    alone = job()
    job = dataclasses.replace(job, cancel=str(tmp_path / "enough"))
    first, second = job.shards()
    assert (first.shard, second.shard) == ((0, 2), (1, 2)) and not first.helper and not second.helper
    made = []
    fit = surrogate.fit_surrogate
    spy = (lambda *a, **k: (made.append(k) if k.get("exchange") is None else None) or fit(*a, **k))
    monkeypatch.setattr(surrogate, "fit_surrogate", spy)
    monkeypatch.setattr(decompose, "fit_surrogate", spy)
    p2 = second()
    assert made and made[0].get("log_inputs") is False  # the raw-input fit first, while the first shard starts
    n_second = len(made)
    p1 = first()
    assert len(made) == n_second  # the first shard made no fit of its own
    merged = job.merge([p1, p2])
    assert sympy.srepr(merged.expr) == sympy.srepr(alone.expr)
    assert (merged.val_error, merged.note, merged.tree) == (alone.val_error, alone.note, alone.tree)


def test_unsharded_decomposition_job_and_its_helper_give_the_law_of_one_process(tmp_path, monkeypatch):
    """The search's jobs: the decomposition's helper (handed out right after it) fits the raw-input
    surrogate and hands it over; the decomposition's result is the one of n_jobs=1 bit for bit."""
    import nnlab.symbolic.decompose as decompose
    import nnlab.symbolic.surrogate as surrogate
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import SHARDS, Candidate

    monkeypatch.delitem(SHARDS, "decompose")  # unsharded: the candidate and a helper job

    rng = np.random.default_rng(1)
    X = rng.uniform(1, 5, (160, 3))
    y = np.sin(X[:, 0] - X[:, 1]) * X[:, 2]  # the log-input surrogate is not enough (error > 1e-2)
    data = (X[:120], y[:120], X[120:], y[120:])
    opts = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())
    job = CandidateJob(3, Candidate("decompose"), data, tuple(sympy.symbols("a b c")), LIBRARY, opts,
                       time.time() + 3600)
    alone = job()
    cancel = str(tmp_path / "enough")
    owner, helper = dataclasses.replace(job, cancel=cancel).shards()
    assert helper.helper and not owner.helper
    h = helper()  # the helper first: the owner finds the fit handed over
    calls = []
    fit = surrogate.fit_surrogate
    spy = (lambda *a, **k: calls.append(k) or fit(*a, **k))
    monkeypatch.setattr(surrogate, "fit_surrogate", spy)
    monkeypatch.setattr(decompose, "fit_surrogate", spy)
    r = owner()
    assert h.expr is None and h.note == "helper: raw-input surrogate handed over"
    asked = [c for c in calls if c.get("exchange") is not None]
    assert any(c.get("log_inputs") is False for c in asked)  # the owner needed the raw-input fit ...
    assert all(c.get("log_inputs", True) for c in calls if c.get("exchange") is None)  # ... and did not make it
    assert sympy.srepr(r.expr) == sympy.srepr(alone.expr)
    assert (r.val_error, r.note, r.tree) == (alone.val_error, alone.note, alone.tree)


def test_run_jobs_with_two_processes_gives_the_decomposition_of_one_process():
    """Through run_jobs (loky processes) the decomposition goes out as its two shards, which share their
    surrogate fits; merged, the decomposition's result is the sequential one."""
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob, run_jobs
    from nnlab.symbolic.search import Candidate

    rng = np.random.default_rng(1)
    X = rng.uniform(1, 5, (160, 3))
    y = np.sin(X[:, 0] - X[:, 1]) * X[:, 2]
    data = (X[:120], y[:120], X[120:], y[120:])
    opts = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())
    jobs = [CandidateJob(i, c, data, tuple(sympy.symbols("a b c")), LIBRARY, opts, time.time() + 3600)
            for i, c in enumerate([Candidate("raw"), Candidate("decompose")])]
    assert [(j.shard, j.helper) for j in jobs[1].shards()] == [((0, 2), False), ((1, 2), False)]
    seq = run_jobs(jobs, 1)
    par = run_jobs(jobs, 2)
    assert [(r.candidate, sympy.srepr(r.expr), r.val_error, r.note, r.tree) for r in par] == \
        [(r.candidate, sympy.srepr(r.expr), r.val_error, r.note, r.tree) for r in seq]


def test_a_job_waiting_for_a_value_computes_the_next_one_meanwhile(tmp_path):
    """A decision chain run ahead of need: while another job computes ``v``, this one computes ``w``
    (the chain may ask for it next) instead of waiting, then takes ``v``; it starts nothing more once
    ``v`` is there."""
    ex, other = Exchange(str(tmp_path), "job3"), Exchange(str(tmp_path), "job3")
    assert other.claim("v")  # the other job is computing v

    def make_w(stop):
        assert not stop()
        other._publish("v", lambda: "v of the other job")  # it ends while this job computes w
        return "w"

    got = ex.take("v", _no_call, patience=60, meanwhile=[("w", make_w), ("x", lambda stop: _no_call())])
    assert got == "v of the other job"
    assert other.take("w", _no_call) == "w"  # the chain's next value is there when asked for
    assert not (tmp_path / "job3.x.claim").exists()


def test_a_dropped_value_is_not_started_and_a_running_one_stops(tmp_path):
    from nnlab.symbolic.train import Interrupted

    ex = Exchange(str(tmp_path), "job3")
    ex.drop(["w"])
    assert not _speculated(ex, "w")

    def make_x(stop):
        ex.drop(["x"])  # the chain decided (in another job) that it will not ask for x
        if stop():
            raise Interrupted("no longer wanted")
        return "x"

    assert ex.speculate("x", make_x) is False
    t0 = time.monotonic()
    assert ex.take("x", lambda: "computed when asked after all", patience=60) == "computed when asked after all"
    assert time.monotonic() - t0 < 5  # the stopped fit said so (failed): no waiting


def test_a_surrogate_fit_stops_when_told():
    from nnlab.symbolic.train import Interrupted

    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (120, 2))
    asked = []
    with pytest.raises(Interrupted):
        fit_surrogate(X, X[:, 0] / X[:, 1], steps=200, stop=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3  # asked every 10 iterations, stopped at the first yes


def test_best_surrogate_through_an_exchange_is_the_same_and_drops_the_tries_it_did_not_need(tmp_path):
    from nnlab.symbolic.surrogate import best_surrogate, surrogate_name, surrogate_tries

    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (150, 2))
    y = X[:, 0] ** 2 / X[:, 1]  # a product of powers: the first (log-input) fit is enough
    ex = Exchange(str(tmp_path), "job5")
    shared, alone = best_surrogate(X, y, 0, ex), best_surrogate(X, y, 0)
    assert _same(shared, alone) and alone.error <= 1e-2
    tries = surrogate_tries(X, y, 0)
    assert [t["log_inputs"] for t in tries] == [True, False, True, True] and tries[3]["log_target"]
    names = [surrogate_name(X, y, **t) for t in tries]
    assert (tmp_path / f"job5.{names[0]}.value").exists()
    assert all((tmp_path / f"job5.{n}.dropped").exists() for n in names[1:])


def test_power_factors_through_an_exchange_are_the_same_and_made_once(tmp_path, monkeypatch):
    """The power factors' hypotheses through an exchange: the same split; a second job asking for the
    same chain takes every fit (none of its own); the fallback's hypotheses never asked for are dropped."""
    import nnlab.symbolic.power_factor as pf

    rng = np.random.default_rng(2)
    X = rng.uniform(1, 3, (120, 3))
    y = X[:, 0] ** 2 * np.sqrt(X[:, 1]) * (2 + np.sin(3 * X[:, 2]))
    args = (X, y, [0, 1, 2], [2, 1, 0], 0.05)
    alone = pf.find_power_factors(*args)
    assert alone is not None and alone[0] == [2]
    ex = Exchange(str(tmp_path), "job9")
    assert pf.find_power_factors(*args, exchange=ex) == alone
    calls = []
    fit = pf.fit_power_factors
    monkeypatch.setattr(pf, "fit_power_factors", lambda *a, **k: calls.append(a) or fit(*a, **k))
    assert pf.find_power_factors(*args, exchange=Exchange(str(tmp_path), "job9")) == alone
    assert calls == []
    assert sorted(p.name for p in tmp_path.glob("job9.power-factors-*.dropped")) != []


def test_the_power_factor_fits_made_ahead_are_the_ones_the_decomposition_asks_for_next():
    """While one job makes the root's last surrogate try, the other makes the power factors' fits ahead
    of need (decompose._PowerFactorsAhead): the same names, in the same order, as the fits the
    decomposition then asks for (its order read from the surrogate with the decomposer's first draws)."""
    import itertools
    import math

    from nnlab.symbolic import decompose as D
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.power_factor import _name

    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (160, 4))
    y = X[:, 0] ** 2 * X[:, 1] * (3 + np.cos(X[:, 2] - X[:, 3]))

    class Rough:  # a poor surrogate: the power factors are read from the rows
        error = sigma = 0.05

        def __call__(self, Z):
            return Z[:, 0] ** 2 * Z[:, 1] * (3 + np.cos(Z[:, 2] - 1.1 * Z[:, 3]))

    rest_of = {_name(X, y, list(r), 0): r for k in (1, 2, 3) for r in itertools.combinations(range(4), k)}
    asked = []

    class Recording:  # an exchange that records what is asked for; no fit finds anything
        def take(self, name, compute, meanwhile=()):
            asked.append(name)
            return np.ones(4 - len(rest_of[name])), 1.0

        def drop(self, names):
            list(names)

    ahead = D._PowerFactorsAhead(X, y, seed=0)
    offered = [name for name, _ in ahead(Rough())]
    assert offered and ahead.names == set(offered)
    dec = D._Decomposer(LIBRARY, math.inf, 4.0, 0)
    assert D._power_factors(dec, X, y, list(sympy.symbols("a b c d")), Rough(), 0, Recording()) is None
    assert asked and asked == offered[:len(asked)]
