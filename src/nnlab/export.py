r"""Models that leave nnlab: ONNX (for onnxruntime and every ONNX runtime) and ``torch.export`` files.

``nl.export.onnx(model, example_input, path)`` writes any exportable ``nn.Module`` (MLPs,
residual MLPs, an ``nn.Sequential`` with a normalisation layer in front, KANs, ...) as an ONNX
graph whose batch dimension is free; ``nl.export.compare_onnx`` runs it with onnxruntime and
returns the largest absolute difference from torch.

**KANs.** A KAN layer's training kernel is a custom autograd function with a native C part and
data-dependent input checks, which no exporter can trace. :func:`exportable` therefore swaps each
:class:`~nnlab.kan.KANLayer` for :class:`ExportKANLayer`, the same maths in plain tensor ops
(lecture §6.2):

.. math::
   y_o = \sum_i \Big( m_{o,i} w^s_{o,i} \sum_j c_{o,i,j} B_j(x_i) + m_{o,i} w^b_{o,i} b(x_i) \Big)
       = F(x)\,W^\top,

with the dense Cox–de Boor basis B (comparisons, products and sums only) and the packed weight
W of :func:`nnlab.kan.kernel.layer_weights`: one matrix product per layer.

``nl.export.program(model, example_input, path)`` saves a ``torch.export`` program (``.pt2``;
``torch.export.load(path).module()`` runs it without nnlab). TorchScript is not offered: torch
2.13 deprecates ``torch.jit.trace``/``script`` in favour of ``torch.export``.

Export needs the ``onnx``, ``onnxscript`` and ``onnxruntime`` packages:
``pip install 'nnlab[export]'``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ._io import atomic_path

from .kan import spline
from .kan.base import resolve_base
from .kan.kernel import layer_weights
from .kan.layer import KANLayer

__all__ = ["onnx", "program", "exportable", "compare_onnx", "ExportKANLayer", "ExportError"]


class ExportError(ValueError):
    """The model cannot be exported (the message names the model type and the reason)."""


class ExportKANLayer(nn.Module):
    """A KAN layer as plain tensor ops (dense Cox–de Boor basis and one matmul); same function."""

    def __init__(self, layer: KANLayer) -> None:
        super().__init__()
        self.k = layer.k
        self.base = layer.base
        self.register_buffer("knots", layer.knots.detach().clone())
        W = layer_weights(layer.coef, layer.scale_base, layer.scale_spline, layer.mask).detach()
        # (out, K+1, in) -> (out, in·(K+1)), matching features laid out input by input
        self.register_buffer("weight", W.transpose(1, 2).reshape(W.shape[0], -1).clone())
        self.symbolic = copy.deepcopy(layer.symbolic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in) -> (batch, out)."""
        basis = spline.cox_de_boor(x, self.knots, self.k)  # (batch, in, K)
        bfn, _ = resolve_base(self.base)
        feats = torch.cat([basis, bfn(x).unsqueeze(-1)], dim=-1)  # (batch, in, K+1)
        y = feats.reshape(x.shape[0], -1) @ self.weight.t()
        if self.symbolic is not None:
            y = y + self.symbolic(x)
        return y


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every KAN layer replaced by :class:`ExportKANLayer`."""
    if not isinstance(model, nn.Module):
        raise ExportError(f"cannot export a {type(model).__name__}: nl.export takes a torch.nn.Module "
                          "(for a SymbolicRegressor, export its .model_ or use its formula)")
    m = copy.deepcopy(model).eval()
    if isinstance(m, KANLayer):
        return ExportKANLayer(m).eval()
    for name, child in list(m.named_modules()):
        for cname, sub in list(child.named_children()):
            if isinstance(sub, KANLayer):
                setattr(child, cname, ExportKANLayer(sub).eval())
    return m


def _example(model: nn.Module, example_input: Any) -> torch.Tensor:
    x = torch.as_tensor(example_input)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"example_input must be a batch (n, features...) with n >= 1, got shape "
                         f"{tuple(x.shape)}")
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    if x.is_floating_point() and p is not None:
        x = x.to(dtype=p.dtype, device=p.device)
    if x.shape[0] == 1:  # a batch of 1 would be specialised away: export with 2 rows
        x = torch.cat([x, x])
    return x


def _reason(e: BaseException) -> str:
    """The most specific one-line reason an exporter gives."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    return text[:240]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's exporter chatter (graph dumps, progress lines, registry notes, warnings)."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _export_program(model: nn.Module, x: torch.Tensor) -> Any:
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet():
            return torch.export.export(model, (x,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as e:  # every exporter failure becomes one line naming the model
        raise ExportError(f"cannot export {type(model).__name__}: {_reason(e)}") from None


def onnx(model: nn.Module, example_input: Any, path: str | os.PathLike, opset: int = 18) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically); input ``"input"``, output ``"output"``.

    Args:
        model: an ``nn.Module`` taking one tensor batch; KAN layers go through
            :func:`exportable`.
        example_input: a batch like the real inputs (only shapes and dtype matter; the batch
            dimension stays free in the graph).
        path: the ``.onnx`` file to write.
        opset: the ONNX operator set.

    Raises :class:`ExportError` (a ``ValueError``) when the model cannot be exported.
    """
    m = exportable(model)
    x = _example(m, example_input)
    ep = _export_program(m, x)
    path = Path(path)
    try:
        with atomic_path(path) as tmp, _quiet():
            torch.onnx.export(ep, (x,), tmp, input_names=["input"], output_names=["output"],
                              opset_version=opset, dynamo=True, verbose=False, external_data=False)
    except ImportError as e:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({e}): pip install 'nnlab[export]'") \
            from None
    except Exception as e:
        raise ExportError(f"cannot export {type(model).__name__} to ONNX: {_reason(e)}") from None
    return path


def program(model: nn.Module, example_input: Any, path: str | os.PathLike) -> Path:
    """Save a ``torch.export`` program (``.pt2``) of ``model``; load with ``torch.export.load``."""
    m = exportable(model)
    ep = _export_program(m, _example(m, example_input))
    path = Path(path)
    with atomic_path(path, suffix=".tmp.pt2") as tmp, _quiet():
        torch.export.save(ep, tmp)
    return path


def compare_onnx(path: str | os.PathLike, model: nn.Module, inputs: Any) -> float:
    """max |onnxruntime(path)(inputs) − model(inputs)| on ``inputs`` (the oracle check)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("compare_onnx needs onnxruntime: pip install 'nnlab[export]'") from None
    if not Path(path).is_file():  # else onnxruntime's NO_SUCHFILE error from deep inside it
        raise FileNotFoundError(f"no ONNX file at {path}")
    x = torch.as_tensor(inputs)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.detach().cpu().numpy()})[0]
    with torch.no_grad():
        want = model.eval()(x).detach().cpu().numpy()
    if got.shape != want.shape:
        raise ValueError(f"the ONNX model returns shape {got.shape}, torch {want.shape}")
    return float(abs(got.astype("float64") - want.astype("float64")).max())
