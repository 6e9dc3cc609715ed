"""The L-BFGS loop of the symbolic candidates (nnlab.symbolic.train.train_lbfgs)."""
import torch
from torch import nn

from nnlab.symbolic.train import train_lbfgs


class _Refuses(nn.Module):
    """y = w·x whose forward refuses |w| > 3 as a deep KAN's next layer refuses an overflowed input."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5], dtype=torch.float64))

    def forward(self, x):
        if float(self.w.detach().abs()) > 3:
            raise ValueError("KANLayer input contains NaN/inf; clean or drop those rows first")
        return x * self.w


def test_a_step_the_model_refuses_stops_training_at_the_last_good_weights():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    m = _Refuses()
    loss = train_lbfgs(m, x, 100 * x, steps=50)  # the target needs w = 100: a step leaves the range
    assert abs(float(m.w.detach())) <= 3 and torch.isfinite(torch.tensor(loss))
