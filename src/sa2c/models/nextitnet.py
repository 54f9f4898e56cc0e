"""NextItNet encoder (Yuan et al.): residual blocks of dilated causal convolutions.

Six blocks with dilations 1, 2, 1, 2, 1, 2; each block = causal conv (kernel 3, dilation d) -> layer norm -> ReLU ->
causal conv (dilation 2d) -> layer norm -> ReLU, added to the block's input; padding positions are re-zeroed after
each block. The state is the output at len_state - 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sa2c.models.common import item_embedding, padding_mask, state_at


class CausalConv(nn.Module):
    """Causal dilated convolution over time: y_t = sum_j W_j x_{t - (kernel - 1 - j) * dilation} + b.

    Written as one matrix product over the stacked shifted inputs ([B, T, kernel * C] x [kernel * C, C]): the
    same arithmetic as a Conv1d with left padding, but several times faster on CPUs for these small shapes.
    """

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.linear = nn.Linear(kernel * channels, channels)  # same fan-in (and default init) as the Conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, C]
        T = x.size(1)
        padded = F.pad(x, (0, 0, (self.kernel - 1) * self.dilation, 0))  # zeros before t = 0: only the past is seen
        taps = [padded[:, j * self.dilation : j * self.dilation + T] for j in range(self.kernel)]
        return self.linear(torch.cat(taps, dim=-1))

    def at(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """`self(x)` at `positions` [B, P] (each >= 0) only: [B, P, C]."""
        B, T, C = x.shape
        pad = (self.kernel - 1) * self.dilation
        padded = F.pad(x, (0, 0, pad, 0)).reshape(-1, C)  # [B * (T + pad), C]
        taps = positions.unsqueeze(-1) + torch.arange(self.kernel, device=x.device) * self.dilation  # [B, P, kernel]
        rows = taps + (torch.arange(B, device=x.device) * (T + pad)).view(B, 1, 1)
        return self.linear(padded.index_select(0, rows.flatten()).view(B, positions.size(1), self.kernel * C))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv1 = CausalConv(channels, kernel, dilation)
        self.norm1 = nn.LayerNorm(channels)
        self.conv2 = CausalConv(channels, kernel, 2 * dilation)
        self.norm2 = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, C]
        h = F.relu(self.norm1(self.conv1(x)))
        h = F.relu(self.norm2(self.conv2(h)))
        return x + h

    def last(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`self(x)` at position lengths - 1 only, [B, C]: conv2 there, and conv1 at the positions it reads."""
        last = lengths - 1
        reads = last.unsqueeze(1) - torch.arange(self.conv2.kernel - 1, -1, -1, device=x.device) * self.conv2.dilation
        h = F.relu(self.norm1(self.conv1.at(x, reads.clamp(min=0))))  # [B, kernel, C], oldest first
        h = h * (reads >= 0).unsqueeze(-1).to(h.dtype)  # before t = 0 conv2 reads its causal zero padding
        out = F.relu(self.norm2(self.conv2.linear(h.flatten(1))))
        return state_at(x, lengths) + out


class NextItNetEncoder(nn.Module):
    causal = True  # the output at position t depends on positions <= t only (see evaluation.encode)
    uses_dropout = False

    def __init__(self, n_items: int, history: int, dim: int = 64, dropout: float = 0.1,
                 dilations: tuple[int, ...] = (1, 2, 1, 2, 1, 2), kernel: int = 3):
        super().__init__()
        self.n_items = n_items
        self.embedding = item_embedding(n_items, dim)
        self.blocks = nn.ModuleList(ResidualBlock(dim, kernel, d) for d in dilations)
        self.output_dim = dim

    def sequence(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs at every position, [B, T, D]."""
        mask = padding_mask(states, self.n_items)
        x = self.embedding(states) * mask
        for block in self.blocks:
            x = block(x) * mask
        return x

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`state_at(self.sequence(states), lengths)`, with the last block computed only where the state needs it."""
        mask = padding_mask(states, self.n_items)
        x = self.embedding(states) * mask
        for block in self.blocks[:-1]:
            x = block(x) * mask
        return self.blocks[-1].last(x, lengths) * state_at(mask, lengths)
