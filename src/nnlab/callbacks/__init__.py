"""Ready-made ``nl.fit`` callbacks, as PyTorch Lightning users know them.

* :class:`EarlyStopping`: stop when a monitored metric has not improved for ``patience`` epochs;
* :class:`ModelCheckpoint`: keep the latest and the best checkpoints (``last/``, ``best/``);
* :class:`TensorBoard`: scalars (losses, accuracy, learning rate, per-layer gradient norms) and,
  for a KAN, its edge figure, written with ``torch.utils.tensorboard``;
* :class:`CSVLogger`: one CSV row per epoch.

Each follows the callback contract of :mod:`nnlab.training.callbacks`. Under DDP every rank
runs them (metrics are already averaged over ranks) and only rank 0 writes files.
"""
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .model_checkpoint import ModelCheckpoint
from .tensorboard import TensorBoard

__all__ = ["EarlyStopping", "ModelCheckpoint", "TensorBoard", "CSVLogger"]
