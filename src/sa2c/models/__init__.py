"""The shared base model G (one of four encoders) with the two heads of the paper: Q head and supervised head."""

from __future__ import annotations

import torch
from torch import nn

from sa2c.models.caser import CaserEncoder
from sa2c.models.common import item_block
from sa2c.models.gru import GRUEncoder
from sa2c.models.nextitnet import NextItNetEncoder
from sa2c.models.sasrec import SASRecEncoder

ENCODERS = {"gru": GRUEncoder, "caser": CaserEncoder, "nextitnet": NextItNetEncoder, "sasrec": SASRecEncoder}


def build_encoder(name: str, n_items: int, history: int, dim: int, dropout: float) -> nn.Module:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[name](n_items, history, dim=dim, dropout=dropout)


class Head(nn.Linear):
    """Dense layer with bias from the state to one score per item (TF dense default: Glorot-uniform, zero bias)."""

    def __init__(self, state_dim: int, n_items: int):
        super().__init__(state_dim, n_items)
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def argmax(self, state: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """argmax over the catalogue of the scores, in item blocks that stay in cache (no autograd).

        Equals `self(state).argmax(1)` without writing the [B, n] score matrix: a first pass keeps each row's best
        block by its maximum (`amax` is ~10x faster than `max` with indices on CPUs), a second recomputes only that
        block for the row and takes its argmax.
        """
        chunk = chunk or item_block(state.device, self.out_features)
        with torch.no_grad():
            rows = state.size(0)
            best = torch.full((rows,), -torch.inf, dtype=state.dtype, device=state.device)
            best_block = torch.zeros(rows, dtype=torch.long, device=state.device)
            for block, lo in enumerate(range(0, self.out_features, chunk)):
                top = torch.addmm(self.bias[lo : lo + chunk], state, self.weight[lo : lo + chunk].t()).amax(1)
                better = top > best
                best = torch.where(better, top, best)
                best_block.masked_fill_(better, block)
            index = torch.empty(rows, dtype=torch.long, device=state.device)
            for block in best_block.unique().tolist():
                members = (best_block == block).nonzero().squeeze(1)
                lo = block * chunk
                scores = torch.addmm(self.bias[lo : lo + chunk], state[members], self.weight[lo : lo + chunk].t())
                index[members] = scores.argmax(1) + lo
            return index

    def at(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Scores of one action per row, [B], without the full-catalogue product (a gather and a dot product)."""
        return (state * self.weight[actions]).sum(-1) + self.bias[actions]


class RecommenderNetwork(nn.Module):
    """Encoder + the heads a method needs: `q` (Q-values) and/or `supervised` (next-item logits)."""

    def __init__(self, encoder: str, n_items: int, history: int, dim: int, dropout: float, heads: tuple[str, ...]):
        super().__init__()
        self.encoder = build_encoder(encoder, n_items, history, dim, dropout)
        state_dim = self.encoder.output_dim
        self.q = Head(state_dim, n_items) if "q" in heads else None
        self.supervised = Head(state_dim, n_items) if "supervised" in heads else None

    def head(self, name: str) -> Head:
        head = self.q if name == "q" else self.supervised
        if head is None:
            raise ValueError(f"this network has no {name} head")
        return head

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(states, lengths)
