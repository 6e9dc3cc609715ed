"""Export: ONNX graphs run by onnxruntime equal torch on fresh inputs (MLP, residual MLP, KAN,
normalisation + MLP); torch.export programs; `nnlab export` with the saved standardisation."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app
from nnlab.export import ExportError, ExportKANLayer, exportable

runner = CliRunner()
# fresh inputs reach outside the grid on purpose (the exported path must match there too)
pytestmark = pytest.mark.filterwarnings("ignore::nnlab.kan.layer.GridRangeWarning")


def _ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x.numpy()})[0]


def _kan():
    model = nl.KAN([3, 4, 2], grid=5, seed=0)
    model.update_grid(torch.randn(200, 3, generator=torch.Generator().manual_seed(1)))
    return model


def _normalised_mlp():
    torch.manual_seed(0)
    affine = nn.Linear(3, 3)  # (x - mu) / sigma as an affine layer in front of the network
    with torch.no_grad():
        affine.weight.copy_(torch.diag(torch.tensor([0.5, 2.0, 0.1])))
        affine.bias.copy_(torch.tensor([-1.0, 0.3, 2.0]))
    return nn.Sequential(affine, nl.MLP([3, 16, 2], activation="silu"))


MODELS = {
    "mlp": lambda: nl.MLP([3, 32, 16, 2], activation="tanh"),
    "resnet": lambda: nl.MLP([3, 16, 16, 16, 1], residual=True, batchnorm=True),
    "kan": _kan,
    "normalised": _normalised_mlp,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_equals_torch_on_fresh_inputs(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    path = nl.export.onnx(model, torch.randn(4, 3), tmp_path / f"{name}.onnx")
    fresh = torch.randn(57, 3, generator=torch.Generator().manual_seed(7))  # another batch size
    with torch.no_grad():
        want = model(fresh).numpy()
    got = _ort(path, fresh)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5
    assert nl.export.compare_onnx(path, model, fresh) <= 1e-5


def test_export_kan_layer_is_the_same_function():
    model = _kan()
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(3)) * 1.5  # inside and outside the grid
    copy = exportable(model)
    assert all(isinstance(m, ExportKANLayer) for m in copy.layers)
    with torch.no_grad():
        assert torch.allclose(copy(x), model(x), atol=1e-6)


def test_torch_export_program(tmp_path):
    model = _kan()
    path = nl.export.program(model, torch.randn(5, 3), tmp_path / "kan.pt2")
    x = torch.randn(9, 3)
    with torch.no_grad():
        assert torch.allclose(torch.export.load(str(path)).module()(x), model(x), atol=1e-6)


class DataDependent(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


def test_unexportable_models_are_one_clear_error(tmp_path):
    with pytest.raises(ExportError, match="cannot export a str: nl.export takes a torch.nn.Module"):
        nl.export.onnx("model", torch.randn(2, 3), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"^cannot export DataDependent: [^\n]+$"):
        nl.export.onnx(DataDependent(), torch.randn(2, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(FileNotFoundError, match="no ONNX file at"):  # was onnxruntime's NO_SUCHFILE
        nl.export.compare_onnx(tmp_path / "m.onnx", nn.Linear(3, 1), torch.randn(2, 3))


def test_cli_export_includes_the_saved_standardisation(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[100.0, -5.0], scale=[20.0, 0.1], size=(80, 2))
    y = X[:, 0] / 20 + 10 * X[:, 1]
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "\n".join(f"{a},{b},{t}" for (a, b), t in zip(X, y)))
    r = runner.invoke(app, ["train", "--data", str(csv), "--target", "y", "--hidden", "8", "--epochs", "2",
                            "--runs-dir", str(tmp_path), "--name", "csv", "--no-progress", "--no-plots"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", str(tmp_path / "csv"), "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    assert "max |diff|" in r.output
    model, spec = nl.load_model(tmp_path / "csv")
    raw = torch.tensor(X[:10], dtype=torch.float32)  # raw, unstandardised features
    if not any(type(m).__name__ == "Standardize" for m in model.modules()):
        st = (spec.get("preprocess") or spec["meta"]["preprocess"])["standardize"]
        model = nn.Sequential(_Std(st["mean"], st["std"]), model)
    with torch.no_grad():
        want = model(raw).numpy()
    assert np.abs(_ort(tmp_path / "m.onnx", raw) - want).max() <= 1e-4


class _Std(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def forward(self, x):
        return (x - self.mean) / self.std


@pytest.mark.parametrize("args,match", [
    (["--format", "torchscript"], "unknown format 'torchscript'; choose one of onnx, pt2"),
])
def test_cli_export_bad_input(tmp_path, args, match):
    r = runner.invoke(app, ["export", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "no model.json" in r.output
    r = runner.invoke(app, ["export", str(tmp_path), *args])
    assert r.exit_code == 2 and match in r.output
