"""The decomposition's shards split the independent fits of a leaf (issue 12): tasks shared through the
exchange (exchange.share, Exchange.help), each computed once; the result is the one of one process."""
import dataclasses
import time

import numpy as np
import sympy
import torch

from nnlab.symbolic.dictionary import dictionary_tasks, fit_dictionary_transformed
from nnlab.symbolic.exchange import Exchange, share

torch.set_num_threads(1)


def _no_call():
    raise AssertionError("computed twice")


def test_without_an_exchange_every_task_is_computed_here_in_order():
    done = []
    tasks = [(f"t{i}", lambda i=i: done.append(i) or i * i) for i in range(4)]
    assert share(None, tasks) == [0, 1, 4, 9]
    assert done == [0, 1, 2, 3]


def test_a_task_another_job_computes_is_taken_while_this_one_computes_the_next(tmp_path):
    ex, other = Exchange(str(tmp_path), "job3"), Exchange(str(tmp_path), "job3")
    assert other.claim("t0")  # the other job started t0

    def t1():
        other._publish("t0", lambda: "t0 of the other job")  # it ends while this job computes t1
        return "t1"

    assert share(ex, [("t0", _no_call), ("t1", t1), ("t2", lambda: "t2")]) == ["t0 of the other job", "t1", "t2"]
    assert other.take("t1", _no_call) == "t1"  # published for the other job


def test_a_helper_computes_the_unclaimed_tasks_last_first_and_the_owner_takes_them(tmp_path):
    owner, helper = Exchange(str(tmp_path), "job3"), Exchange(str(tmp_path), "job3")
    assert owner.claim("t0")  # the owner is computing the first task
    order = []
    tasks = [(f"t{i}", lambda i=i: order.append(i) or 10 * i) for i in range(4)]
    assert helper.help(tasks) == 3
    assert order == [3, 2, 1]
    assert helper.help(tasks) == 0  # nothing left
    owner._publish("t0", lambda: 0)
    assert share(owner, [(n, _no_call) for n, _ in tasks]) == [0, 10, 20, 30]


def test_dictionary_tasks_give_the_transformed_fits_and_name_their_inputs():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (80, 2))
    y = np.sqrt(X[:, 0] ** 2 + 3 * X[:, 1])  # two terms in y²
    a, b = sympy.symbols("a b")
    tasks = dictionary_tasks(X, y, [a, b], tol=1e-9, max_terms=4)
    assert len(tasks) == 4 and len({n for n, _ in tasks}) == 4  # y, y², 1/y, 1/y² (y keeps one sign)
    got = [e for _, f in tasks for e in f()]
    assert [sympy.srepr(e) for e in got] == [sympy.srepr(e) for e in fit_dictionary_transformed(X, y, [a, b], tol=1e-9,
                                                                                              max_terms=4)]
    assert got and np.isclose(float(sympy.lambdify((a, b), got[0])(2.0, 1.0)), np.sqrt(7.0), rtol=1e-9)
    again = dictionary_tasks(X.copy(), y.copy(), [a, b], tol=1e-9, max_terms=4)
    assert [n for n, _ in again] == [n for n, _ in tasks]  # a pure function of its name
    assert not {n for n, _ in dictionary_tasks(X, y, [a, b], tol=1e-8, max_terms=4)} & {n for n, _ in tasks}
    assert dictionary_tasks(X, -y, [a, b])[0][0] != tasks[0][0]
    assert len(dictionary_tasks(X, y - 2.5, [a, b])) == 1  # y changes sign: y alone


def test_a_shard_helps_with_the_leaf_another_shard_fits_and_the_merge_is_the_law_of_one_process(tmp_path, monkeypatch):
    """Shard 0 has reached the first leaf (its claim); shard 1 defers it, fits the second and then
    computes every task of the first; shard 0 fits the first leaf without computing any of them. The
    merged law is the one of n_jobs=1 bit for bit."""
    import nnlab.symbolic.decompose_leaf as leaf
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import Candidate

    rng = np.random.default_rng(2)
    X = rng.uniform(1, 3, (200, 2))
    y = 1.5 * np.exp(0.7 * X[:, 0]) + np.sin(2 * X[:, 1])  # additive: two one-variable leaves
    data = (X[:150], y[:150], X[150:], y[150:])
    opts = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())
    job = CandidateJob(3, Candidate("decompose"), data, tuple(sympy.symbols("a b")), LIBRARY, opts,
                       time.time() + 3600)
    alone = job()
    assert alone.tree["split"] == "additive" and [c["split"] for c in alone.tree["children"]] == ["leaf", "leaf"]
    job = dataclasses.replace(job, cancel=str(tmp_path / "enough"))
    first, second = job.shards()
    claim = tmp_path / "job3.leaf0.claim"
    claim.touch()  # shard 0 is fitting the first leaf
    fits = []
    for fn in ("coarse_fits", "refined_fit"):  # the library fits of a one-variable leaf
        monkeypatch.setattr(leaf, fn, lambda *a, f=getattr(leaf, fn), **k: fits.append(f.__name__) or f(*a, **k))
    p2 = second()
    helped = len(fits)
    assert p2.partial["decomposition"].tree["children"][0].get("deferred") == 0
    assert fits.count("coarse_fits") == 6  # its own leaf's and the other leaf's, for y, 1/y and y²
    claim.unlink()  # (so that shard 0, run here after it, takes the first leaf as it did)
    p1 = first()
    assert len(fits) == helped  # every fit of the first leaf was taken from shard 1
    merged = p1 if getattr(p1, "joined", False) else job.merge([p1, p2])
    assert sympy.srepr(merged.expr) == sympy.srepr(alone.expr)
    assert (merged.val_error, merged.note, merged.tree) == (alone.val_error, alone.note, alone.tree)


