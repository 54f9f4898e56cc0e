"""Top-k evaluation over the full catalogue (SPEC.md, "Evaluation"), batched on tensors.

Every event of an evaluated session is one prediction from its state (the first event too, with its empty history,
unless `eval_empty_state` is off). The head's scores rank the whole catalogue (no filtering of seen items).
Rank 1 is the top; ties are counted against the target (rank = number of items scoring >= the target), so a
constant scorer gets no hits. For k in 5, 10, 20, separately for click and purchase events:

- HR@k = hits / events;  NDCG@k = sum over hits of 1 / log2(rank + 1), divided by events;
- off-policy NDCG@10 = sum over hits of (1 / log2(rank + 1)) / beta(a), divided by sum over all events of 1 / beta(a);
- cumulative reward@k = sum of the rewards of hit events (all events together).

An event type with no events in the split gives `None` ("not defined"), not 0.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from sa2c.config import KS
from sa2c.models.common import empty_histories, extends, item_block

Metrics = dict[str, dict[str, float | int | None]]
ENCODE_SPAN = 8  # batches of events whose states are encoded in one go when prefixes are shared


def prefix_groups(states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs of consecutive rows whose histories extend one another: (last row of each run, run of each row).

    Row i+1 extends row i when it is longer and agrees with row i on row i's first len_state[i] items. In a split
    built from sessions in time order, that is the run of a session's events until its history window starts to
    slide; every history of a run is then a prefix of the run's last one. An empty history (all padding) starts a
    run of its own, as no item equals the padding id.
    """
    if states.size(0) == 0:
        return torch.zeros(0, dtype=torch.long, device=states.device), torch.zeros(0, dtype=torch.long, device=states.device)
    extended = extends(states[1:], lengths[1:], states[:-1], lengths[:-1])  # row i + 1 extends row i
    run_end = torch.cat([~extended, torch.ones(1, dtype=torch.bool, device=states.device)])
    ends = run_end.nonzero().squeeze(1)
    run_of_row = torch.cumsum(run_end, 0) - run_end.long()
    return ends, run_of_row


