"""Pieces shared by the encoders: the item embedding and reading the state at position len_state - 1."""

from __future__ import annotations

import torch
from torch import nn


def item_embedding(n_items: int, dim: int) -> nn.Embedding:
    """(n_items + 1) x dim table; row n_items is the padding item. Initialised N(0, 0.01) as in the authors' code."""
    table = nn.Embedding(n_items + 1, dim)
    nn.init.normal_(table.weight, 0.0, 0.01)
    return table


def padding_mask(states: torch.Tensor, n_items: int) -> torch.Tensor:
    """[B, T, 1] float: 1 for real items, 0 for padding."""
    return (states != n_items).unsqueeze(-1).to(torch.get_default_dtype())


def state_at(sequence: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Output of a [B, T, D] sequence at position lengths - 1 (lengths >= 1; an empty history has length 1)."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, sequence.size(-1))
    return sequence.gather(1, index).squeeze(1)
