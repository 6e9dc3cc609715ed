"""A TensorBoard event file written synchronously on the calling thread.

The format is TensorFlow's record file read by TensorBoard's ``EventAccumulator``: each record is
``uint64 length, uint32 masked CRC-32C of the length, the serialised ``Event``, uint32 masked
CRC-32C of the data`` (``tensorboard.summary.writer.record_writer.RecordWriter`` frames it); the
first event carries ``file_version = "brain.Event:2"``; the file name is
``events.out.tfevents.<unix time>.<host>.<pid>.<counter>``, as ``SummaryWriter`` names it.

Why not ``SummaryWriter``: it hands every event to a writer thread, and its ``flush()`` waits for
that thread to drain its queue. A callback that logs once per epoch and flushes so that the
figures are visible during training then pays a thread hand-off per epoch (plus one to start and
one to stop the thread per run): on a busy machine milliseconds of waiting, for a few hundred
bytes. Here ``add_summary`` serialises and frames the event in place and ``flush`` is one
``write`` system call; nothing runs in the background.
"""
from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["EventFile"]

_COUNTER = itertools.count()


class EventFile:
    """Append ``Summary`` protos to a new event file in ``log_dir`` (which must exist)."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event = event_pb2.Event
        name = "events.out.tfevents.%010d.%s.%s.%s" % (time.time(), socket.gethostname(), os.getpid(),
                                                        next(_COUNTER))
        self.path = Path(log_dir) / name
        self._fh = open(self.path, "wb")  # noqa: SIM115 -- closed by close()
        self._records = RecordWriter(self._fh)
        self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def add_summary(self, summary: Any, step: int) -> None:
        """One event holding ``summary`` (a ``Summary`` proto) at ``step``; buffered until ``flush``."""
        self._write(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
