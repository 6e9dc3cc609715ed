"""nl.callbacks: early stopping stops, the best checkpoint is the best, TensorBoard event files
hold the expected tags (read back with tensorboard's EventAccumulator), the CSV log, bad input."""
import csv

import pytest
import torch
from torch import nn
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nnlab as nl
from nnlab.training import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::nnlab.kan.layer.GridRangeWarning")

X, Y = nl.data.toy("spiral", 160, seed=0)
XV, YV = nl.data.toy("spiral", 160, seed=1)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))


def _fit(model, callbacks, epochs=30, **kw):
    kw = {"lr": 0.3, "seed": 0, **kw}
    return nl.fit(model, (X, Y), val=(XV, YV), loss="cross_entropy", epochs=epochs,
                  callbacks=callbacks, progress=False, **kw)


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    es = nl.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    h = _fit(_model(), [es], epochs=60)
    assert len(h) < 60 and es.stopped_epoch_ == h.epochs[-1]
    best_epoch, best = h.best("val_loss")
    assert (es.best_epoch_, es.best_) == (best_epoch, best)
    assert h.epochs[-1] - best_epoch == 3  # patience 2: the third epoch without improvement stops
    assert all(v >= best for v in h.val_loss[best_epoch:])


def test_early_stopping_min_delta_and_max_mode():
    es = nl.callbacks.EarlyStopping(monitor="val_acc", patience=0, min_delta=1.0)  # nothing improves by 1
    h = _fit(_model(), [es], epochs=10)
    assert es.mode == "max" and len(h) == 2


def test_early_stopping_count_survives_resume(tmp_path):
    def stop_at(state):
        if state.epoch == 4:
            state.stop = True

    es = nl.callbacks.EarlyStopping(patience=2)
    full = _fit(_model(), [nl.callbacks.EarlyStopping(patience=2)], epochs=60)
    _fit(_model(), [stop_at, nl.callbacks.EarlyStopping(patience=2)], epochs=60, checkpoint_dir=tmp_path)
    h = _fit(_model(), [es], epochs=60, checkpoint_dir=tmp_path, resume=tmp_path)
    assert h.epochs == full.epochs


def test_model_checkpoint_best_is_the_best_and_last_is_the_latest(tmp_path):
    mc = nl.callbacks.ModelCheckpoint(tmp_path / "ck", monitor="val_loss", save_top_k=2, keep_last=2)
    model = _model()
    h = _fit(model, [mc], epochs=12, lr=0.5)
    best_epoch, best = h.best("val_loss")
    ck = load_checkpoint(tmp_path / "ck" / "best")
    assert ck.epoch == best_epoch == mc.best_epoch_ and mc.best_ == best
    # the saved weights reproduce the best validation loss
    again = _model(1)
    again.load_state_dict(ck.model_state())
    with torch.no_grad():
        loss = nn.functional.cross_entropy(again(XV), YV).item()
    assert loss == pytest.approx(best, rel=1e-6)
    assert load_checkpoint(tmp_path / "ck" / "last").epoch == 12
    assert sorted(p.name for p in (tmp_path / "ck" / "recent").iterdir()) == ["epoch-0011", "epoch-0012"]
    top = sorted(h.val_loss)[:2]
    kept = sorted(int(p.name[6:]) for p in (tmp_path / "ck" / "top").iterdir())
    assert sorted(h.val_loss[e - 1] for e in kept) == top
    # any kept checkpoint resumes
    h2 = _fit(_model(), [], epochs=13, lr=0.5, resume=tmp_path / "ck" / "best")
    assert h2.epochs == list(range(1, 14))


def test_tensorboard_event_files_hold_the_expected_tags(tmp_path):
    tb = nl.callbacks.TensorBoard(tmp_path / "tb")
    h = _fit(_model(), [tb], epochs=3, scheduler="cosine")
    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr", "grad_norm/global",
            "grad_norm/0.weight", "grad_norm/2.bias"} <= tags
    assert [e.step for e in ea.Scalars("loss/val")] == [1, 2, 3]
    lrs = [e.value for e in ea.Scalars("lr")]
    assert lrs[0] > lrs[-1]  # the cosine schedule is visible
    for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("lr", "lr"),
                     ("grad_norm/global", "grad_norm")):  # float32 in the event file
        assert [e.value for e in ea.Scalars(tag)] == pytest.approx(getattr(h, key), rel=1e-6)


