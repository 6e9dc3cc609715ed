"""Run folders, the metrics.jsonl logger and the model save format, without the CLI."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import nnlab as nl
from nnlab.models_io import load_model, save_model
from nnlab.runs import MetricsLogger, RunFolder, RunFolderError, read_metrics


def state(epoch, train_loss, val_loss=None, acc=None, lr=0.1):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    logs = {"train_loss": train_loss, "val_loss": val_loss, "val_acc": acc, "grad_norm": 2.0}
    return SimpleNamespace(epoch=epoch, model=model, optimizer=opt, logs=logs, history=None)


def test_metrics_logger_lines_and_resume_drops_stale_epochs(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLogger(path)
    for e in (1, 2, 3, 4, 5):
        log.on_epoch_start(None)
        log.on_epoch_end(state(e, 1.0 / e, 2.0 / e, 0.5))
    recs = read_metrics(path)
    assert [r["epoch"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[1] | {"time_s": 0, "elapsed_s": 0} == {
        "epoch": 2, "train_risk": 0.5, "val_risk": 1.0, "accuracy": 0.5, "train_accuracy": None,
        "val_accuracy": 0.5, "grad_norm": 2.0, "lr": 0.1, "time_s": 0, "elapsed_s": 0}
    # a crash after epoch 5 with the last checkpoint at epoch 3: the resumed run logs epoch 4 again
    resumed = MetricsLogger(path)
    resumed.on_epoch_start(None)
    resumed.on_epoch_end(state(4, 0.3))
    recs = read_metrics(path)
    assert [r["epoch"] for r in recs] == [1, 2, 3, 4] and recs[-1]["train_risk"] == 0.3
    assert recs[-1]["elapsed_s"] >= recs[2]["elapsed_s"]  # elapsed time carries over
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files


def test_metrics_logger_grad_norm_fallback_and_silent_rank(tmp_path):
    st = state(1, 1.0)
    st.logs = {"train_loss": 1.0}
    st.model.weight.grad = torch.full_like(st.model.weight, 3.0)  # ‖g‖ = sqrt(2·9) (no bias grad)
    MetricsLogger(tmp_path / "m.jsonl").on_epoch_end(st)
    assert read_metrics(tmp_path / "m.jsonl")[0]["grad_norm"] == pytest.approx(18 ** 0.5)
    MetricsLogger(tmp_path / "other.jsonl", write=False).on_epoch_end(st)
    assert not (tmp_path / "other.jsonl").exists()


def test_run_folder_rules(tmp_path):
    run = RunFolder.open(tmp_path, "r")
    run.write_config({"a": 1})
    with pytest.raises(RunFolderError, match="already exists"):
        RunFolder.open(tmp_path, "r")
    (run.path / "junk.txt").write_text("x")
    assert not (RunFolder.open(tmp_path, "r", overwrite=True).path / "junk.txt").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RunFolderError, match="not an nnlab run folder"):
        RunFolder.open(tmp_path, "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()
    with pytest.raises(RunFolderError, match="cannot resume"):
        RunFolder.open(tmp_path, "new", resume=True)
    for bad in ("", "..", "a/b"):
        with pytest.raises(RunFolderError, match="plain folder name"):
            RunFolder.open(tmp_path, bad)


@pytest.mark.parametrize("arch,kwargs", [
    ("mlp", {"sizes": [3, 8, 2], "activation": "tanh", "batchnorm": True}),
    ("resnet", {"sizes": [3, 8, 8, 2], "activation": "relu"}),
])
def test_save_load_round_trip(tmp_path, arch, kwargs):
    torch.manual_seed(0)
    model = nl.models_io.build_model(arch, **kwargs)
    model.train()
    model(torch.randn(16, 3))  # move batch-norm running statistics away from their init
    model.eval()
    save_model(model, tmp_path / "m", arch, kwargs, meta={"task": "classification"})
    loaded, spec = load_model(tmp_path / "m")
    x = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert spec["meta"]["task"] == "classification" and spec["kwargs"]["sizes"] == kwargs["sizes"]


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved nnlab model"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not an nnlab model file"):
        load_model(tmp_path)
    save_model(nl.MLP([2, 4, 2]), tmp_path / "m", "mlp", {"sizes": [2, 4, 2]})
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    spec["kwargs"]["sizes"] = [2, 5, 2]
    (tmp_path / "m" / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="do not match the architecture"):
        load_model(tmp_path / "m")
    with pytest.raises(ValueError, match="unknown model 'cnn'"):
        nl.models_io.build_model("cnn")


@pytest.mark.parametrize("model, arch, msg", [
    (lambda: nl.MLP([2, 3, 1]), "kan", "not a KAN"),  # was AttributeError: 'MLP' object has no attribute 'save'
    (lambda: nl.MLP([2, 3, 1]), "resnet", "save it as 'mlp'"),  # both wrote a folder that never loaded
    (lambda: nl.MLP([2, 3, 3, 1], residual=True), "mlp", "save it as 'resnet'"),
])
def test_save_model_refuses_the_wrong_arch_before_writing(tmp_path, model, arch, msg):
    with pytest.raises(ValueError, match=msg):
        save_model(model(), tmp_path / "m", arch, {})
    assert not (tmp_path / "m").exists()
