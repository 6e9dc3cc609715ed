"""`nnlab train` schedulers, early stopping, best/ checkpoints, TensorBoard, KAN grid flags;
`nnlab prune --method gradual-obs`; the loss and KAN figures."""
import json

import pytest
import torch
from typer.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nnlab as nl
from nnlab.cli import app
from nnlab.training import load_checkpoint
from nnlab.viz import loss_curves

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore::nnlab.kan.layer.GridRangeWarning")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_scheduler_tensorboard_best_and_early_stopping(tmp_path):
    r = invoke("train", "--data", "moons", "--samples", 200, "--hidden", "16", "--epochs", 30, "--lr", 0.05,
               "--scheduler", "cosine", "--warmup", 2, "--early-stopping", 3, "--tensorboard",
               "--runs-dir", tmp_path, "--name", "r", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    run = tmp_path / "r"
    recs = _metrics(run)
    lrs = [m["lr"] for m in recs]
    assert lrs[0] < lrs[1] and lrs[-1] < max(lrs)  # warm-up, then the cosine decay
    best_epoch = min(recs, key=lambda m: m["val_risk"])["epoch"]
    assert load_checkpoint(run / "best").epoch == best_epoch
    best, _ = nl.load_model(run / "best")
    last, _ = nl.load_model(run)
    x = torch.randn(5, 2)
    with torch.no_grad():
        assert not torch.equal(best(x), last(x)) or best_epoch == recs[-1]["epoch"]
    if len(recs) < 30:  # early stopping: three epochs without a new best
        assert recs[-1]["epoch"] - best_epoch == 4
    ea = EventAccumulator(str(run / "tensorboard"))
    ea.Reload()
    assert {"loss/train", "loss/val", "lr", "accuracy/val", "grad_norm/global"} <= set(ea.Tags()["scalars"])


@pytest.mark.parametrize("flags,message", [
    (["--scheduler", "linear"], "unknown scheduler 'linear'; choose one of cosine, step, onecycle, plateau"),
    (["--warmup", "2"], "--warmup needs a --scheduler"),
    (["--early-stopping", "-1"], "early_stopping is the patience in epochs and must be >= 0"),
    (["--grid-extend", "5,10"], "--grid-extend refines a KAN's grid"),
    (["--model", "kan", "--grid-extend", "10,5"], "the grids must increase"),
    (["--model", "kan", "--update-grid", "every"], "update_grid must be EVERY[:UNTIL]"),
])
def test_train_bad_flags(tmp_path, flags, message):
    r = invoke("train", "--data", "moons", "--samples", 60, "--epochs", 2, "--runs-dir", tmp_path,
               "--name", "bad", "--no-progress", *flags)
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output


def test_kan_grid_extend_and_update_grid(tmp_path):
    r = invoke("train", "--data", "moons", "--samples", 120, "--model", "kan", "--hidden", "2", "--epochs", 6,
               "--grid-extend", "3,6", "--update-grid", "2:4", "--runs-dir", tmp_path, "--name", "k",
               "--no-progress")
    assert r.exit_code == 0, r.output
    model, spec = nl.load_model(tmp_path / "k")
    assert model.grid == [6, 6]
    assert (tmp_path / "k" / "kan.png").stat().st_size > 5000
    r = invoke("train", "--name", "k", "--runs-dir", tmp_path, "--resume", "--epochs", 8, "--no-progress",
               "--no-plots")
    assert r.exit_code == 0, r.output
    assert [m["epoch"] for m in _metrics(tmp_path / "k")] == list(range(1, 9))


def test_prune_gradual_obs(tmp_path):
    r = invoke("train", "--data", "circles", "--samples", 160, "--hidden", "16,16", "--epochs", 5,
               "--runs-dir", tmp_path, "--name", "base", "--no-progress", "--no-plots")
    assert r.exit_code == 0, r.output
    r = invoke("prune", tmp_path / "base", "--method", "gradual-obs", "--sparsity", 0.8, "--steps", 2,
               "--finetune-epochs", 1, "--runs-dir", tmp_path, "--name", "g")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "g" / "report.json").read_text())
    assert report["pruned"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    r = invoke("prune", tmp_path / "base", "--method", "neurons", "--gradual", "--runs-dir", tmp_path)
    assert r.exit_code == 2 and "--gradual works with magnitude, obd or obs" in r.output


def test_loss_figure_drops_a_flat_lr_panel():
    recs = [{"epoch": e, "train_risk": 1 / e, "val_risk": 1.1 / e, "grad_norm": 1.0, "lr": 0.01}
            for e in range(1, 5)]
    flat = loss_curves(recs, title="t")
    assert len(flat.axes) == 3 and "0.01" in flat._suptitle.get_text()
    moving = loss_curves([{**r, "lr": 0.01 / r["epoch"]} for r in recs])
    assert len(moving.axes) == 4 and moving.axes[3].get_title() == "learning rate"


def test_kan_figure_names_inputs_and_has_a_title():
    model = nl.KAN([2, 2, 1], grid=3, seed=0)
    fig = nl.kan.plot(model, torch.rand(50, 2) * 2 - 1, var_names=["mass", "speed"])
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"mass", "speed", "y1", "inputs", "outputs", "KAN [2, 2, 1]: learned edge functions"} <= texts
    assert all(len(ax.get_xticks()) == 2 for ax in fig.axes[1:])  # each panel shows its input range
    with pytest.raises(ValueError, match="var_names has 1 names but the KAN has 2"):
        nl.kan.plot(model, torch.rand(5, 2), var_names=["a"])
