"""Symbolic regression at scale (issue 12): the front, pick, exports, several targets, n_jobs
(local processes and a Dask LocalCluster), warm start, live progress."""
import math

import numpy as np
import pytest
import sympy
import torch

import nnlab.symbolic as S
from nnlab.symbolic.polish import evaluate, relative_rmse

torch.set_num_threads(1)

SEARCH = ["raw", "logy", "loglog"]


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(1, 3, (n, 2))
    return X, X[:, 0] * X[:, 1] + np.sin(X[:, 0])  # not exact for any candidate: all of them run


def _est(**kw):
    base = dict(search=SEARCH, steps=10, grid=3, time_limit=60)
    base.update(kw)
    return S.SymbolicRegressor(**base)


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    return _est().fit(X, y)


def test_front_is_sorted_distinct_and_consistent_with_result(fitted):
    front = fitted.equations_
    assert len(front) >= 2
    cx = [r.complexity for r in front]
    assert cx == sorted(cx)
    assert len({str(r.formula) for r in front}) == len(front)
    X, _ = _data()
    syms = [sympy.Symbol(v) for v in fitted.variables_]
    for r in front:  # each row's numbers are those of the candidate that produced it
        assert r.val_error == r.result.val_error
        if r.index != fitted.best_index_:  # the chosen row holds the verdict's refit on every row
            same = np.allclose(evaluate(r.formula, syms, X), evaluate(r.result.expr, syms, X),
                               rtol=1e-9, atol=0, equal_nan=True)
            assert same, (r.formula, r.result.expr)
        assert r.candidate in {c["candidate"] for c in fitted.result_["candidates"]}
    # the chosen row is the search's formula, and result_ holds the same table
    assert front[fitted.best_index_].formula == fitted.formula_
    assert fitted.result_["best_index"] == fitted.best_index_
    assert [d["formula"] for d in fitted.result_["equations"]] == [str(r.formula) for r in front]
    # Pareto rows: none is beaten by a row at most as complex
    for r in front:
        beaten = any(o.complexity <= r.complexity and o.val_error < r.val_error for o in front if o is not r)
        assert r.pareto == (not beaten) or not math.isfinite(r.val_error)
    text = front.table()
    assert "candidate" in text and text.count("\n") == len(front) + 1
    csv_text = front.to_csv()
    assert csv_text.splitlines()[0].startswith("index,chosen,pareto,candidate,complexity")
    assert len(csv_text.splitlines()) == len(front) + 1


def test_pick_switches_the_formula_used_by_predict():
    X, y = _data()
    est = _est().fit(X, y)
    Xn = np.random.default_rng(5).uniform(1, 3, (40, 2))
    syms = sympy.symbols("x0 x1")
    for i, row in enumerate(est.equations_):
        est.pick(i)
        assert est.formula_ == row.formula and est.equations_.chosen == i
        np.testing.assert_allclose(est.predict(Xn), evaluate(row.formula, syms, Xn), rtol=1e-12)
    simplest = est.equations_[0].complexity
    est.pick(complexity=simplest)
    assert est.formula_ == est.equations_[0].formula
    big = max(r.complexity for r in est.equations_)
    est.pick(complexity=big)
    assert est.equations_[est.equations_.chosen].val_error == min(r.val_error for r in est.equations_)
    with pytest.raises(ValueError, match="no formula has complexity"):
        est.pick(complexity=simplest - 1)
    with pytest.raises(ValueError, match="no row 99"):
        est.pick(99)
    with pytest.raises(ValueError, match="exactly one"):
        est.pick()


def test_exports_equal_predict_on_fresh_points(fitted):
    Xn = np.random.default_rng(7).uniform(1, 3, (64, 2))
    for i in range(len(fitted.equations_)):
        fitted.pick(i)
        p = fitted.predict(Xn)
        np.testing.assert_allclose(fitted.to_numpy()(Xn), p, rtol=1e-12, atol=1e-12)
        mod = fitted.to_torch()
        assert isinstance(mod, torch.nn.Module)
        out = mod(torch.from_numpy(Xn))
        np.testing.assert_allclose(out.detach().numpy(), p, rtol=1e-10, atol=1e-12)
        ns: dict = {}
        exec(compile(fitted.to_code("f"), "<to_code>", "exec"), ns)
        np.testing.assert_allclose(ns["f"](Xn), p, rtol=1e-12, atol=1e-12)
        assert fitted.latex_ == sympy.latex(fitted.formula_)
    fitted.pick(fitted.best_index_)


