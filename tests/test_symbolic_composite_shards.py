"""The composite candidate split into shards (issue 12): each shard fits its share of the
(structure, inner function) units, the merge is the unsharded law bit for bit; through an exchange the
shards make their common setup once and claim units as they go; the pool stops at its first exact form."""
import numpy as np
import pytest
import sympy

import nnlab.symbolic as S

def _composite_case():
    """y = a·sin(b/c)·√a-free law M₁·g(M₂) on positive data (the composite candidate's case)."""
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(1, 2, 200), rng.uniform(0.5, 1.5, 200), rng.uniform(1, 3, 200)])
    y = X[:, 0] * np.sin(X[:, 1] / X[:, 2])
    return X, y


def _composite_run(lib=None):
    """run_candidate's arguments and options for the composite on :func:`_composite_case`."""
    from nnlab.symbolic.search import Candidate

    X, y = _composite_case()
    args = (Candidate("composite", True, True), X[:150], y[:150], X[150:], y[150:], list(sympy.symbols("a b c")),
            S.LIBRARY.subset(["x", "sin", "exp"]) if lib is None else lib)
    return args, dict(grid=5, k=3, steps=10, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6, deadline=None)


def test_composite_shards_merge_into_the_unsharded_result():
    """Each shard computes its round-robin share of the (structure, inner) units and no formula; the
    merge of the shards, computed in any order, is the unsharded result bit for bit."""
    from nnlab.symbolic.search import SHARDS, merge_shards, run_candidate

    args, opts = _composite_run()
    whole = run_candidate(*args, **opts)
    K = SHARDS["composite"]
    parts = {j: run_candidate(*args, **opts, shard=(j, K)) for j in reversed(range(K))}
    assert all(p.expr is None and p.partial is not None for p in parts.values())
    units = sorted(u for p in parts.values() for u in p.partial["units"])
    assert units == list(range(4 * len(parts[0].partial["structures"]))) and len(units) >= 4
    merged = merge_shards([parts[j] for j in range(K)], *args[1:], **opts)
    assert whole.complete and sympy.srepr(merged.expr) == sympy.srepr(whole.expr)
    assert (merged.val_error, merged.train_error, merged.note) == (whole.val_error, whole.train_error, whole.note)
    with pytest.raises(RuntimeError, match="shards cover units"):  # a lost shard is an error, not a silent gap
        merge_shards([parts[j] for j in range(K - 1)], *args[1:], **opts)


def test_composite_stops_at_the_first_exact_form_of_its_pool(monkeypatch):
    """The composite finishes (polish and snap) its best forms in order of cost and, like the search,
    stops at the first exact one: a·sin(b/c) is not snapped again as a·cos(b/c − π/2)."""
    from nnlab.symbolic import composite
    from nnlab.symbolic.search import run_candidate

    args, opts = _composite_run(S.LIBRARY)
    finished = []
    finish = composite.finish
    monkeypatch.setattr(composite, "finish", lambda e, *a, **k: finished.append(e) or finish(e, *a, **k))
    first = run_candidate(*args, **opts)
    assert len(finished) == 1 and first.val_error < composite.EXACT_HELD_OUT
    monkeypatch.setattr(composite, "EXACT_HELD_OUT", 0.0)  # no early stop: every form of the pool
    finished.clear()
    every = run_candidate(*args, **opts)
    assert len(finished) > 1 and sympy.srepr(every.expr) == sympy.srepr(first.expr)


def test_composite_shards_share_their_setup_and_claim_units_through_an_exchange(tmp_path, monkeypatch):
    """Steps 1-2 of the composite (signs, directions, structures) are the same for every shard: through
    an exchange the first shard makes them and the others take them, and the units' fits are tasks each
    made once, by the shard that claims it first (a shard that starts late makes fewer); the merge is
    still the unsharded result bit for bit."""
    from nnlab.symbolic import composite
    from nnlab.symbolic.exchange import Exchange
    from nnlab.symbolic.search import SHARDS, merge_shards, run_candidate

    args, opts = _composite_run()
    whole = run_candidate(*args, **opts)
    made, fitted = [], []
    setup, fit_affine = composite._setup, composite.fit_affine
    monkeypatch.setattr(composite, "_setup", lambda *a: made.append(1) or setup(*a))
    monkeypatch.setattr(composite, "fit_affine", lambda *a, **k: fitted.append(a[2]) or fit_affine(*a, **k))
    run_candidate(*args, **opts)
    every = sorted(fitted)
    made.clear()
    K = SHARDS["composite"]
    ex = Exchange(str(tmp_path), "job4")
    parts, counts = [], []
    for j in range(K):  # one after the other here: the first shard makes every fit, the others take them
        fitted.clear()
        parts.append(run_candidate(*args, **opts, shard=(j, K), exchange=ex))
        counts.append(len(fitted))
    assert len(made) == 1 and counts == [len(every)] + [0] * (K - 1)
    n = 4 * len(parts[0].partial["structures"])
    assert [sorted(p.partial["units"]) for p in parts] == [list(range(j, n, K)) for j in range(K)]
    merged = merge_shards(parts, *args[1:], **opts)
    assert sympy.srepr(merged.expr) == sympy.srepr(whole.expr) and merged.val_error == whole.val_error
    # a shard that cannot reach the folder (another machine) fits every K-th unit: some twice, same law
    ex2 = Exchange(str(tmp_path), "job5")
    mixed = [run_candidate(*args, **opts, shard=(0, K), exchange=ex2)] + \
        [run_candidate(*args, **opts, shard=(j, K)) for j in range(1, K)]
    merged = merge_shards(mixed, *args[1:], **opts)
    assert sympy.srepr(merged.expr) == sympy.srepr(whole.expr) and merged.val_error == whole.val_error