def test_shards_that_join_together_split_the_completion_and_give_the_law_of_one_process(tmp_path, monkeypatch):
    """A join helped: the helping shard, run first here, makes every fit of the completion by exact rows
    (the known part's snaps, the last part's closed forms); the joining shard makes none of them itself
    and gives the law of n_jobs=1 bit for bit."""
    import nnlab.symbolic.dictionary as dictionary
    import nnlab.symbolic.exact_parts as exact_parts
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import Candidate

    rng = np.random.default_rng(3)
    X = rng.uniform(1, 3, (160, 3))
    y = X[:, 0] * (X[:, 1] ** 2 + X[:, 2] ** 2) / 2
    data = (X[:120], y[:120], X[120:], y[120:])
    opts = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())
    job = CandidateJob(3, Candidate("decompose"), data, tuple(sympy.symbols("a b c")), LIBRARY, opts,
                       time.time() + 3600)
    alone = job()
    assert alone.tree.get("completed by exact rows")  # the split's last part named by its rows
    parts = [shard() for shard in job.shards(2)]  # (no exchange: the shards deal the leaves by index)
    ex = Exchange(str(tmp_path), "job3")
    helped = job.merge(parts, ex, helping=True)
    assert helped.expr is None  # a helper's own result is not used
    made = []
    snap, fit_columns = exact_parts.snap, dictionary._fit_columns
    monkeypatch.setattr(exact_parts, "snap", lambda *a, **k: made.append("snap") or snap(*a, **k))
    monkeypatch.setattr(dictionary, "_fit_columns", lambda *a, **k: made.append("dictionary") or fit_columns(*a, **k))
    merged = job.merge(parts, ex)
    assert made == []
    assert sympy.srepr(merged.expr) == sympy.srepr(alone.expr)
    assert (merged.val_error, merged.note, merged.tree) == (alone.val_error, alone.note, alone.tree)


def test_a_shard_waits_for_the_other_shares_only_so_long(tmp_path):
    import threading

    from nnlab.symbolic.parallel import _shares
    from nnlab.symbolic.search import Candidate, CandidateResult

    ex = Exchange(str(tmp_path), "job3")
    mine = CandidateResult(Candidate("decompose"), partial={"share": 0})
    t0 = time.monotonic()
    assert _shares(ex, 0, 2, mine, wait=0.1) is None  # the other shard is not done: it joins
    assert time.monotonic() - t0 < 2
    other = CandidateResult(Candidate("decompose"), partial={"share": 1})
    late = threading.Timer(0.05, lambda: Exchange(str(tmp_path), "job3").post("part1", other))
    late.start()
    got = _shares(ex, 0, 2, mine, wait=30)
    late.join()
    assert [g.partial for g in got] == [{"share": 0}, {"share": 1}]


def test_trigonometric_rationals_through_an_exchange_are_the_same_and_made_once(tmp_path, monkeypatch):
    """The feature choices of each number of cosines are tasks: through an exchange the fits are the ones
    made without it, and a second job asking for them computes none."""
    import nnlab.symbolic.trig_rational as trig

    rng = np.random.default_rng(4)
    X = rng.uniform(0.2, 0.8, (60, 2))
    y = (1 - X[:, 0] ** 2) / (1 + X[:, 0] * np.cos(X[:, 1]))  # a conic: one cosine
    a, b = sympy.symbols("a b")
    alone = trig.fit_trig_rational(X, y, [a, b], tol=1e-9)
    assert alone
    shared = trig.fit_trig_rational(X, y, [a, b], tol=1e-9, exchange=Exchange(str(tmp_path), "job3"))
    assert [sympy.srepr(e) for e in shared] == [sympy.srepr(e) for e in alone]
    fits = []
    fit_forms = trig._fit_forms
    monkeypatch.setattr(trig, "_fit_forms", lambda *a, **k: fits.append(1) or fit_forms(*a, **k))
    again = trig.fit_trig_rational(X, y, [a, b], tol=1e-9, exchange=Exchange(str(tmp_path), "job3"))
    assert fits == [] and [sympy.srepr(e) for e in again] == [sympy.srepr(e) for e in alone]
