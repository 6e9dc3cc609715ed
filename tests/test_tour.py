"""The tour: every section runs, states the lecture's claim correctly and writes its PNG."""

import pytest
import torch
from typer.testing import CliRunner

from nnlab import tour
from nnlab.cli import app

torch.set_num_threads(1)

PNG = b"\x89PNG\r\n\x1a\n"


def test_tour_runs_and_checks_the_claims(tmp_path):
    lines = []
    s = tour.run(tmp_path, fast=True, echo=lines.append)
    assert s["logic"]["xor_exact"] and s["logic"]["separable_2"] == 14
    assert sorted(map(tuple, s["logic"]["non_separable_2"])) == [(0, 1, 1, 0), (1, 0, 0, 1)]
    assert s["activations"]["max_derivative_error"] < 1e-6
    assert s["activations"]["relations"]["max σ′ = 1/4"] == pytest.approx(0.25)
    assert s["vanishing_gradients"]["first_over_last"]["sigmoid, Xavier init"] < 1e-6
    assert s["vanishing_gradients"]["cured"]
    assert s["training"]["train_acc"] > 0.95 and s["training"]["val_acc"] > 0.9
    for key in tour.SECTIONS:
        assert (tmp_path / s[key]["plot"].split("/")[-1]).read_bytes().startswith(PNG)
    assert (tmp_path / "summary.json").is_file()
    assert any("14 of 16" in line for line in lines)


def test_unknown_section_is_named():
    with pytest.raises(ValueError, match=r"unknown tour section\(s\) \['xor'\]"):
        tour.run("unused", sections=["xor"])


def test_cli_tour_help():
    result = CliRunner().invoke(app, ["tour", "--help"])
    assert result.exit_code == 0
    assert "--out" in result.output and "--fast" in result.output
