"""nl.fit: learning XOR and the spiral, History, callbacks, progress, LBFGS, penalty, clipping."""
import io
import sys

import numpy as np
import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab.training import History, TrainState

torch.set_num_threads(1)


def mlp(n_in=2, hidden=16, n_out=2, seed=0, act=nn.Tanh):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), act(), nn.Linear(hidden, hidden), act(),
                         nn.Linear(hidden, n_out))


def accuracy(model, X, y):
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def test_tiny_mlp_learns_xor_truth_table():
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    model = mlp(hidden=8)
    h = nl.fit(model, (X, y), loss="cross_entropy", lr=0.05, epochs=200, batch_size=None, seed=0)
    assert accuracy(model, X, y) == 1.0
    assert h.train_acc[-1] == 1.0
    assert h.train_loss[-1] < 0.05 < h.train_loss[0]


def test_spiral_above_95_percent_training_accuracy():
    X, y = nl.data.toy("spiral", 300, seed=0)
    Xv, yv = nl.data.toy("spiral", 200, seed=1)
    model = mlp(hidden=32)
    h = nl.fit(model, (X, y), val=(Xv, yv), loss="cross_entropy", lr=0.05, epochs=150,
               batch_size=None, seed=0)
    assert accuracy(model, X, y) > 0.95
    assert h.val_acc[-1] > 0.9  # the held-out risk follows the empirical one on a smooth spiral
    assert len(h.val_loss) == 150 and h.val_loss[-1] < h.val_loss[0]


def test_history_contents_regression():
    X = torch.linspace(-1, 1, 64).reshape(-1, 1)
    y = 3 * X + 0.5
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    h = nl.fit(model, (X, y), val=(X[:16], y[:16]), loss="mse", optimizer="sgd", lr=0.1, epochs=5,
               batch_size=16, seed=0, progress=False)
    assert isinstance(h, History)
    assert h.epochs == [1, 2, 3, 4, 5]
    assert len(h.train_loss) == len(h.val_loss) == len(h.grad_norm) == len(h.lr) == 5
    assert h.train_acc == [None] * 5 and h.val_acc == [None] * 5  # regression: no accuracy
    assert h.lr == [0.1] * 5
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.best("val_loss") == (int(np.argmin(h.val_loss)) + 1, min(h.val_loss))
    d = h.as_dict()
    assert set(d) >= {"epochs", "train_loss", "val_loss", "train_acc", "val_acc"}
    assert History.from_dict(d) == h
    with pytest.raises(ValueError, match="not recorded"):
        h.best("val_acc")
    with pytest.raises(ValueError, match="unknown metric"):
        h.best("accuracy")


def test_empirical_risk_is_the_sample_weighted_mean_of_batch_losses():
    # one epoch of SGD with lr -> 0 leaves the model unchanged, so the recorded empirical risk
    # must equal the full-data MSE even with an uneven last batch (10 = 4 + 4 + 2).
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    y = torch.randn(10, 1, generator=torch.Generator().manual_seed(1))
    model = nn.Linear(3, 1)
    expected = nn.functional.mse_loss(model(X), y).item()
    h = nl.fit(model, (X, y), optimizer="sgd", lr=1e-300, epochs=1, batch_size=4, seed=0)
    assert h.train_loss[0] == pytest.approx(expected, rel=1e-6)


def test_accepts_numpy_dataset_and_dataloader():
    X, y = nl.data.toy("gaussians", 64, seed=0)
    ds = torch.utils.data.TensorDataset(X, y)
    results = []
    for train in [(X.numpy(), y.numpy()), ds,
                  torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False)]:
        model = mlp(hidden=4)
        h = nl.fit(model, train, val=ds, loss="cross_entropy", lr=0.05, epochs=3, batch_size=16, seed=0)
        results.append(h)
        assert h.val_acc[-1] is not None
    # arrays and a Dataset use the same seeded order: identical runs
    assert results[0].train_loss == results[1].train_loss


def test_callbacks_see_state_and_can_stop_early():
    X, y = nl.data.toy("moons", 64, seed=0)
    events = []

    class Recorder:
        def on_epoch_start(self, state):
            events.append(("start", state.epoch))

        def on_batch_end(self, state):
            assert isinstance(state, TrainState) and set(state.logs) == {"epoch", "batch", "loss"}
            events.append(("batch", state.epoch, state.batch))

        def on_epoch_end(self, state):
            assert state.logs["train_loss"] == state.history.train_loss[-1]
            assert state.model is model and state.optimizer is not None
            events.append(("end", state.epoch))
            if state.epoch == 2:
                state.stop = True

    seen = []
    model = mlp(hidden=4)
    h = nl.fit(model, (X, y), loss="cross_entropy", epochs=10, batch_size=32, seed=0,
               callbacks=[Recorder(), lambda s: seen.append(s.epoch)])
    assert h.epochs == [1, 2]
    assert seen == [1, 2]  # a plain callable is an on_epoch_end
    assert events == [("start", 1), ("batch", 1, 0), ("batch", 1, 1), ("end", 1),
                      ("start", 2), ("batch", 2, 0), ("batch", 2, 1), ("end", 2)]
    with pytest.raises(TypeError, match="on_epoch_end"):
        nl.fit(model, (X, y), loss="cross_entropy", epochs=1, callbacks=[object()])


