"""Shared test settings: one intra-op thread per test process (pytest-xdist runs two
processes on the 2-core CI machine; more threads were slower and noisier there), no
denormal slow-downs, and a headless matplotlib backend."""
import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
torch.set_flush_denormal(True)
