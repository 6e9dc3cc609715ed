"""Learning-rate schedules in nl.fit: the factor formulas, per-batch/per-epoch stepping, and
bit-exact resume with the scheduler's state in the checkpoint."""
import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab.training.schedulers import names, warmup_cosine, warmup_step

X, Y = nl.data.toy("spiral", 120, seed=0)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 2))


def _stop_at(epoch):
    def cb(state):
        if state.epoch == epoch:
            state.stop = True
    return cb


SCHEDULES = [("cosine", 1), ("step", 1), ("onecycle", 1), ("plateau", 1), ("cosine", 0),
             (lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5), 0),
             ({"scheduler": lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.9),
               "interval": "step"}, 0)]


@pytest.mark.parametrize("sched,warmup", SCHEDULES)
def test_interrupted_run_resumes_bit_exactly(tmp_path, sched, warmup):
    kw = dict(val=(X, Y), loss="cross_entropy", epochs=6, lr=0.02, batch_size=32, seed=0,
              scheduler=sched, warmup=warmup, progress=False)
    full = _model()
    h_full = nl.fit(full, (X, Y), **kw)
    nl.fit(_model(), (X, Y), checkpoint_dir=tmp_path, callbacks=[_stop_at(3)], **kw)  # "crash" at 3
    resumed = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 2))  # other init
    h = nl.fit(resumed, (X, Y), checkpoint_dir=tmp_path, resume=tmp_path, **kw)
    assert h.lr == h_full.lr and h.train_loss == h_full.train_loss
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_cosine_follows_its_formula_per_batch():
    seen = []

    class Probe:
        def on_batch_end(self, state):
            seen.append(state.optimizer.param_groups[0]["lr"])

    nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=4, lr=0.1, batch_size=40, seed=0,
           scheduler="cosine", warmup=1, callbacks=[Probe()], progress=False)
    T, W = 4 * 3, 3  # 3 batches per epoch
    # after step t the lr is the factor of t+1 (the next step's)
    assert seen == pytest.approx([0.1 * warmup_cosine(t + 1, T, W) for t in range(T)])
    assert seen[:W] == pytest.approx([0.1 * 2 / 3, 0.1, 0.1])  # linear warm-up, then the peak
    assert seen[-1] == pytest.approx(0.0, abs=1e-12)


def test_factor_functions():
    assert [warmup_cosine(t, 10, 2) for t in (0, 1)] == [0.5, 1.0]
    assert warmup_cosine(2, 10, 2) == 1.0 and warmup_cosine(10, 10, 2) == pytest.approx(0.0)
    assert [warmup_step(t, 2, 0, 1, 0.1) for t in (0, 1, 2, 4)] == pytest.approx([1, 1, 0.1, 0.01])


def test_per_epoch_factory_and_plateau_reduce():
    h = nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=4, lr=0.1, seed=0, progress=False,
               scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5))
    assert h.lr == pytest.approx([0.1, 0.05, 0.025, 0.0125])  # the lr each epoch trained with
    # plateau: patience 0 and a metric that never improves -> lr drops every epoch
    h = nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=3, lr=1e-3, seed=0, progress=False,
               scheduler={"scheduler": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
                   o, patience=0, factor=0.5, threshold=10.0), "monitor": "train_loss"})
    assert h.lr == pytest.approx([1e-3, 5e-4, 2.5e-4])


@pytest.mark.parametrize("kwargs,match", [
    (dict(scheduler="linear"), "unknown scheduler 'linear'; expected one of .*cosine.*plateau"),
    (dict(scheduler="cosine", warmup=-1), "warmup must be"),
    (dict(scheduler="cosine", warmup=5), "warmup .* must be shorter"),
    (dict(warmup=2), "warmup needs a scheduler"),
    (dict(scheduler=lambda opt: 3), "must return a torch.optim.lr_scheduler"),
    (dict(scheduler={"scheduler": lambda o: torch.optim.lr_scheduler.StepLR(o, 1), "every": 2}),
     "scheduler dict"),
])
def test_bad_scheduler_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=3, progress=False, **kwargs)


def test_resume_with_another_scheduler_is_refused(tmp_path):
    nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=1, seed=0, scheduler="cosine",
           checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="scheduler"), pytest.warns(UserWarning, match="scheduler"):
        nl.fit(_model(), (X, Y), loss="cross_entropy", epochs=2, seed=0, resume=tmp_path,
               progress=False)


def test_names():
    assert names() == ["cosine", "step", "onecycle", "plateau"]
