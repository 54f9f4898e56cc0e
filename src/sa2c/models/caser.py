"""Caser encoder (Tang & Wang): horizontal and vertical convolutions over the embedded history.

16 horizontal filters for each height in {2, 3, 4} spanning the full embedding width (ReLU, max-pooled over time)
and 1 vertical filter spanning all positions (a learned weighted sum over time per dimension, ReLU). The state is
their concatenation (48 + 64 = 112 values) after dropout. Caser ignores len_state; padding embeddings are zeroed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sa2c.models.common import Dropout, item_embedding, padding_mask


class CaserEncoder(nn.Module):
    causal = False  # pools over all positions: every prediction needs its own pass
    uses_dropout = True

    def __init__(self, n_items: int, history: int, dim: int = 64, dropout: float = 0.1,
                 heights: tuple[int, ...] = (2, 3, 4), n_horizontal: int = 16, n_vertical: int = 1):
        super().__init__()
        self.n_items = n_items
        self.embedding = item_embedding(n_items, dim)
        # A horizontal filter of height h over the full width is a 1-D convolution over time with `dim` channels.
        self.horizontal = nn.ModuleList(nn.Conv1d(dim, n_horizontal, h) for h in heights if h <= history)
        self.vertical = nn.Conv1d(history, n_vertical, 1)  # weights over the `history` positions
        self.dropout = Dropout(dropout)
        self.output_dim = n_horizontal * len(self.horizontal) + n_vertical * dim

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(states) * padding_mask(states, self.n_items)  # [B, T, D]
        channels = emb.transpose(1, 2)  # [B, D, T]
        pooled = [F.relu(conv(channels)).amax(dim=2) for conv in self.horizontal]  # each [B, 16]
        vertical = F.relu(self.vertical(emb)).flatten(1)  # [B, n_vertical * D]
        return self.dropout(torch.cat(pooled + [vertical], dim=1))
