"""Checkpoints: resuming is bit-for-bit the uninterrupted run; a crash never leaves a broken one."""
import json

import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab import _io
from nnlab.training import load_checkpoint

torch.set_num_threads(1)

X, Y = nl.data.toy("moons", 96, noise=0.1, seed=0)
XV, YV = nl.data.toy("moons", 32, noise=0.1, seed=1)


def make_model(dropout: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(2, 16), nn.Tanh()] + ([nn.Dropout(0.3)] if dropout else []) + [nn.Linear(16, 2)]
    return nn.Sequential(*layers)


def optimizer_for(kind, model):
    if kind == "sgd_momentum":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return kind  # "adam" / "lbfgs" by name


def run(model, kind, epochs, **kw):
    lr = 1.0 if kind == "lbfgs" else 0.01
    return nl.fit(model, (X, Y), val=(XV, YV), loss="cross_entropy", optimizer=optimizer_for(kind, model),
                  lr=lr, epochs=epochs, batch_size=32, seed=7, **kw)


@pytest.mark.parametrize("kind,dropout", [("adam", True), ("sgd_momentum", True), ("adam", False),
                                          ("lbfgs", False)])
def test_resume_is_bit_for_bit_the_uninterrupted_run(tmp_path, kind, dropout):
    full_model = make_model(dropout)
    full = run(full_model, kind, epochs=6)

    ckpt = tmp_path / "ckpt"
    run(make_model(dropout), kind, epochs=3, checkpoint_dir=ckpt)
    assert load_checkpoint(ckpt).epoch == 3
    torch.manual_seed(12345)  # a different RNG state and different weights before resuming
    resumed_model = make_model(dropout, seed=999)
    resumed = run(resumed_model, kind, epochs=6, resume=ckpt, checkpoint_dir=ckpt)

    assert resumed.as_dict() == full.as_dict()
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    assert load_checkpoint(ckpt).epoch == 6