def test_torch_export_constants_are_parameters_and_trainable(fitted):
    mod = fitted.to_torch()
    assert mod.theta.dtype == torch.float64 and mod.theta.numel() == len(fitted.formula_.atoms(sympy.Float))
    # a formula with float constants: they are the parameters, and gradients reach them
    e = sympy.Float(1.5) * sympy.sin(sympy.Float(0.5) * sympy.Symbol("a")) + sympy.Rational(1, 3)
    from nnlab.symbolic.export import TorchFormula

    m = TorchFormula([e], ["a"])
    assert sorted(m.theta.tolist()) == [0.5, 1.5]
    x = torch.linspace(0.1, 1, 9, dtype=torch.float64)[:, None]
    m(x).sum().backward()
    assert m.theta.grad is not None and torch.all(m.theta.grad != 0)
    np.testing.assert_allclose(m(x).detach().numpy(), 1.5 * np.sin(0.5 * x.numpy()[:, 0]) + 1 / 3, rtol=1e-14)


def test_export_refuses_a_formula_with_spline_edges():
    from nnlab.symbolic.export import NumpyFormula, to_code

    e = sympy.Function("phi_0_0_0")(sympy.Symbol("x")) + 1
    for make in (lambda: NumpyFormula([e], ["x"]), lambda: to_code([e], ["x"])):
        with pytest.raises(ValueError, match="spline edges"):
            make()


def test_to_code_renames_unusable_variable_names():
    from nnlab.symbolic.export import to_code

    lam, cls = sympy.Symbol("lambda"), sympy.Symbol("my var")
    code = to_code([lam * sympy.sqrt(cls) + sympy.pi], ["lambda", "my var"], name="g")
    ns: dict = {}
    exec(code, ns)
    X = np.array([[1.0, 4.0], [2.0, 9.0]])
    np.testing.assert_allclose(ns["g"](X), X[:, 0] * np.sqrt(X[:, 1]) + np.pi)
    assert "import numpy" in code and "torch" not in code and "sympy" not in code


def test_several_targets():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (150, 2))
    Y = np.column_stack([X[:, 0] * X[:, 1], 2 * X[:, 0] / X[:, 1] ** 2])
    est = S.SymbolicRegressor(search=["loglog"], steps=30, variables=["a", "b"]).fit(X, Y)
    a, b = sympy.symbols("a b")
    assert isinstance(est.formula_, list) and len(est.formula_) == 2
    assert sympy.simplify(est.formula_[0] - a * b) == 0
    assert sympy.simplify(est.formula_[1] - 2 * a / b ** 2) == 0
    Xn = rng.uniform(1, 3, (30, 2))
    Yn = np.column_stack([Xn[:, 0] * Xn[:, 1], 2 * Xn[:, 0] / Xn[:, 1] ** 2])
    assert est.predict(Xn).shape == (30, 2)
    np.testing.assert_allclose(est.predict(Xn), Yn, rtol=1e-10)
    assert len(est.equations_) == 2 and len(est.estimators_) == 2
    np.testing.assert_allclose(est.to_numpy()(Xn), Yn, rtol=1e-10)
    np.testing.assert_allclose(est.to_torch()(torch.from_numpy(Xn)).detach().numpy(), Yn, rtol=1e-10)
    ns: dict = {}
    exec(est.to_code(), ns)
    np.testing.assert_allclose(ns["formula"](Xn), Yn, rtol=1e-10)
    assert est.score(Xn, Yn) > 1 - 1e-12
    with pytest.raises(ValueError, match="say which with target"):
        est.pick(0)
    est.pick(0, target=1)
    assert est.formula_[1] == est.equations_[1][0].formula


