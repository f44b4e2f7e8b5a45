"""PyTorch networks behind the deep forecasters: a distributional head shared by all, and the MLP, GRU
and dilated causal TCN bodies that feed it. Everything works in units of the standardized target."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# The t law needs dof > 2 for a finite std; the floor keeps the std from exploding while it learns.
MIN_DOF = 2.5
INITIAL_DOF = 6.0
# Log-scale bounds in target-std units: wide enough for any real spread, tight enough to keep the NLL finite.
LOG_SCALE_BOUNDS = (-7.0, 4.0)


class DistributionHead(nn.Module):
    """Per-row location and log-scale, plus one learned degrees-of-freedom for a Student-t
    (``student_t=False`` gives a Gaussian)."""

    def __init__(self, width: int, student_t: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 2)
        nn.init.zeros_(self.linear.bias)
        self.raw_dof = nn.Parameter(torch.tensor(math.log(math.expm1(INITIAL_DOF - MIN_DOF)))) if student_t else None

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(hidden)
        return out[:, 0], out[:, 1].clamp(*LOG_SCALE_BOUNDS)

    def dof(self) -> torch.Tensor | None:
        """Degrees of freedom of the t law, or None for a Gaussian."""
        return None if self.raw_dof is None else MIN_DOF + F.softplus(self.raw_dof)


def negative_log_likelihood(
    mean: torch.Tensor, log_scale: torch.Tensor, y: torch.Tensor, dof: torch.Tensor | None
) -> torch.Tensor:
    """Mean NLL of ``y`` under location-scale Student-t (or Gaussian when ``dof`` is None)."""
    z = (y - mean) * torch.exp(-log_scale)
    if dof is None:
        return (0.5 * z.square() + log_scale).mean() + 0.5 * math.log(2.0 * math.pi)
    log_norm = torch.lgamma((dof + 1.0) / 2.0) - torch.lgamma(dof / 2.0) - 0.5 * torch.log(dof * math.pi)
    return (log_scale + (dof + 1.0) / 2.0 * torch.log1p(z.square() / dof)).mean() - log_norm


class MLPNet(nn.Module):
    """Feed-forward body over one row of standardized features."""

    def __init__(self, n_inputs: int, hidden: tuple[int, ...], dropout: float, student_t: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = DistributionHead(width, student_t)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x))


class GRUNet(nn.Module):
    """GRU over a (batch, lookback, features) window; the last step's state feeds the head."""

    def __init__(self, n_inputs: int, hidden: int, layers: int, dropout: float, student_t: bool) -> None:
        super().__init__()
        between_layers = dropout if layers > 1 else 0.0
        self.gru = nn.GRU(n_inputs, hidden, num_layers=layers, batch_first=True, dropout=between_layers)
        self.dropout = nn.Dropout(dropout)
        self.head = DistributionHead(hidden, student_t)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.gru(x)
        return self.head(self.dropout(out[:, -1]))


class CausalBlock(nn.Module):
    """One dilated causal convolution with a residual path, evaluated only at the positions the blocks
    above it read (``out_positions``) from the positions the block below produced (``in_positions``).

    Taps before the window start read zeros, as a left-padded convolution would."""

    def __init__(
        self,
        channels_in: int,
        channels: int,
        kernel: int,
        dilation: int,
        in_positions: list[int],
        out_positions: list[int],
    ) -> None:
        super().__init__()
        slot = {p: i for i, p in enumerate(in_positions)}
        pad = len(in_positions)
        taps = [[slot.get(p - j * dilation, pad) for j in range(kernel)] for p in out_positions]
        self.register_buffer("taps", torch.tensor(taps, dtype=torch.long), persistent=False)
        centre = [slot[p] for p in out_positions]
        self.register_buffer("centre", torch.tensor(centre, dtype=torch.long), persistent=False)
        self.linear = nn.Linear(kernel * channels_in, channels)
        self.skip = nn.Linear(channels_in, channels) if channels_in != channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)
        # index_select, not advanced indexing: the same values, and its backward (an index_add) costs a
        # quarter less per training step than the deterministic index_put of advanced indexing.
        taps = padded.index_select(1, self.taps.flatten()).view(x.shape[0], *self.taps.shape, x.shape[2]).flatten(2)
        return F.gelu(self.linear(taps) + self.skip(x.index_select(1, self.centre)))


class TCNNet(nn.Module):
    """Stack of dilated causal convolutions over a (batch, lookback, features) window; the last step feeds
    the head. Receptive field ``1 + (kernel - 1) * sum(dilations)``.

    Only the last step's output is used, so each block is computed just at the positions that reach it
    (a quarter of the full convolution's work for the defaults); the result is the same as a full pass."""

    def __init__(
        self,
        n_inputs: int,
        channels: int,
        kernel: int,
        dilations: tuple[int, ...],
        lookback: int,
        dropout: float,
        student_t: bool,
    ) -> None:
        super().__init__()
        # positions[i] are the steps block i must produce; positions[0] the input steps read.
        positions = [[lookback - 1]]
        for dilation in reversed(dilations):
            below = {p - j * dilation for p in positions[0] for j in range(kernel)}
            positions.insert(0, sorted(p for p in below if p >= 0))
        self.register_buffer("inputs", torch.tensor(positions[0], dtype=torch.long), persistent=False)
        blocks = []
        width = n_inputs
        for i, dilation in enumerate(dilations):
            blocks.append(CausalBlock(width, channels, kernel, dilation, positions[i], positions[i + 1]))
            width = channels
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = DistributionHead(width, student_t)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.blocks(x[:, self.inputs])
        return self.head(self.dropout(out[:, -1]))