def test_progress_bar_is_silent_when_not_a_tty(monkeypatch, capsys):
    X, y = nl.data.toy("xor", 32, seed=0)
    fake = io.StringIO()  # not a TTY
    monkeypatch.setattr(sys, "stderr", fake)
    nl.fit(mlp(hidden=4), (X, y), loss="cross_entropy", epochs=2, progress=True)
    assert fake.getvalue() == ""
    assert capsys.readouterr().out == ""


def test_progress_bar_shows_on_a_tty(monkeypatch):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    X, y = nl.data.toy("xor", 32, seed=0)
    for progress, shown in [(True, True), (False, False)]:
        fake = TTY()
        monkeypatch.setattr(sys, "stderr", fake)
        nl.fit(mlp(hidden=4), (X, y), loss="cross_entropy", epochs=2, progress=progress)
        assert ("epoch" in fake.getvalue()) is shown


def test_lbfgs_full_batch_fits_a_regression():
    X = torch.linspace(-2, 2, 64).reshape(-1, 1)
    y = torch.sin(2 * X)
    model = mlp(n_in=1, hidden=16, n_out=1)
    h = nl.fit(model, (X, y), loss="mse", optimizer="lbfgs", lr=1.0, epochs=15, batch_size=None, seed=0)
    assert h.train_loss[-1] < 1e-3 < h.train_loss[0]


def test_optimizer_instance_keeps_its_param_groups():
    X = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    y = X.sum(1, keepdim=True) + 1.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    frozen_before = model[0].weight.detach().clone()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.0},
                           {"params": model[2].parameters(), "lr": 0.1}], momentum=0.9)
    h = nl.fit(model, (X, y), optimizer=opt, lr=123.0, epochs=3, batch_size=8, seed=0)
    assert torch.equal(model[0].weight, frozen_before)  # lr=0 group untouched, lr=123 ignored
    assert h.lr == [0.0] * 3  # first group's lr
    assert h.train_loss[-1] < h.train_loss[0]
    other = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="not the model's"):
        nl.fit(model, (X, y), optimizer=torch.optim.SGD(other.parameters(), lr=0.1), epochs=1)
    h = nl.fit(model, (X, y), optimizer=torch.optim.AdamW, lr=1e-2, epochs=1)  # a class is built
    assert h.lr == [1e-2]


def test_penalty_is_added_to_the_training_loss():
    X = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([[1.0], [2.0], [3.0]])
    calls = []

    def l1(m, xb):
        calls.append(xb.shape[0])
        return 5.0 * m.weight.abs().sum()

    fitted = {}
    for name, pen in [("free", None), ("l1", l1)]:
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        h = nl.fit(model, (X, y), optimizer="sgd", lr=0.02, epochs=30, batch_size=16, penalty=pen, seed=0)
        fitted[name] = (model.weight.detach().abs().sum().item(), h)
    assert calls[:2] == [16, 16]
    assert fitted["free"][0] > 5.0  # close to |1| + |2| + |3|
    assert fitted["l1"][0] < 0.5 * fitted["free"][0]  # the L1 term shrinks the weights
    h = fitted["l1"][1]
    assert all(p is not None and p > 0 for p in h.penalty)  # recorded apart from train_loss
    assert fitted["free"][1].penalty == [None] * 30


@pytest.mark.parametrize("kind", ["norm", "value"])
def test_clipping_bounds_every_step(kind):
    X = 100 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(16, 1)
    seen = []

    class Probe:  # after fit's clipping, the update of plain SGD with lr=1 is -g
        def on_epoch_start(self, state):
            self.before = [p.detach().clone() for p in state.model.parameters()]

        def on_batch_end(self, state):
            g = torch.cat([(b - p.detach()).flatten() for b, p in zip(self.before, state.model.parameters())])
            seen.append(g)
            self.before = [p.detach().clone() for p in state.model.parameters()]

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    h = nl.fit(model, (X, y), optimizer="sgd", lr=1.0, epochs=1, batch_size=16, clip=(kind, 0.5),
               callbacks=[Probe()])
    step = seen[0]
    assert h.grad_norm[0] > 10  # the pre-clip norm is what History records
    if kind == "norm":
        assert torch.linalg.vector_norm(step).item() == pytest.approx(0.5, rel=1e-5)
    else:
        assert step.abs().max().item() == pytest.approx(0.5, rel=1e-6)