def test_composite_shards_running_at_once_split_the_fits(tmp_path, monkeypatch):
    """Two shards running at once (threads here, processes in a search) split the units' fits: each
    library fit is made once in all, both shards end with every value, and the merge is the unsharded
    result bit for bit."""
    import threading

    from nnlab.symbolic import composite
    from nnlab.symbolic.exchange import Exchange
    from nnlab.symbolic.search import merge_shards, run_candidate

    args, opts = _composite_run(S.LIBRARY.subset(["x", "sin", "exp", "cos", "tanh", "x^2"]))
    whole = run_candidate(*args, **opts)
    fitted: dict[int, list] = {}
    fit_affine = composite.fit_affine

    def spy(*a, **k):
        fitted.setdefault(threading.get_ident(), []).append(a[2])
        return fit_affine(*a, **k)

    monkeypatch.setattr(composite, "fit_affine", spy)
    run_candidate(*args, **opts)
    every = sorted(next(iter(fitted.values())))
    fitted.clear()
    ex = Exchange(str(tmp_path), "job2")
    parts = [None, None]

    def shard(j):
        parts[j] = run_candidate(*args, **opts, shard=(j, 2), exchange=ex)

    threads = [threading.Thread(target=shard, args=(j,)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(f for fs in fitted.values() for f in fs) == every
    merged = merge_shards(parts, *args[1:], **opts)
    assert sympy.srepr(merged.expr) == sympy.srepr(whole.expr) and merged.val_error == whole.val_error


def test_run_jobs_runs_a_sharded_candidate_as_its_shards_and_merges_them():
    """Through run_jobs with 2 workers the composite goes out as 2 shards (SHARDS, at most one per
    worker; seen by the workers) and comes back as one result equal to the sequential run's."""
    import joblib

    from nnlab.symbolic import parallel as par
    from nnlab.symbolic.search import SHARDS, Candidate

    X, y = _composite_case()
    syms = tuple(sympy.symbols("a b c"))
    opts = (("grid", 5), ("k", 3), ("steps", 10), ("lamb", 0.0), ("r2_threshold", 0.99), ("snap_tol", 1e-6))
    data = (X[:150], y[:150], X[150:], y[150:])
    lib = S.LIBRARY.subset(["x", "sin", "exp"])
    jobs = [par.CandidateJob(i, c, data, syms, lib, opts, 1e12)
            for i, c in enumerate([Candidate("raw", hidden=()), Candidate("composite", True, True)])]
    seq = par.run_jobs(jobs, 1)
    seen = []
    call = par._call

    def spy(pos, j, job):
        seen.append((pos, j, job.shard))
        return call(pos, j, job)

    par._call = spy
    try:
        with joblib.parallel_config(backend="threading"):
            got = par.run_jobs(jobs, 2)
    finally:
        par._call = call
    K = min(SHARDS["composite"], 2)
    assert sorted(s for p, _, s in seen if p == 1) == [(j, K) for j in range(K)]
    assert [j.shard for j in jobs[1].shards(8)] == [(j, SHARDS["composite"]) for j in range(SHARDS["composite"])]
    assert [j.shard for j in jobs[1].shards()] == [(j, SHARDS["composite"]) for j in range(SHARDS["composite"])]
    assert [(r.candidate, str(r.expr), r.val_error) for r in got] == [(r.candidate, str(r.expr), r.val_error)
                                                                     for r in seq]
    assert got[1].complete and got[1].partial is None