def encode(network, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`network(states, lengths)` for evaluation, sharing one encoder pass among histories that are prefixes.

    A causal encoder's output at position t depends only on positions <= t, so the state of every history in a
    run of `prefix_groups` is the run's last history's output at position len_state - 1: one sequence pass per
    run instead of one per event (a session's first 10 events share one). The empty histories (all padding) are
    all the same input and get one pass together. Other encoders run once per row.
    """
    encoder = getattr(network, "encoder", None)
    if not getattr(encoder, "causal", False):
        return network(states, lengths)
    empty = empty_histories(states, encoder.n_items)
    if bool(empty.any()) and not bool(empty.all()):
        filled = ~empty
        filled_states = encode(network, states[filled], lengths[filled])
        out = filled_states.new_empty(states.size(0), filled_states.size(1))
        out[filled] = filled_states
        first = int(empty.nonzero()[0, 0])
        out[empty] = encoder.sequence(states[first : first + 1])[0, 0]
        return out
    ends, run_of_row = prefix_groups(states, lengths)
    sequence = encoder.sequence(states[ends])  # [runs, T, D]
    T, D = sequence.shape[1:]
    return sequence.reshape(-1, D).index_select(0, run_of_row * T + (lengths - 1))


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target among all items; ties count against the target; NaN scores rank last."""
    target_scores = scores.gather(1, targets.unsqueeze(1))
    ranks = (scores >= target_scores).sum(dim=1)
    return torch.where(torch.isnan(target_scores.squeeze(1)), scores.size(1), ranks)


@torch.no_grad()
def head_target_ranks(state: torch.Tensor, head, targets: torch.Tensor, chunk: int | None = None,
                      cap: int | None = None) -> torch.Tensor:
    """`target_ranks(head(state), targets)` without writing the [B, n] score matrix.

    Walks the catalogue in blocks of items that stay in cache, counting per row the items that score >= the
    target's score. The target itself is counted exactly once whatever the rounding of the two products. The
    comparison writes 1.0 / 0.0 into the block's own float buffer and sums floats: on CPUs, summing a bool mask is
    several times slower than the product itself.

    With `cap`, a row stops being scanned once more than `cap` items score >= its target: its rank is then only
    known to exceed `cap` and is returned as some value in (cap, n]. Ranks <= cap are exact, so every metric
    with k <= cap is unchanged (evaluation passes cap = max k); rows whose target ranks low leave the scan early.
    """
    n = head.out_features
    chunk = chunk or item_block(state.device, n)
    target_scores = head.at(state, targets)
    ranks = torch.zeros(state.size(0), dtype=torch.float32, device=state.device)
    active = None  # indices of the rows still scanned (None: all of them)
    rows, live_state, live_targets = state.size(0), state, targets
    threshold = target_scores.unsqueeze(1)
    buffer = torch.empty(rows, min(chunk, n), dtype=state.dtype, device=state.device)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        block = buffer[:rows, : hi - lo]
        torch.addmm(head.bias[lo:hi], live_state, head.weight[lo:hi].t(), out=block)
        inside = ((live_targets >= lo) & (live_targets < hi)).nonzero().squeeze(1)
        block[inside, live_targets[inside] - lo] = torch.inf  # the target: counted once
        counts = torch.ge(block, threshold, out=block).sum(1)
        if active is None:
            ranks += counts
        else:
            ranks.index_add_(0, active, counts)
        if cap is not None and hi < n:
            live = (ranks if active is None else ranks[active]) <= cap
            kept = int(live.sum())
            if kept <= 0.75 * rows:  # compact once a quarter of the scanned rows is done
                keep = live.nonzero().squeeze(1)
                active = keep if active is None else active[keep]
                live_state, live_targets, threshold = live_state[keep], live_targets[keep], threshold[keep]
                rows = kept
                if rows == 0:
                    break
    ranks = ranks.to(torch.int64)
    return torch.where(torch.isnan(target_scores), n, ranks)


class MetricAccumulator:
    """Sums of hits, discounted gains and rewards per event type, on the device; `result()` divides."""

    def __init__(self, device: torch.device, reward_click: float, reward_buy: float):
        self.reward_click, self.reward_buy = reward_click, reward_buy
        zeros = lambda: torch.zeros(2, len(KS), dtype=torch.float64, device=device)  # noqa: E731  [event type, k]
        self.hits, self.gains, self.rewards = zeros(), zeros(), zeros()
        self.off_gain = torch.zeros(2, dtype=torch.float64, device=device)
        self.off_norm = torch.zeros(2, dtype=torch.float64, device=device)
        self.counts = torch.zeros(2, dtype=torch.float64, device=device)

    def add(self, ranks: torch.Tensor, is_buy: torch.Tensor, inv_beta: torch.Tensor) -> None:
        event = is_buy.long()  # 0 = click, 1 = purchase
        ranks = ranks.double()
        gain = 1.0 / torch.log2(ranks + 1.0)
        reward = torch.where(is_buy, self.reward_buy, self.reward_click).double()
        ks = torch.tensor(KS, device=ranks.device, dtype=torch.float64)
        hit = (ranks.unsqueeze(1) <= ks).double()  # [N, len(KS)]
        self.hits.index_add_(0, event, hit)
        self.gains.index_add_(0, event, hit * gain.unsqueeze(1))
        self.rewards.index_add_(0, event, hit * reward.unsqueeze(1))
        hit10 = hit[:, KS.index(10)]
        inv_beta = inv_beta.double()
        self.off_gain.index_add_(0, event, hit10 * gain * inv_beta)
        self.off_norm.index_add_(0, event, inv_beta)
        self.counts.index_add_(0, event, torch.ones_like(gain))

    def result(self) -> Metrics:
        hits, gains, rewards = self.hits.cpu().numpy(), self.gains.cpu().numpy(), self.rewards.cpu().numpy()
        off_gain, off_norm, counts = self.off_gain.cpu().numpy(), self.off_norm.cpu().numpy(), self.counts.cpu().numpy()
        out: Metrics = {}
        for e, name in enumerate(("click", "purchase")):
            n = int(counts[e])
            block: dict[str, float | int | None] = {"n": n}
            for j, k in enumerate(KS):
                block[f"hr@{k}"] = float(hits[e, j] / n) if n else None
                block[f"ndcg@{k}"] = float(gains[e, j] / n) if n else None
            block["off_ndcg@10"] = float(off_gain[e] / off_norm[e]) if n else None
            out[name] = block
        out["all"] = {"n": int(counts.sum())}
        for j, k in enumerate(KS):
            out["all"][f"reward@{k}"] = float(rewards[:, j].sum())
        return out


@torch.no_grad()
def evaluate(network, head: str, split: dict[str, torch.Tensor], inv_beta: torch.Tensor, *, batch_size: int,
             reward_click: float, reward_buy: float, rank_cap: int | None = max(KS),
             share_prefixes: bool = True) -> tuple[Metrics, float]:
    """Metrics of one head on one split (tensors already on the device); returns (metrics, events per second).

    Ranks are exact up to `rank_cap` (the largest k, enough for every metric); rows whose target ranks lower
    leave the catalogue scan early. `rank_cap=None` scans every row over the whole catalogue (same metrics).
    With `share_prefixes`, a causal encoder runs once per run of histories that extend one another (`encode`);
    the states are the same up to float rounding.
    """
    was_training = network.training
    network.eval()
    start = time.perf_counter()
    acc = MetricAccumulator(split["action"].device, reward_click, reward_buy)
    head_layer = network.head(head)
    n = split["action"].size(0)
    span = batch_size * (ENCODE_SPAN if share_prefixes else 1)  # events encoded together (runs cut at its ends)
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        if lo % span == 0:
            end = min(lo + span, n)
            states, lengths = split["state"][lo:end], split["len_state"][lo:end]
            encoded = encode(network, states, lengths) if share_prefixes else network(states, lengths)
        state = encoded[lo % span : lo % span + hi - lo]
        actions = split["action"][lo:hi]
        if isinstance(head_layer, torch.nn.Linear):
            ranks = head_target_ranks(state, head_layer, actions, cap=rank_cap)
        else:  # any other scorer: full score matrix
            ranks = target_ranks(head_layer(state), actions)
        acc.add(ranks, split["is_buy"][lo:hi], inv_beta[actions])
    metrics = acc.result()
    elapsed = time.perf_counter() - start
    network.train(was_training)
    return metrics, (n / elapsed if elapsed > 0 else math.inf)


def select_value(metrics: Metrics, select_metric: str) -> float:
    """Value of '<click|purchase|mean>/<metric>' (mean = average of the defined click and purchase values)."""
    event, _, metric = select_metric.partition("/")
    events = ("click", "purchase") if event == "mean" else (event,)
    values = [metrics[e][metric] for e in events if metrics[e][metric] is not None]
    return float(np.mean(values)) if values else -math.inf
