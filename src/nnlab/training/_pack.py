"""Serialise a checkpoint's tensors as a safetensors file in one copy, into a reusable buffer.

The safetensors format (https://huggingface.co/docs/safetensors) is an 8-byte little-endian
header length N, a JSON header of N bytes (``{name: {"dtype", "shape", "data_offsets": [begin,
end]}}``, offsets relative to the data), then the tensors' bytes back to back, row-major, without
gaps. :class:`Packer` lays that file out in one ``uint8`` tensor and copies each tensor straight
into its slice (from any device); the buffer *is* the file's content, handed to the writer as a
``memoryview``. The layout and the buffer are kept while the set of names, dtypes and shapes
stays the same (every epoch of a run, once the optimiser state exists), so an epoch's snapshot is
one copy per tensor into memory already allocated, instead of a clone of every tensor and a
second copy when ``safetensors.torch.save`` builds its ``bytes``.

Tensors are ordered by decreasing element size, then by name, so every slice is aligned for its
dtype; the header is padded with spaces to a multiple of 8 bytes (as safetensors itself pads).
Files read back with ``safetensors.torch.load`` exactly like ``safetensors.torch.save``'s.
"""
from __future__ import annotations

import json
import struct

import torch

__all__ = ["Packer", "packable"]

_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
           torch.uint8: "U8", torch.bool: "BOOL"}


def packable(tensors: dict[str, torch.Tensor]) -> bool:
    """Every dtype has a safetensors name here (else use ``safetensors.torch.save``)."""
    return all(t.dtype in _DTYPES for t in tensors.values())


class Packer:
    """Holds one buffer and its layout; :meth:`pack` fills it (the previous content is lost, so
    pack again only once the previous file is written)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._buffer: torch.Tensor | None = None
        self._views: list[torch.Tensor] = []
        self._names: list[str] = []

    def pack(self, tensors: dict[str, torch.Tensor]) -> memoryview:
        """The safetensors file of ``tensors`` (a view of the buffer, valid until the next pack)."""
        key = tuple((k, t.dtype, tuple(t.shape)) for k, t in tensors.items())
        if key != self._key:
            self._layout(tensors)
            self._key = key
        srcs = [tensors[k].detach() for k in self._names]
        if srcs:
            try:
                torch._foreach_copy_(self._views, srcs)
            except (RuntimeError, TypeError):  # mixed devices the fused copy does not take
                for dst, src in zip(self._views, srcs):
                    dst.copy_(src)
        return memoryview(self._buffer.numpy()).cast("B")  # type: ignore[union-attr]

    def _layout(self, tensors: dict[str, torch.Tensor]) -> None:
        names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
        header: dict[str, dict] = {}
        offset = 0
        for k in names:
            t = tensors[k]
            nbytes = t.numel() * t.element_size()
            header[k] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                         "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)
        start = 8 + len(text)
        buf = torch.empty(start + offset, dtype=torch.uint8)
        buf[:start] = torch.frombuffer(bytearray(struct.pack("<Q", len(text)) + text), dtype=torch.uint8)
        views = []
        for k in names:
            t = tensors[k]
            b, e = header[k]["data_offsets"]
            views.append(buf[start + b:start + e].view(t.dtype).view(t.shape))
        self._buffer, self._views, self._names = buf, views, names
