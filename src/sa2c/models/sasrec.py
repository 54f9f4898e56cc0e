"""SASRec encoder (Kang & McAuley): one causal self-attention block, as in the authors' TensorFlow code.

Item + position embeddings, dropout, padding zeroed; attention whose queries are layer-normed (keys are not), padded
keys and future positions masked, residual to the normed queries; a position-wise feed-forward (two 1x1 convs,
ReLU between, dropout after each) with a residual on its layer-normed input; padding zeroed; final layer norm. The
state is the output at len_state - 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from sa2c.models.common import Dropout, item_embedding, padding_mask, state_at

# The authors' code masks with a large finite negative (-2**32 + 1), not -inf: a query with no visible key (the
# all-padding empty history) then gets uniform weights instead of NaN, and is zeroed by the query mask anyway.
MASKED = -(2.0**32) + 1


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor,
                query_positions: torch.Tensor | None = None) -> torch.Tensor:
        """queries [B, Q, D] at `query_positions` [B, Q] (None: every position, Q = T); keys [B, T, D];
        key_mask [B, T, 1] (1 = real item). Each query sees the real keys at or before its position."""
        T = keys.size(1)
        key_positions = torch.arange(T, device=keys.device)
        if query_positions is None:
            future = key_positions.unsqueeze(0) > key_positions.unsqueeze(1)  # [T, T]
            query_mask = key_mask
        else:
            future = key_positions > query_positions.unsqueeze(-1)  # [B, Q, T]
            query_mask = key_mask.gather(1, query_positions.unsqueeze(-1))  # [B, Q, 1]
        scores = torch.bmm(self.query(queries), self.key(keys).transpose(1, 2)) * self.scale  # [B, Q, T]
        hidden = (key_mask.squeeze(-1) == 0).unsqueeze(1) | future
        weights = torch.softmax(scores.masked_fill(hidden, MASKED), dim=-1)
        weights = self.dropout(weights * query_mask)  # query masking: padded queries attend to nothing
        return torch.bmm(weights, self.value(keys)) + queries  # residual to the (normed) queries


class SASRecEncoder(nn.Module):
    causal = True  # the output at position t depends on positions <= t only (see evaluation.encode)
    uses_dropout = True

    def __init__(self, n_items: int, history: int, dim: int = 64, dropout: float = 0.1):
        super().__init__()
        self.n_items = n_items
        self.embedding = item_embedding(n_items, dim)
        self.position = nn.Embedding(history, dim)
        nn.init.normal_(self.position.weight, 0.0, 0.01)
        self.input_dropout = Dropout(dropout)
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn1 = nn.Linear(dim, dim)  # a 1x1 convolution over positions is a linear map per position
        self.ffn2 = nn.Linear(dim, dim)
        self.ffn_dropout = Dropout(dropout)
        self.final_norm = nn.LayerNorm(dim)
        self.output_dim = dim

    def _embed(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = padding_mask(states, self.n_items)
        positions = torch.arange(states.size(1), device=states.device)
        return self.input_dropout(self.embedding(states) + self.position(positions)) * mask, mask

    def _position_wise(self, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        normed = self.ffn_norm(seq)
        seq = normed + self.ffn_dropout(self.ffn2(self.ffn_dropout(F.relu(self.ffn1(normed)))))
        return self.final_norm(seq * mask)

    def sequence(self, states: torch.Tensor) -> torch.Tensor:
        """Outputs at every position, [B, T, D]."""
        seq, mask = self._embed(states)
        seq = self.attention(self.attention_norm(seq), seq, mask)
        return self._position_wise(seq, mask)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The output at len_state - 1, i.e. `state_at(self.sequence(states), lengths)`, with every step after the
        keys and values computed at that one position only (the other queries and their feed-forward passes
        cannot reach it): about half the arithmetic of the full sequence."""
        seq, mask = self._embed(states)
        last = (lengths - 1).unsqueeze(1)  # [B, 1]
        query = self.attention_norm(state_at(seq, lengths).unsqueeze(1))  # [B, 1, D]
        out = self.attention(query, seq, mask, query_positions=last)
        return self._position_wise(out, mask.gather(1, last.unsqueeze(-1))).squeeze(1)
