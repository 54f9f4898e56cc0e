"""GRU encoder (Hidasi et al.): one GRU layer; the state is the hidden state after len_state steps."""

from __future__ import annotations

import torch
from torch import nn

from sa2c.models.common import item_embedding, state_at


class GRUEncoder(nn.Module):
    causal = True  # the output at position t depends on positions <= t only (see evaluation.encode)
    uses_dropout = False

    def __init__(self, n_items: int, history: int, dim: int = 64, dropout: float = 0.1):
        super().__init__()
        self.n_items = n_items
        self.embedding = item_embedding(n_items, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.output_dim = dim

    def sequence(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs at every position, [B, T, D]."""
        return self.gru(self.embedding(states))[0]

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # The GRU is causal and histories are right-padded, so the output at len_state - 1 never sees padding:
        # running the full length and gathering equals a packed run, and is faster.
        return state_at(self.sequence(states), lengths)