@pytest.mark.parametrize("n_jobs,bad", [(0, True), (-1, False), (2, False), (1.5, True), (None, False)])
def test_n_jobs_is_checked(n_jobs, bad):
    X, y = _data(40)
    est = _est(search=["raw"], steps=2, n_jobs=n_jobs)
    if bad:
        with pytest.raises(ValueError, match="n_jobs must be a nonzero int"):
            est.fit(X, y)


def _keys(est):
    return [(r.candidate, str(r.expr), r.val_error, r.train_error) for r in est.candidates_]


def _front(est):
    """The whole front, bit for bit: every row's formula, errors and flags, and the chosen row."""
    rows = [(r.candidate, r.complexity, str(r.formula), r.val_error, r.train_error, r.closed, r.pareto)
            for r in est.equations_]
    return rows, est.best_index_, str(est.formula_)


def _stable_data():
    X, _ = _data()
    return X, X[:, 0] + X[:, 1] ** 2


# deep_raw ends in an inexact formula with degenerate constants, c·(a − b·x)² terms: the case whose
# polish used to differ from run to run; raw (exact) comes after it and ends the search
INEXACT = ["deep_raw", "raw"]
LIB = S.LIBRARY.subset(["0", "x", "x^2", "sqrt", "log", "exp"])


def _inexact_est(**kw):
    # a time limit that never binds: worker start-up on a loaded machine must not skip candidates
    return _est(search=INEXACT, steps=6, library=LIB, time_limit=3600, **kw)


def test_polish_is_a_pure_function_of_its_inputs():
    """scipy 1.17's MINPACK ``lm`` reads work memory it never wrote (the result of a degenerate fit
    depended on what the heap held before); polish must give the same bits whatever ran before it."""
    import importlib

    polish = importlib.import_module("nnlab.symbolic.polish").polish
    x0, x1 = sympy.symbols("x0 x1")
    expr = sympy.sympify(
        "0.261602955426481*x0 + 0.801672586297899*(0.81873127061309 - 1.02417922216867*x1)**2"
        " - 1.46127248402912*sqrt(3.03600342862666 - 1.00337459754627*x1)"
        " - 2.38578085310238*sqrt(3.44882501323305 - 1.02077763979942*x1)"
        " + 0.0891956651008984*(-1.02979938768218*x0 - 2.30781464242482)**2"
        " - 0.00147719309983346*exp(1.80416150471145*x0) + 6.86373229317752")
    X = np.random.default_rng(0).uniform(1, 3, (90, 2))
    y = X[:, 0] + X[:, 1] ** 2
    outs = set()
    for fill in [0.0, np.nan, 1e300, -3.7, 1e-300]:
        junk = [np.full(k, fill) for k in range(1, 400)] + [np.full((90, k), fill) for k in range(1, 20)]
        del junk  # freed blocks with these bytes are what the next allocations get
        e, err = polish(expr, [x0, x1], X, y, max_nfev=20)
        outs.add((sympy.srepr(e), err))
    assert len(outs) == 1


def test_n_jobs_2_gives_the_same_search_as_n_jobs_1():
    X, y = _stable_data()
    par = _inexact_est(n_jobs=2).fit(X, y)  # loky workers: other processes, other hash seeds
    seq = _inexact_est(n_jobs=1).fit(X, y)
    again = _inexact_est(n_jobs=1).fit(X, y)  # the same process after other fits
    assert [r.candidate.name for r in seq.candidates_] == INEXACT
    assert not seq.candidates_[0].complete  # an inexact deep candidate is among the compared ones
    assert _keys(par) == _keys(seq) == _keys(again)
    assert _front(par) == _front(seq) == _front(again)


def test_parallel_search_stops_where_the_sequential_one_does():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (200, 2))
    y = 0.5 * X[:, 0] * X[:, 1] ** 2  # exact in log-log space: the first candidate ends the search
    seq = S.SymbolicRegressor(steps=30, n_jobs=1, time_limit=3600).fit(X, y)
    par = S.SymbolicRegressor(steps=30, n_jobs=2, time_limit=3600).fit(X, y)
    assert _keys(par) == _keys(seq) and len(seq.candidates_) == 1
    assert seq.result_["not_run"] and seq.result_["not_run"] == par.result_["not_run"]


