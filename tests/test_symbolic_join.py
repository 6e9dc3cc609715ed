"""The shards of one candidate join on a worker (issue 12): the last shard to end publishes nothing
more, takes the others' shares through the exchange and joins them itself; the result is the one of
``n_jobs=1`` bit for bit, and the search takes it without a merge of its own."""
import dataclasses
import time

import numpy as np
import sympy
import torch

from nnlab.symbolic.exchange import Exchange
from nnlab.symbolic.library import LIBRARY
from nnlab.symbolic.parallel import CandidateJob, run_jobs
from nnlab.symbolic.search import SHARDS, Candidate

torch.set_num_threads(1)

OPTS = tuple(dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6).items())


def _composite_job():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(1, 2, 200), rng.uniform(0.5, 1.5, 200), rng.uniform(1, 3, 200)])
    y = X[:, 0] * np.sin(X[:, 1] / X[:, 2])
    data = (X[:150], y[:150], X[150:], y[150:])
    return CandidateJob(4, Candidate("composite", True, True), data, tuple(sympy.symbols("a b c")),
                        LIBRARY.subset(["x", "sin", "exp"]), OPTS, time.time() + 3600)


def _decompose_job():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 5, (160, 3))
    y = np.sin(X[:, 0]) * X[:, 2] + X[:, 1] ** 2  # a sum, then a product: three leaves, none of exact rows
    data = (X[:120], y[:120], X[120:], y[120:])
    return CandidateJob(3, Candidate("decompose"), data, tuple(sympy.symbols("a b c")), LIBRARY, OPTS,
                        time.time() + 3600)


def _key(r):
    return sympy.srepr(r.expr), r.val_error, r.train_error, r.note, r.complexity, r.tree


def test_exchange_post_peek_claim(tmp_path):
    a, b = Exchange(str(tmp_path), "job1"), Exchange(str(tmp_path), "job1")
    assert a.peek("part0") is None
    assert a.post("part0", {"x": [1, 2]}) and b.peek("part0") == {"x": [1, 2]}
    assert a.post("f", lambda v: v + 1) and b.peek("f")(1) == 2  # a lambda travels (cloudpickle)
    assert a.claim("join") and not b.claim("join")  # exactly one side joins
    nowhere = Exchange(str(tmp_path / "no-folder"), "job1")
    assert not nowhere.post("part0", 1) and nowhere.peek("part0") is None and not nowhere.claim("join")


def _last_shard_joins(job, tmp_path):
    alone = job()
    shards = dataclasses.replace(job, cancel=str(tmp_path / "enough")).shards()
    K = SHARDS[job.candidate.name]
    assert [s.shard for s in shards] == [(j, K) for j in range(K)]
    order = list(range(K))[::-1]  # the last shard first, shard 0 ends last
    got = {j: shards[j]() for j in order}
    for j in order[:-1]:
        assert got[j].partial is not None and not got[j].joined and got[j].expr is None
    last = got[order[-1]]
    assert last.joined and last.partial is None and last.expr is not None
    assert _key(last) == _key(alone)
    # the search's own merge of the shares gives the same law (the route where nothing is shared)
    merged = job.merge([shards[j]() if j == order[-1] else got[j] for j in range(K)])
    assert _key(merged) == _key(alone)


def test_composite_shards_join_on_the_last_worker_into_the_law_of_one_process(tmp_path):
    _last_shard_joins(_composite_job(), tmp_path)


def test_decomposition_shards_join_on_the_last_worker_into_the_law_of_one_process(tmp_path):
    _last_shard_joins(_decompose_job(), tmp_path)


def test_decomposition_shards_share_the_leaves_by_who_reaches_them_first(tmp_path):
    """With a shared folder a shard fits the leaves no other shard has claimed yet: run one after
    the other, the first fits every leaf and the second none (by index each would fit half)."""
    job = _decompose_job()
    alone = job()
    one, zero = dataclasses.replace(job, cancel=str(tmp_path / "enough")).shards()[::-1]
    p1 = one()
    fits = p1.partial["decomposition"].parts
    assert len(fits) >= 2 and all(f is not None for f in fits.values())  # every leaf, not every other one
    joined = zero()
    assert joined.joined and _key(joined) == _key(alone)


def test_shards_without_a_shared_folder_leave_the_join_to_the_search(tmp_path):
    # the cancel file's folder does not exist, so the shards share nothing through it
    job = dataclasses.replace(_composite_job(), cancel=str(tmp_path / "no-folder" / "enough"))
    parts = [s() for s in job.shards()]
    assert all(p.partial is not None and not p.joined for p in parts)
    assert _key(job.merge(parts)) == _key(_composite_job()())


def test_run_jobs_takes_the_joined_result_of_a_worker(monkeypatch):
    """Through run_jobs (2 loky processes) a sharded candidate comes back joined by a worker: the
    search's process merges nothing, and the results are those of n_jobs=1."""
    jobs = [dataclasses.replace(_composite_job(), index=0, candidate=Candidate("raw")),
            dataclasses.replace(_composite_job(), index=1)]
    seq = run_jobs(jobs, 1)
    merged_here = []
    merge = CandidateJob.merge
    monkeypatch.setattr(CandidateJob, "merge", lambda self, parts: merged_here.append(1) or merge(self, parts))
    par = run_jobs(jobs, 2)
    assert [_key(r) for r in par] == [_key(r) for r in seq]
    assert par[1].joined and not merged_here