def test_fit_signature_is_the_contract():
    import inspect

    sig = inspect.signature(nl.fit)
    assert [(p.name, p.default) for p in list(sig.parameters.values())[2:]] == [
        ("val", None), ("loss", "mse"), ("optimizer", "adam"), ("lr", 1e-3), ("epochs", 10),
        ("batch_size", 64), ("clip", None), ("seed", None), ("progress", True), ("callbacks", ()),
        ("checkpoint_dir", None), ("resume", None), ("penalty", None), ("distributed", None),
        ("scheduler", None), ("warmup", 0), ("grad_norm", None)]


def test_grad_norm_false_skips_the_norm_but_not_the_training():
    """fit(grad_norm=False): the same weights and losses, History's grad_norm None; the mean ‖g‖
    it records otherwise is the mean over the steps of the global norm (oracle: autograd's
    gradients, recomputed by hand from a probe of every step); with clip it is recorded anyway."""
    X, y = nl.data.toy("spiral", 96, seed=0)
    norms = []

    class Probe:  # ‖g‖ of each step, read after the step (Adam leaves the gradients as they are)
        def on_batch_end(self, state):
            norms.append(torch.linalg.vector_norm(
                torch.cat([p.grad.flatten() for p in state.model.parameters()])).item())

    a, b, d = mlp(), mlp(), mlp()
    ha = nl.fit(a, (X, y), loss="cross_entropy", epochs=2, batch_size=32, seed=1, progress=False,
                callbacks=[Probe()], grad_norm=True)
    hb = nl.fit(b, (X, y), loss="cross_entropy", epochs=2, batch_size=32, seed=1, progress=False,
                grad_norm=False)
    hd = nl.fit(d, (X, y), loss="cross_entropy", epochs=2, batch_size=32, seed=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), d.parameters()))
    assert ha.train_loss == hb.train_loss == hd.train_loss and ha.train_acc == hb.train_acc
    assert hb.grad_norm == [None, None] and hd.grad_norm == [None, None]  # the default: none asked
    assert ha.grad_norm == pytest.approx([np.mean(norms[:3]), np.mean(norms[3:])], rel=1e-5)
    hc = nl.fit(mlp(), (X, y), loss="cross_entropy", epochs=1, batch_size=32, progress=False,
                clip=("norm", 1e6), grad_norm=False)
    assert hc.grad_norm[0] is not None and hc.grad_norm[0] > 0
    with pytest.raises(TypeError, match="grad_norm must be True, False or None"):
        nl.fit(mlp(), (X, y), loss="cross_entropy", epochs=1, progress=False, grad_norm="no")


@pytest.mark.parametrize("n,epoch,seed,batch", [(10, 0, 0, 3), (33, 2, 7, 32), (5, 1, 3, None)])
def test_tensor_batches_follow_the_sampler_order_in_chunks(monkeypatch, n, epoch, seed, batch):
    from nnlab.training import data_loading as dl

    idx = dl._order_tensor(n, epoch, seed, True, 0, 1)
    assert idx.tolist() == dl.order(n, epoch, seed, True)  # DistributedSampler's order, one replica
    X, y = torch.randn(n, 3), torch.arange(n)
    monkeypatch.setattr(dl, "_CHUNK_BYTES", 40)  # a few rows per chunk: batches cross chunks
    got = list(dl._tensor_batches(X, y, idx, batch, torch.device("cpu")))
    want = [(X[idx[s]], y[idx[s]]) for s in dl.batch_slices(n, batch)]
    assert len(got) == len(want)
    for (xa, ya), (xb, yb) in zip(got, want):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_grad_norm_default_records_it_when_a_callback_asks(tmp_path):
    """fit(grad_norm=None): a callback with ``wants_grad_norm = True`` (TensorBoard with its
    norms) turns the record on; TensorBoard(grad_norms=False) and plain callbacks do not."""
    X, y = nl.data.toy("spiral", 64, seed=0)

    class Asks:
        wants_grad_norm = True

        def on_epoch_end(self, state):
            pass

    h = nl.fit(mlp(), (X, y), loss="cross_entropy", epochs=1, batch_size=32, progress=False, callbacks=[Asks()])
    assert h.grad_norm[0] is not None and h.grad_norm[0] > 0
    h = nl.fit(mlp(), (X, y), loss="cross_entropy", epochs=1, batch_size=32, progress=False,
               callbacks=[nl.callbacks.TensorBoard(tmp_path / "a")])
    assert h.grad_norm[0] is not None
    h = nl.fit(mlp(), (X, y), loss="cross_entropy", epochs=1, batch_size=32, progress=False,
               callbacks=[nl.callbacks.TensorBoard(tmp_path / "b", grad_norms=False), lambda state: None])
    assert h.grad_norm == [None]
