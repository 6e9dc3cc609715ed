"""Shared test settings: one intra-op thread per test process (pytest-xdist runs two
processes on the 2-core CI machine; more threads were slower and noisier there) and a
headless matplotlib backend. (No flush-denormal here: hypothesis needs IEEE subnormals.)"""
import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