def test_tensorboard_kan_figure(tmp_path):
    kan = nl.KAN([2, 2, 2], grid=3, seed=0)
    tb = nl.callbacks.TensorBoard(tmp_path / "tb", kan_inputs=X[:64], figure_every=2, var_names=["u", "v"])
    nl.fit(kan, (X, Y), loss="cross_entropy", epochs=3, callbacks=[tb], progress=False)
    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    assert [e.step for e in ea.Images("kan/edges")] == [1, 2, 3]


def test_csv_logger_rows(tmp_path):
    path = tmp_path / "log" / "metrics.csv"
    h = _fit(_model(), [nl.callbacks.CSVLogger(path)], epochs=3)
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["val_loss"]) for r in rows] == h.val_loss
    assert rows[0]["penalty"] == ""


@pytest.mark.parametrize("make,match", [
    (lambda: nl.callbacks.EarlyStopping(patience=-1), "patience must be >= 0"),
    (lambda: nl.callbacks.EarlyStopping(mode="up"), "mode must be"),
    (lambda: nl.callbacks.ModelCheckpoint("x", save_top_k=0, keep_last=0), "save nothing"),
    (lambda: nl.callbacks.TensorBoard("x", figure_every=0), "figure_every"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cb", [nl.callbacks.EarlyStopping, lambda: nl.callbacks.ModelCheckpoint("unused")])
def test_monitor_never_logged_fails_at_the_first_epoch(cb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []
    with pytest.raises(ValueError, match="monitors 'val_loss', which this run does not log.*pass val="):
        nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=5, progress=False,
               callbacks=[cb(), lambda s: seen.append(s.epoch)])
    assert seen == []


def test_unwritable_log_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for cb in (nl.callbacks.TensorBoard(blocker / "tb"), nl.callbacks.CSVLogger(blocker / "m.csv"),
               nl.callbacks.ModelCheckpoint(blocker / "ck")):
        with pytest.raises(ValueError, match=f"cannot write to {blocker}"):
            _fit(_model(), [cb], epochs=1)


def test_only_rank_zero_writes(tmp_path):
    """Under DDP every rank runs the callbacks; ranks other than 0 must not touch the disk."""
    from nnlab.training import History, TrainState

    model = _model()
    h = History()
    h.append({"epoch": 1, "train_loss": 1.0, "val_loss": 0.5, "lr": 0.1, "grad_norm": 1.0})
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), history=h,
                       epoch=1, logs={"epoch": 1, "train_loss": 1.0, "val_loss": 0.5}, rank=1, world_size=2,
                       save_checkpoint=lambda folder: pytest.fail("rank 1 wrote a checkpoint"))
    for cb in (nl.callbacks.TensorBoard(tmp_path / "tb"), nl.callbacks.CSVLogger(tmp_path / "m.csv"),
               nl.callbacks.ModelCheckpoint(tmp_path / "ck")):
        cb.on_fit_start(state)
        cb.on_epoch_end(state)
        getattr(cb, "on_fit_end", lambda s: None)(state)
    assert list(tmp_path.iterdir()) == []


def test_kan_grid_extend_swaps_parameters_in_the_optimizer():
    kan = nl.KAN([2, 2, 2], grid=3, seed=0)
    kan.update_grid(X)
    ext = nl.kan.GridExtend(nl.kan.grid_schedule([3, 6], 4))
    assert ext.schedule == {3: 6}
    seen = {}

    def grab(state):
        seen["opt"] = {id(p) for g in state.optimizer.param_groups for p in g["params"]}

    before = [p.detach().clone() for p in kan.parameters()]
    h = nl.fit(kan, (X, Y), loss="cross_entropy", epochs=4, lr=0.01, callbacks=[ext, grab], progress=False)
    assert kan.grid == [6, 6] and len(h) == 4
    assert seen["opt"] == {id(p) for p in kan.parameters()}  # the new coefficients are optimised
    assert [p.shape for p in kan.parameters()] != [p.shape for p in before]
    with pytest.raises(ValueError, match="must increase"):
        nl.kan.grid_schedule([5, 5], 10)


def test_tensorboard_events_are_on_disk_after_each_epoch(tmp_path):
    """Every epoch's scalars can be read while training runs (flushed at each epoch's end)."""
    seen = []

    def read_back(state):
        ea = EventAccumulator(str(tmp_path / "tb"))
        ea.Reload()
        seen.append([e.step for e in ea.Scalars("loss/train")])

    _fit(_model(), [nl.callbacks.TensorBoard(tmp_path / "tb"), read_back], epochs=3)
    assert seen == [[1], [1, 2], [1, 2, 3]]
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1