def test_checkpoint_files_and_contents(tmp_path):
    model = make_model(dropout=False)
    run(model, "adam", epochs=2, checkpoint_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint.json", "state-epoch0002.safetensors"]  # only the latest is kept
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["epoch"] == 2 and meta["config"]["optimizer"] == "adam"
    assert meta["config"]["seed"] == 7 and meta["config"]["batch_size"] == 32
    assert set(meta["rng"]) == {"numpy", "python", "shuffle"}
    assert len(meta["history"]["train_loss"]) == 2
    tensors = _io.load_tensors(tmp_path / "state-epoch0002.safetensors")
    assert torch.equal(tensors["model.0.weight"], model[0].weight.detach())
    assert "rng.torch" in tensors and any(k.startswith("optimizer.state.") for k in tensors)


def test_resume_with_epochs_below_the_checkpoint_is_an_error(tmp_path):
    run(make_model(False), "adam", epochs=2, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs >= 2"):
        run(make_model(False), "adam", epochs=1, resume=tmp_path)
    h = run(make_model(False), "adam", epochs=2, resume=tmp_path)  # nothing left to do
    assert h.epochs == [1, 2]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(make_model(False), "adam", epochs=2, resume=tmp_path / "missing")
    with pytest.raises(ValueError, match="different model"):
        nl.fit(nn.Linear(2, 2), (X, Y), loss="cross_entropy", epochs=3, batch_size=32, resume=tmp_path)
    with pytest.raises(ValueError, match="different optimizer.*Adam"), pytest.warns(UserWarning):
        nl.fit(make_model(False), (X, Y), loss="cross_entropy", optimizer="lbfgs", epochs=3, batch_size=32,
               seed=7, resume=tmp_path)
    with pytest.warns(UserWarning, match="batch_size: 32 -> 16"):
        nl.fit(make_model(False), (X, Y), loss="cross_entropy", epochs=3, batch_size=16, resume=tmp_path)


def test_corrupted_tensor_file_is_detected(tmp_path):
    run(make_model(False), "adam", epochs=1, checkpoint_dir=tmp_path)
    f = tmp_path / "state-epoch0001.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("fail_on", ["tensors", "json"])
def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, fail_on):
    real_replace = _io.os.replace

    def flaky_replace(src, dst):
        name = str(dst)
        if "epoch0002" in name and fail_on == "tensors" or name.endswith("checkpoint.json") and \
                fail_on == "json" and "epoch0002" in _written[-1]:
            raise OSError("disk full (simulated)")
        _written.append(name)
        return real_replace(src, dst)

    _written: list[str] = []
    monkeypatch.setattr(_io.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="simulated"):
        run(make_model(False), "adam", epochs=3, checkpoint_dir=tmp_path)
    monkeypatch.setattr(_io.os, "replace", real_replace)

    ckpt = load_checkpoint(tmp_path)  # the epoch-1 checkpoint, complete and verified
    assert ckpt.epoch == 1 and len(ckpt.meta["history"]["epochs"]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file
    # and training resumes from it to the same end as an uninterrupted run
    full_model, resumed_model = make_model(False), make_model(False, seed=3)
    full = run(full_model, "adam", epochs=3)
    resumed = run(resumed_model, "adam", epochs=3, resume=tmp_path, checkpoint_dir=tmp_path)
    assert resumed.as_dict() == full.as_dict()
    assert all(torch.equal(a, b) for a, b in zip(full_model.parameters(), resumed_model.parameters()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "state-epoch0003.safetensors"]


def test_resume_with_a_users_shuffling_dataloader_and_no_seed(tmp_path):
    # a DataLoader(shuffle=True) draws its order from the global torch RNG, which the checkpoint
    # restores; with seed=None the run is random, but resuming twice from one checkpoint agrees
    def loader():
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16,
                                           shuffle=True)

    nl.fit(make_model(True), loader(), loss="cross_entropy", epochs=2, checkpoint_dir=tmp_path)
    runs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        m = make_model(True, seed=seed)
        h = nl.fit(m, loader(), loss="cross_entropy", epochs=4, resume=tmp_path)
        runs.append((h.as_dict(), [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))

    # with a seed, the user's shuffling DataLoader also resumes bit for bit
    full_model = make_model(True)
    full = nl.fit(full_model, loader(), loss="cross_entropy", epochs=4, seed=3)
    ck = tmp_path / "seeded"
    nl.fit(make_model(True), loader(), loss="cross_entropy", epochs=2, seed=3, checkpoint_dir=ck)
    m = make_model(True, seed=8)
    h = nl.fit(m, loader(), loss="cross_entropy", epochs=4, seed=3, resume=ck)
    assert h.as_dict() == full.as_dict()
    assert all(torch.equal(a, b) for a, b in zip(full_model.parameters(), m.parameters()))


def test_checkpoint_writer_runs_one_write_at_a_time_and_reraises_failures(tmp_path):
    from nnlab.training.checkpoint import CheckpointWriter

    order: list[int] = []
    w = CheckpointWriter()
    for i in range(4):
        w.submit(lambda i=i: order.append(i), "here")
    w.wait()
    assert order == [0, 1, 2, 3]

    def boom():
        raise OSError("disk full (simulated)")

    w.submit(boom, str(tmp_path))
    with pytest.raises(OSError, match="simulated") as info:
        w.wait()
    assert str(tmp_path) in " ".join(getattr(info.value, "__notes__", []))
    w.wait()  # the error is raised once
    w.submit(lambda: order.append(4), "here")
    w.close()  # waits for the write, then ends the thread
    assert order == [0, 1, 2, 3, 4] and w._thread is None


def test_fit_returns_with_its_last_checkpoint_on_disk(tmp_path):
    """The files are written in the background, but fit returns only once they are complete."""
    model = make_model(False)
    run(model, "adam", epochs=3, checkpoint_dir=tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.epoch == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ckpt.model_state().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "state-epoch0003.safetensors"]


def test_packed_tensors_file_reads_back_like_safetensors_own(tmp_path):
    """The one-copy serialiser (a reusable buffer) writes files safetensors reads back exactly,
    for every dtype it lays out, 0-d and empty tensors, non-contiguous sources; a changed set of
    tensors gets a new layout, an unchanged one reuses the buffer."""
    from safetensors.torch import load

    from nnlab.training._pack import Packer, packable

    g = torch.Generator().manual_seed(0)
    tensors = {
        "a.f64": torch.randn(3, 5, dtype=torch.float64, generator=g),
        "b.f32": torch.randn(7, 4, generator=g).t(),  # non-contiguous
        "c.bf16": torch.randn(5, generator=g).to(torch.bfloat16),
        "d.f16": torch.randn(3, generator=g).half(),
        "e.i64": torch.arange(5),
        "f.i32": torch.arange(3, dtype=torch.int32),
        "g.u8": torch.tensor([1, 2, 255], dtype=torch.uint8),
        "h.bool": torch.tensor([True, False, True]),
        "i.step": torch.tensor(3.0),  # 0-d, like Adam's step
        "j.empty": torch.zeros(0, 4),
        "k.odd": torch.randn(1, generator=g),
    }
    assert packable(tensors)
    p = Packer()
    back = load(bytes(p.pack(tensors)))
    assert back.keys() == tensors.keys()
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), k
    buf = p._buffer
    tensors["a.f64"].add_(1.0)
    again = load(bytes(p.pack(tensors)))
    assert p._buffer is buf and torch.equal(again["a.f64"], tensors["a.f64"])
    tensors["l.new"] = torch.ones(2, 2)
    assert torch.equal(load(bytes(p.pack(tensors)))["l.new"], torch.ones(2, 2)) and p._buffer is not buf
    assert not packable({"c": torch.zeros(2, dtype=torch.complex64)})


def test_background_checkpoint_is_the_state_at_save_time(tmp_path):
    """The snapshot is taken before save_checkpoint returns: training on in place does not change
    what is written (the buffer is refilled only after the previous write finished)."""
    from nnlab.training.checkpoint import CheckpointWriter, save_checkpoint

    model = make_model(False)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 2)).sum().backward()
    opt.step()
    w = CheckpointWriter()
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "a", model=model, optimizer=opt, epoch=1, history={}, config={},
                    shuffle_seed=0, writer=w)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    save_checkpoint(tmp_path / "b", model=model, optimizer=opt, epoch=2, history={}, config={},
                    shuffle_seed=0, writer=w)
    w.close()
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert all(torch.equal(a.model_state()[k], v) for k, v in expected.items())
    assert all(torch.equal(b.model_state()[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(b.model_state()[k], v + 1) for k, v in expected.items())
    assert torch.equal(a.optimizer_state()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_background_checkpoint_json_is_the_state_at_save_time(tmp_path):
    """The JSON is built on the writer thread, later: what it holds (History, config, optimiser
    hyper-parameters, numpy's and Python's RNG states) is still the state at save time."""
    import random

    import numpy as np

    from nnlab.training.checkpoint import CheckpointWriter, save_checkpoint

    class Held(CheckpointWriter):  # runs the disk stage only when asked, after training went on
        def submit(self, fn, where=""):
            self.held = fn

    model = make_model(False)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 2)).sum().backward()
    opt.step()
    np_state, py_state = np.random.get_state(), random.getstate()
    history, config = {"train_loss": [0.5]}, {"lr": 0.01}
    w = Held()
    save_checkpoint(tmp_path, model=model, optimizer=opt, epoch=1, history=history, config=config,
                    shuffle_seed=3, writer=w)
    np.random.rand(5), random.random()
    history["train_loss"].append(0.25)
    config["lr"] = 1.0
    opt.param_groups[0]["lr"] = 1.0
    opt.param_groups[0]["betas"] = (0.1, 0.2)
    w.held()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.meta["history"] == {"train_loss": [0.5]} and ckpt.meta["config"] == {"lr": 0.01}
    group = ckpt.optimizer_state()["param_groups"][0]
    assert group["lr"] == 0.01 and tuple(group["betas"]) == (0.9, 0.999)
    assert ckpt.meta["rng"]["numpy"][1] == np_state[1].tolist()
    assert ckpt.meta["rng"]["python"][1] == list(py_state[1]) and ckpt.meta["rng"]["shuffle"] == {"seed": 3}
