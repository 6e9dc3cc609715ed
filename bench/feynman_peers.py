"""The three contenders of the Feynman benchmark, each ``fit(eq, X, y, time_limit) -> (sympy, detail)``.

Every method gets the same data, the same soft time limit and the same hard cap (enforced by the
runner in ``feynman.py``, which kills the worker process):

- ``ours``: ``nl.SymbolicRegressor(time_limit=T)``, default settings.
- ``gplearn`` 0.4.3: its whole documented function set (add, sub, mul, div, sqrt, log, abs, neg,
  inv, max, min, sin, cos, tan) plus ``exp`` made with ``gplearn.functions.make_function`` and
  protected for closure as gplearn's docs advise (the argument is clipped at 100, so
  ``exp(exp(x))`` cannot overflow); population 1000, its default tournament and parsimony;
  generations run one at a time (``warm_start``) until ``T`` CPU seconds have passed or the
  fitness reaches 1e-10 (at most 1,000).
- ``pykan`` 0.2.8 in float64 with its own documented pipeline (the "symbolic regression"
  tutorial): ``KAN([n, 5, 1], grid=5, k=3)``, ``fit(LBFGS, 50 steps, lamb=1e-3)``, ``prune()``,
  ``fit(50)``, ``refine(10)``, ``fit(50)``, ``auto_symbolic()`` with its full library,
  ``fit(50)``, ``symbolic_formula()`` rounded to 4 digits (``ex_round``). pykan has no time knob:
  it runs the whole pipeline within the hard cap. pykan prunes by absolute edge scale, so it is
  given ``y / RMS(y)`` and its formula is multiplied back by ``RMS(y)``.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

GP_MAX_GENERATIONS = 1000


def fit_ours(eq, X, y, time_limit):
    from nnlab.symbolic import SymbolicRegressor

    m = SymbolicRegressor(time_limit=time_limit, variables=eq["variables"]).fit(X, y)
    return m.formula_, str(m.result_.get("chosen", {}).get("candidate", "-"))


def _protected_exp(x):
    with np.errstate(over="ignore"):
        return np.exp(np.minimum(x, 100.0))


def fit_gplearn(eq, X, y, time_limit):
    import sympy
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor as GP

    exp = make_function(function=_protected_exp, name="exp", arity=1, wrap=False)
    fset = ("add", "sub", "mul", "div", "sqrt", "log", "abs", "neg", "inv", "max", "min", "sin", "cos", "tan", exp)
    gp = GP(population_size=1000, generations=1, function_set=fset, stopping_criteria=1e-10, warm_start=True,
            random_state=0, n_jobs=1, verbose=0)
    t0 = time.process_time()  # CPU seconds: the bench machine is shared
    gens = 0
    while True:
        gens += 1
        gp.set_params(generations=gens)
        gp.fit(X, y)
        if gp._program.raw_fitness_ <= 1e-10 or time.process_time() - t0 > time_limit or gens >= GP_MAX_GENERATIONS:
            break
    syms = [sympy.Symbol(v) for v in eq["variables"]]
    loc = {f"X{j}": s for j, s in enumerate(syms)}
    # gplearn's protected operators, read as the plain function on the data's domain
    loc.update(add=lambda a, b: a + b, sub=lambda a, b: a - b, mul=lambda a, b: a * b, div=lambda a, b: a / b,
               sqrt=lambda a: sympy.sqrt(sympy.Abs(a)), log=lambda a: sympy.log(sympy.Abs(a)), abs=sympy.Abs,
               neg=lambda a: -a, inv=lambda a: 1 / a, max=sympy.Max, min=sympy.Min, sin=sympy.sin, cos=sympy.cos,
               tan=sympy.tan, exp=sympy.exp)
    return sympy.sympify(str(gp._program), locals=loc), f"{gens} generations"


def fit_pykan(eq, X, y, time_limit):
    import sympy
    import torch
    from kan import KAN as PyKAN
    from kan.utils import ex_round

    torch.set_default_dtype(torch.float64)
    n = X.shape[1]
    Xt = torch.tensor(X, dtype=torch.float64)
    scale = float(np.sqrt(np.mean(y ** 2)))  # pykan prunes by absolute edge size: give it unit-RMS targets
    yt = torch.tensor(y[:, None] / scale, dtype=torch.float64)
    k = int(0.8 * len(y))
    ds = {"train_input": Xt[:k], "train_label": yt[:k], "test_input": Xt[k:], "test_label": yt[k:]}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # pykan's prune()/refine() log to ./model even with auto_save=False
        os.makedirs("model", exist_ok=True)
        try:
            model = PyKAN(width=[n, 5, 1], grid=5, k=3, seed=0, auto_save=False)
            model.fit(ds, opt="LBFGS", steps=50, lamb=0.001, log=10 ** 9)
            model = model.prune()
            model.fit(ds, opt="LBFGS", steps=50, log=10 ** 9)
            model = model.refine(10)
            model.fit(ds, opt="LBFGS", steps=50, log=10 ** 9)
            model.auto_symbolic(verbose=0)
            model.fit(ds, opt="LBFGS", steps=50, log=10 ** 9)
            expr = ex_round(model.symbolic_formula()[0][0], 4) * sympy.Float(scale)
        finally:
            os.chdir(cwd)
    syms = [sympy.Symbol(v) for v in eq["variables"]]
    xs = [sympy.Symbol(f"x_{j + 1}") for j in range(n)]
    return expr.subs(dict(zip(xs, syms))), "pykan"


FITTERS = {"ours": fit_ours, "gplearn": fit_gplearn, "pykan": fit_pykan}