def test_dask_local_cluster_gives_the_same_search():
    from distributed import LocalCluster

    from nnlab.symbolic.parallel import dask_client

    X, y = _stable_data()
    seq = _inexact_est(n_jobs=1).fit(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        # the route of `nnlab discover --scheduler ADDRESS`: a Client plus joblib.parallel_config(backend="dask")
        with dask_client(cluster.scheduler_address) as client:
            par = _inexact_est().fit(X, y)  # n_jobs=None: every Dask worker
            ran_on = client.run(lambda: 1)  # the cluster really has 2 workers
            moves = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    assert len(ran_on) == 2 and moves > 0  # tasks went through the scheduler (client.run makes none)
    assert _keys(par) == _keys(seq) and len(seq.candidates_) == 2
    assert _front(par) == _front(seq)
    assert str(par.formula_) == str(seq.formula_) == "x0 + x1**2"


def test_unreachable_scheduler_is_a_clear_error_within_seconds():
    import time

    from nnlab.symbolic.parallel import dask_client

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with dask_client("tcp://127.0.0.1:9", timeout=2):
            pass
    assert time.monotonic() - t0 < 15


def test_warm_start_continues_from_the_candidates_found():
    X, y = _data()
    est = _est(warm_start=True, time_limit=1e-9).fit(X, y)  # only the first candidate runs
    assert len(est.candidates_) == 1 and est.result_["skipped_by_time_limit"] == ["logy", "loglog"]
    first = est.candidates_[0]
    X2, y2 = _data(200, seed=3)  # more data
    est.set_params(time_limit=60)
    est.fit(X2, y2)
    assert [r.candidate.name for r in est.candidates_] == SEARCH
    again = est.candidates_[0]
    assert again.model is first.model  # not retrained: the same KAN, its formula re-polished on the new rows
    # its errors are measured again on the new held-out rows (same split rule as fit)
    va = np.random.default_rng(0).permutation(200)[:50]
    np.testing.assert_allclose(again.val_error, relative_rmse(evaluate(again.expr, sympy.symbols("x0 x1"), X2[va]),
                                                                y2[va]), rtol=1e-12)
    cold = _est(warm_start=False).fit(X2, y2)
    assert [r.candidate.name for r in cold.candidates_] == SEARCH
    assert cold.candidates_[0].model is not first.model


def test_progress_lines_name_candidates_and_what_cannot_apply(capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (80, 1))
    y = X[:, 0] ** 3 + 0.5 * X[:, 0]  # changes sign: log-space candidates cannot apply
    est = _est(search=["raw", "logy", "loglog"], steps=4)
    est.fit(X, y, verbose=True)
    cap = capsys.readouterr()
    assert cap.out == ""  # progress never goes to stdout
    assert "not tried: logy (log-y space): the target changes sign" in cap.err
    assert "not tried: loglog (log-log space)" in cap.err
    assert cap.err.count("raw            done in") == 1 and "best so far" in cap.err
    assert est.result_["not_applicable"][0].startswith("logy")
    est.fit(X, y, verbose="auto")  # captured stderr is no terminal: silent
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="verbose must be"):
        est.fit(X, y, verbose="loud")


