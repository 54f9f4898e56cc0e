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


def item_block(device: torch.device, n_items: int) -> int:
    """Items per block for the blockwise full-catalogue products: small enough to stay in a CPU's cache; on a GPU
    one block (the whole catalogue), since there kernel launches, not memory passes, are the cost."""
    return 2048 if device.type == "cpu" else n_items


def empty_histories(states: torch.Tensor, n_items: int) -> torch.Tensor:
    """[B] bool: the histories that are all padding (a history that starts with padding is all padding)."""
    return states[:, 0] == n_items


def extends(longer: torch.Tensor, longer_len: torch.Tensor, shorter: torch.Tensor, shorter_len: torch.Tensor) -> torch.Tensor:
    """[B] bool, row by row: `longer` is a longer history that starts with `shorter`'s items. For a causal encoder
    the state of `shorter` is then the output of `longer`'s pass at position shorter_len - 1."""
    columns = torch.arange(shorter.size(1), device=shorter.device)
    agree = (longer == shorter) | (columns >= shorter_len.unsqueeze(1))
    return agree.all(1) & (longer_len > shorter_len)


def state_at(sequence: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Output of a [B, T, D] sequence at position lengths - 1 (lengths >= 1; an empty history has length 1)."""
    B, T, D = sequence.shape
    rows = torch.arange(B, device=sequence.device) * T + (lengths - 1)
    return sequence.reshape(B * T, D).index_select(0, rows)  # a row gather: cheaper than gather() with a [B, 1, D] index


class Dropout(nn.Module):
    """Inverted dropout (keep with probability 1 - p, scale by 1 / (1 - p)), cheaper on CPUs than nn.Dropout.

    PyTorch's CPU dropout draws one random number per element (~10 ns each: a fifth of a SASRec training step at
    paper scale). Here each 64-bit draw gives four 16-bit uniform integers, so p is applied up to 1/65536; on GPUs
    the fused nn.functional.dropout is used.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability {p} must be in [0, 1)")
        self.p = p
        self.threshold = -32768 + round(p * 65536)  # keep when the signed 16-bit draw is >= this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        keep = words.view(torch.int16)[:n].view_as(x) >= self.threshold
        return torch.where(keep, x * (1.0 / (1.0 - self.p)), 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}"
