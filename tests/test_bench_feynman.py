"""The Feynman benchmark's pure helpers (bench/feynman_classes.py): failure classes read from the
truth's sympy tree, SRBench's noise protocol and the exactness test under noise."""
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from feynman_classes import add_noise, failure_class, failure_tags, parse_truth, symbolically_equal  # noqa: E402

# (formula, variables, ranges, primary class, all tags): one row per class, plus the edge cases
CASES = [
    ("q1*q2/(4*pi*epsilon*r**2)", "q1 q2 epsilon r", "1,5 1,5 1,5 1,5", "monomial", ["monomial"]),
    ("sqrt(gamma*pr/rho)", "gamma pr rho", "1,5 1,5 1,5", "monomial", ["monomial"]),
    ("-m*q**4/(8*epsilon**2*h**2*n**2)", "m q epsilon h n", "1,5 1,5 1,5 1,5 1,5", "monomial", ["monomial"]),
    ("n_0*exp(-m*g*x/(kb*T))", "n_0 m g x kb T", "1,5 1,5 1,5 1,5 1,5 1,5", "fn_of_monomial", ["fn_of_monomial"]),
    ("r*F*sin(theta)", "r F theta", "1,5 1,5 0,5", "signed", ["signed", "fn_of_monomial"]),
    ("r*F*sin(theta)", "r F theta", "1,5 1,5 0.1,3", "fn_of_monomial", ["fn_of_monomial"]),  # no sign change
    ("kappa*(T2-T1)*A/d", "kappa T1 T2 A d", "1,5 1,5 1,5 1,5 1,5", "signed", ["signed", "sum_inside"]),
    ("(m1*r1+m2*r2)/(m1+m2)", "m1 m2 r1 r2", "1,5 1,5 1,5 1,5", "sum_inside", ["sum_inside"]),
    ("x1*y1+x2*y2", "x1 x2 y1 y2", "1,5 1,5 1,5 1,5", "sum", ["sum"]),
    ("asin(n*sin(theta2))", "n theta2", "0,1 1,3", "deep", ["deep"]),
    ("sqrt((x2-x1)**2+(y2-y1)**2)", "x1 x2 y1 y2", "1,5 1,5 1,5 1,5", "deep", ["deep", "sum_inside"]),
]


def _rng(s):
    return [tuple(float(v) for v in p.split(",")) for p in s.split()]


@pytest.mark.parametrize("formula, names, ranges, primary, tags", CASES)
def test_failure_class_reads_the_tree(formula, names, ranges, primary, tags):
    assert failure_class(formula, names.split(), _rng(ranges)) == primary
    assert failure_tags(formula, names.split(), _rng(ranges)) == tags


def test_every_equation_file_loads_and_gets_a_class():
    from feynman import PUBLIC, UNSEEN, load_equations

    files = [UNSEEN] + ([PUBLIC] if PUBLIC.is_file() else [])  # public.csv lives in shared/, outside the repo
    for p in files:
        eqs = load_equations(p)
        assert len({e["id"] for e in eqs}) == len(eqs), f"{p}: duplicate ids"
        for e in eqs:
            assert failure_tags(e["formula"], e["variables"], e["ranges"]), e["id"]
    unseen = {e["id"] for e in load_equations(UNSEEN)}
    if PUBLIC.is_file():  # the unseen set must not overlap the public one
        assert not unseen & {e["id"] for e in load_equations(PUBLIC)}


def test_noise_has_the_srbench_scale():
    y = np.random.default_rng(0).uniform(1, 3, 200_000)
    rms = np.sqrt(np.mean(y ** 2))
    for gamma in (1e-3, 1e-2, 1e-1):
        eps = add_noise(y, gamma) - y
        assert abs(eps.std() / (gamma * rms) - 1) < 0.01
        assert abs(eps.mean()) < 5 * gamma * rms / np.sqrt(len(y))
    assert np.array_equal(add_noise(y, 0.0), y)
    assert np.array_equal(add_noise(y, 1e-2, seed=3), add_noise(y, 1e-2, seed=3))  # reproducible
    with pytest.raises(ValueError, match="gamma"):
        add_noise(y, -0.1)


def test_exact_under_noise_means_symbolic_equality():
    truth, (m, v, c) = parse_truth("m*v/sqrt(1-v**2/c**2)", ["m", "v", "c"])
    X = np.random.default_rng(1).uniform([1, 1, 3], [5, 2, 10], (1000, 3))
    assert symbolically_equal(c * m * v / sympy.sqrt(c ** 2 - v ** 2), truth, (m, v, c), X)
    # close but not snapped: a float constant 1 + 1e-9 is not the law
    assert not symbolically_equal(sympy.Float(1 + 1e-9) * m * v / sympy.sqrt(1 - v ** 2 / c ** 2), truth,
                                  (m, v, c), X)
    assert not symbolically_equal(m * v, truth, (m, v, c), X)
