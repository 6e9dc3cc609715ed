"""DDP: two real CPU processes (gloo), with the environment variables torchrun sets.

The processes are forked from the test process (as DataLoader workers are), so they start in
milliseconds instead of re-importing torch; inside them ``fit(distributed=None)`` detects
WORLD_SIZE=2, creates the gloo process group, wraps the model in DistributedDataParallel and
destroys the group at the end, exactly as under ``torchrun --nproc_per_node=2``.

The two ranks must end with identical weights, and those must match a one-process run with the
same global batch. The comparison is exact in design: fit draws the epoch order from
DistributedSampler in both cases (one replica vs two), so global step k averages the gradients
of the same batch_size samples; only the float summation order differs.
"""
import multiprocessing as mp
import os
import socket
import traceback

import pytest
import torch
from torch import nn

import nnlab as nl
from nnlab.training.distributed import DistContext
from nnlab.training.loop import _local_batch

torch.set_num_threads(1)


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 3, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1, generator=g)
    return (X, y), (X[:20] + 0.05, y[:20])


def _train(optimizer, out_dir, rank=None, **kw):
    train, val = _data()
    torch.manual_seed(1 + (rank or 0))  # different weights per rank: DDP broadcasts rank 0's
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    h = nl.fit(model, train, val=val, optimizer=optimizer, lr=0.05, epochs=3, batch_size=16, seed=0,
               progress=False, **kw)
    return model.state_dict(), h.as_dict()


def _rank_main(rank, port, optimizer, out_dir):
    try:
        torch.set_num_threads(1)
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        if os.path.exists("/sys/class/net/lo"):
            os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        state, hist = _train(optimizer, out_dir, rank, checkpoint_dir=os.path.join(out_dir, "ckpt"))
        torch.save({"state": state, "history": hist}, os.path.join(out_dir, f"rank{rank}.pt"))
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_gloo_processes_match_each_other_and_one_process(tmp_path, optimizer):
    ref_state, ref_hist = _train(optimizer, tmp_path, distributed=False)  # one process, same batch
    ctx = mp.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, optimizer, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0]

    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k  # identical across ranks
    assert r0["history"] == r1["history"]  # metrics are all-reduced: every rank sees the same

    for k in ref_state:
        torch.testing.assert_close(r0["state"][k], ref_state[k], rtol=1e-5, atol=1e-6)
    for key in ("train_loss", "val_loss"):
        assert r0["history"][key] == pytest.approx(ref_hist[key], rel=1e-5)
    assert r0["history"]["train_loss"][-1] < r0["history"]["train_loss"][0]
    ckpt = nl.training.load_checkpoint(tmp_path / "ckpt")  # written by rank 0 only
    assert ckpt.epoch == 3 and ckpt.meta["config"]["world_size"] == 2


def test_distributed_true_without_a_launcher_says_how(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        nl.fit(nn.Linear(2, 1), (torch.zeros(4, 2), torch.zeros(4, 1)), epochs=1, distributed=True)
    with pytest.raises(TypeError, match="distributed"):
        nl.fit(nn.Linear(2, 1), (torch.zeros(4, 2), torch.zeros(4, 1)), epochs=1, distributed="yes")


def test_global_batch_is_split_evenly_over_processes():
    ctx = DistContext(enabled=True, rank=0, world=4)
    assert _local_batch(64, ctx) == 16
    assert _local_batch(None, ctx) is None
    with pytest.raises(ValueError, match="divisible by the 4 processes"):
        _local_batch(30, ctx)


@pytest.mark.parametrize("finished, calls", [(True, ["barrier", "destroy"]), (False, ["destroy"])])
def test_teardown_meets_at_a_barrier_before_destroying_after_a_finished_fit(monkeypatch, finished, calls):
    # a rank that closed its gloo connections while a peer was still in the last collective left
    # the peer to abort at exit ("terminate called without an active exception"); after an error
    # the other ranks may never arrive, so no barrier then
    from nnlab.training import distributed as d

    seen = []
    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "barrier", lambda *a, **k: seen.append("barrier"))
    monkeypatch.setattr(d.dist, "destroy_process_group", lambda *a, **k: seen.append("destroy"))
    d.teardown(DistContext(enabled=True, rank=1, world=2, created_group=True), finished)
    assert seen == calls
    seen.clear()
    d.teardown(DistContext(enabled=True, rank=1, world=2, created_group=False), finished)
    assert seen == []  # a group fit did not create is the caller's to destroy