def test_docs_front_and_exports_block_runs(capsys):
    """The front-and-exports example of docs/symbolic.md, executed (its asserts compare the exports
    with predict on fresh points)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "symbolic.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "equations_" in b)
    ns: dict = {}
    exec(compile(block, "docs/symbolic.md[front]", "exec"), ns)
    est = ns["est"]
    assert str(est.formula_) == "k*x**2/2" and len(est.equations_) == 2
    assert "loglog" in capsys.readouterr().out


def test_run_jobs_keeps_the_sequential_prefix_in_any_completion_order():
    """run_jobs' bookkeeping with a thread pool (fast): jobs finish in any order, the kept results are
    the sequential loop's (up to the first exact one), whatever the jobs' own index numbers."""
    import dataclasses
    import time as _time

    import joblib

    from nnlab.symbolic.parallel import run_jobs
    from nnlab.symbolic.search import Candidate, CandidateResult

    @dataclasses.dataclass(frozen=True)
    class Fake:
        index: int
        candidate: Candidate
        exact: bool
        cancel: str | None = None

        def __call__(self):
            _time.sleep(0.02 * (5 - self.index % 5))  # later jobs finish first
            return CandidateResult(self.candidate, expr=sympy.Integer(self.index), complete=True,
                                   val_error=0.0 if self.exact else 0.5)

    jobs = [Fake(i + 1, Candidate(f"c{i}"), exact=(i == 2)) for i in range(6)]  # indices 1..6, as in a warm start
    stop = lambda r: r.complete and r.val_error < 1e-10  # noqa: E731
    seq = run_jobs(jobs, 1, stop=stop)
    with joblib.parallel_config(backend="threading"):
        par = run_jobs(jobs, 3, stop=stop)
    assert [r.candidate.name for r in par] == [r.candidate.name for r in seq] == ["c0", "c1", "c2"]
    none_exact = [dataclasses.replace(j, exact=False) for j in jobs]
    with joblib.parallel_config(backend="threading"):
        assert len(run_jobs(none_exact, 2, stop=stop)) == 6


def test_parallel_dispatch_is_cheap_first_then_longest_first():
    """Cheap candidates go out in their order (they may end the search), then the expensive ones by
    decreasing expected cost, so no long job starts last; the order never changes what is kept."""
    from nnlab.symbolic.parallel import CandidateJob, dispatch_order, expected_cost
    from nnlab.symbolic.search import Candidate

    X = np.zeros((10, 3))
    cands = [Candidate("monomial"), Candidate("loglog"), Candidate("raw"), Candidate("composite"),
             Candidate("decompose"), Candidate("deep_raw", hidden=(4,)), Candidate("deep_loglog", hidden=(4,)),
             Candidate("deep_raw", hidden=(4,), seed=1), Candidate("deep_wide", hidden=(8,))]
    jobs = [CandidateJob(i, c, (X, X[:, 0], X, X[:, 0]), (), None, (), 0.0) for i, c in enumerate(cands)]
    assert expected_cost(cands[1], 3) == 3 and expected_cost(cands[5], 3) == 3 * 4 + 4
    assert dispatch_order(jobs) == [0, 1, 2, 3, 8, 4, 5, 6, 7]
    for n in range(1, 10):  # the default search (cheapest first already) keeps its candidate order
        Xn = np.random.default_rng(n).uniform(1, 2, (30, n))
        default = S.SymbolicRegressor()._candidates(Xn, Xn.sum(axis=1), [f"x{j}" for j in range(n)])
        jobs = [CandidateJob(i, c, (Xn, None, None, None), (), None, (), 0.0) for i, c in enumerate(default)]
        assert dispatch_order(jobs) == list(range(len(default))), n


def test_a_job_no_longer_needed_stops_within_milliseconds(tmp_path):
    """Once the cancel file exists, a running job ends at its next Python bytecode, even in code that
    makes no deadline check; a job that ends first leaves no pending exception behind."""
    import threading
    import time as _time

    from nnlab.symbolic.parallel import _Cancelled, _Watch

    cancel = tmp_path / "enough"
    threading.Timer(0.05, cancel.touch).start()
    t0 = _time.monotonic()
    with pytest.raises(_Cancelled):
        with _Watch(str(cancel)):
            while _time.monotonic() - t0 < 30:  # pure Python work with no deadline check
                sum(range(100))
    assert _time.monotonic() - t0 < 5
    with _Watch(str(tmp_path / "never")):  # finishes first: nothing fires, later code runs on
        total = sum(range(1000))
    for _ in range(10000):
        total += 1
    assert total == 499500 + 10000


def test_the_cancel_watcher_sleeps_until_a_file_appears(tmp_path, monkeypatch):
    """Where inotify is available the watcher does not poll (each look takes the interpreter lock from
    the job: 3-10 % of its time at 20 ms): it looks once, then again only when a file appears in the
    folder, and it still stops the job at once; without inotify it looks every ``every`` seconds."""
    import threading
    import time as _time

    from nnlab.symbolic import filewatch
    from nnlab.symbolic.parallel import _Cancelled, _Watch

    looks = []
    due = _Watch.due
    monkeypatch.setattr(_Watch, "due", lambda self: looks.append(1) or due(self))
    cancel = tmp_path / "enough"
    with _Watch(str(cancel)) as w:
        _time.sleep(0.2)
    if w.notify.ready:  # Linux: one look at the start, none while nothing happens
        assert len(looks) == 1
        threading.Timer(0.05, (tmp_path / "other").touch).start()  # another file: one more look
        threading.Timer(0.1, cancel.touch).start()
        t0 = _time.monotonic()
        with pytest.raises(_Cancelled):
            with _Watch(str(cancel)):
                while _time.monotonic() - t0 < 30:
                    sum(range(100))
        assert _time.monotonic() - t0 < 5 and 3 <= len(looks) <= 4  # (the two files may wake it once)
        cancel.unlink()
    looks.clear()
    monkeypatch.setattr(filewatch, "_libc", lambda: None)  # no inotify: the watcher polls
    with _Watch(str(cancel), every=0.02) as w:
        _time.sleep(0.2)
    assert not w.notify.ready and len(looks) >= 3


def test_a_job_hands_its_candidate_a_plain_float_deadline(monkeypatch):
    """Candidates do arithmetic on the deadline (the decomposition gives its tail ``deadline + 10``):
    it must be a float, in this process as in a worker (a wrapper object once made decompose fail)."""
    import importlib

    from nnlab.symbolic.parallel import CandidateJob
    from nnlab.symbolic.search import Candidate, CandidateResult

    par = importlib.import_module("nnlab.symbolic.parallel")
    seen = []

    def fake(cand, *a, deadline, **k):
        seen.append(deadline + 10 > deadline)
        return CandidateResult(cand, note="ran")

    monkeypatch.setattr(par, "run_candidate", fake)
    X = np.ones((4, 1))
    job = CandidateJob(0, Candidate("decompose"), (X, X[:, 0], X, X[:, 0]), (), None, (), 1e12)
    assert job().note == "ran" and seen == [True]
    cancel_job = CandidateJob(1, Candidate("decompose"), job.data, (), None, (), 1e12, cancel="/nonexistent/x")
    assert cancel_job().note == "ran" and seen == [True, True]


def test_a_cancelled_job_never_stops_inside_an_import(tmp_path, monkeypatch):
    """The cancel exception waits until an import ends: a module cut short would stay half-built in
    sys.modules and break every later job of that worker (it happened with triton.language)."""
    import sys
    import threading
    import time as _time

    from nnlab.symbolic.parallel import _Cancelled, _Watch

    (tmp_path / "slow_mod_nnlab.py").write_text(
        "import time\nt0 = time.monotonic()\nwhile time.monotonic() - t0 < 0.4:\n    sum(range(100))\nDONE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cancel = tmp_path / "enough"
    threading.Timer(0.05, cancel.touch).start()
    with pytest.raises(_Cancelled):
        with _Watch(str(cancel)):
            import slow_mod_nnlab  # noqa: F401  (takes 0.4 s; the cancel file appears after 0.05 s)
            t0 = _time.monotonic()
            while _time.monotonic() - t0 < 30:
                sum(range(100))
    assert sys.modules["slow_mod_nnlab"].DONE
    sys.modules.pop("slow_mod_nnlab")


def test_a_closed_form_that_ends_the_search_needs_no_worker(monkeypatch):
    """With n_jobs=2 the leading jobs cheaper than a worker's round trip (the monomial's least squares)
    run in this process first; when one is exact no job goes to a worker at all, and when none is,
    the rest go to the workers and the kept prefix is the sequential one."""
    import joblib

    from nnlab.symbolic import parallel as par

    handed = []
    call = par._call

    def spy(pos, j, job):
        handed.append(job.candidate.name)
        return call(pos, j, job)

    monkeypatch.setattr(par, "_call", spy)
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (200, 2))
    y = 0.5 * X[:, 0] * X[:, 1] ** 2
    with joblib.parallel_config(backend="threading"):
        est = S.SymbolicRegressor(steps=30, n_jobs=2, time_limit=3600).fit(X, y)
    assert [r.candidate.name for r in est.candidates_] == ["monomial"] and handed == []
    y = X[:, 0] + X[:, 1] ** 2  # no monomial: the others go to the workers
    seq = S.SymbolicRegressor(steps=30, n_jobs=1, time_limit=3600, search=["monomial", "rational", "raw"]).fit(X, y)
    with joblib.parallel_config(backend="threading"):
        got = S.SymbolicRegressor(steps=30, n_jobs=2, time_limit=3600, search=["monomial", "rational", "raw"]).fit(X, y)
    assert "monomial" not in handed and handed
    assert _keys(got) == _keys(seq) and _front(got) == _front(seq)


def test_jobs_undo_a_dask_nannys_tight_malloc_settings_while_they_run(monkeypatch):
    """A Dask worker starts with MALLOC_TRIM_THRESHOLD_=65536 (glibc then maps every array above 128 KiB
    anew): a job runs with glibc's usual room and gives the process its settings back afterwards; a
    process without the variable is left alone."""
    from nnlab.symbolic import parallel as par

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(par, "_glibc", lambda: FakeLibc())
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with par._roomy_malloc():
        pass
    assert calls == []
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with pytest.raises(KeyError):  # restored even when the job raises
        with par._roomy_malloc():
            assert sorted(calls) == [(-3, 32 * 2 ** 20), (-1, 128 * 2 ** 20)]
            raise KeyError("job failed")
    assert calls[2:] == [(-1, 65536), (-3, 128 * 1024)]


def test_jobs_pause_a_dask_workers_profiler_while_they_run(monkeypatch):
    """On a Dask worker the statistical profiler's callbacks are stopped (through the worker's loop) for
    the job and started again after it, also when the job raises; a stopped one stays stopped, and
    nothing happens off a worker."""
    import nnlab.symbolic.parallel as par

    class Callback:
        def __init__(self, running):
            self.running = running

        def is_running(self):
            return self.running

        def stop(self):
            self.running = False

        def start(self):
            self.running = True

    class Loop:
        def add_callback(self, fn):
            fn()

    class Worker:
        loop = Loop()
        periodic_callbacks = {"profile": Callback(True), "profile-cycle": Callback(True),
                              "heartbeat": Callback(True), "memory": Callback(False)}

    worker = Worker()
    monkeypatch.setattr(par, "_dask_worker", lambda: worker)
    cbs = worker.periodic_callbacks
    with pytest.raises(RuntimeError):
        with par._quiet_profiler():
            assert not cbs["profile"].running and not cbs["profile-cycle"].running
            assert cbs["heartbeat"].running  # the worker's other duties go on
            raise RuntimeError("the job failed")
    assert cbs["profile"].running and cbs["profile-cycle"].running and not cbs["memory"].running
    cbs["profile"].running = False  # paused by the user: left so
    with par._quiet_profiler():
        pass
    assert not cbs["profile"].running and cbs["profile-cycle"].running
    monkeypatch.setattr(par, "_dask_worker", lambda: None)
    with par._quiet_profiler():
        pass


def test_a_cancel_file_whose_folder_is_not_here_is_not_watched(tmp_path):
    """On a cluster without the search's file system the cancel file's folder does not exist on the
    worker: nothing can appear there, so no thread watches it (a polling one would cost the job)."""
    import threading

    from nnlab.symbolic.parallel import _Watch

    before = threading.active_count()
    with _Watch(str(tmp_path / "gone" / "enough")) as w:
        assert w.cancel is None and threading.active_count() == before
    with _Watch(str(tmp_path / "enough")) as w:
        assert w.cancel is not None and threading.active_count() == before + 1
