"""The methods of the paper as loss functions over one shared batch (SPEC.md, "Methods").

Each method is a function `loss_<method>(ctx) -> (loss, parts)` registered in `METHOD_LOSSES`; the training loop
calls the one named by the config and never branches on method names elsewhere. The pieces they share:

- `cross_entropy`: the supervised head's CE over the full catalogue, per row.
- `double_q_td`: the double Q-learning TD loss 0.5 * (r + discount * Q_target(s', argmax_a' Q_main(s', a')) - Q_main(s, a))^2.
- `negative_td`: the same for the sampled negative actions, bootstrapped from the CURRENT state s, no done mask, summed.
- `advantage`: A = Q(s, a+) - mean(Q over {a+, negatives}), stop-gradient, clipped to [low, high].
- `off_policy_weight`: ips = clip(pi(a|s) / beta(a), low, high) ** smooth.

Efficiency: the Q head enters the losses only at a few actions per row, so Q(s, a) is a gather and a dot product
(`Head.at`), with gradients into those rows only; the full-catalogue Q products are needed only for the argmax
selectors and run without autograd. The target network is read at one action per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from sa2c.config import TrainConfig
from sa2c.models import RecommenderNetwork
from sa2c.models.common import empty_histories, extends, item_block


@dataclass
class Batch:
    state: torch.Tensor  # [B, T] item ids, right-padded with n_items
    len_state: torch.Tensor  # [B]
    action: torch.Tensor  # [B]
    is_buy: torch.Tensor  # [B] bool
    next_state: torch.Tensor
    len_next_state: torch.Tensor
    done: torch.Tensor  # [B] bool
    negatives: torch.Tensor | None = None  # [B, K]


# ----------------------------------------------------------------------------------------------------- formulas


def cross_entropy(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Per-row CE of the supervised head over the full catalogue."""
    return F.cross_entropy(logits, actions, reduction="none")


class _HeadCrossEntropy(torch.autograd.Function):
    """CE of a linear head over the full catalogue, fused: the same values and gradients as
    `cross_entropy(head(state), actions)`, with far fewer passes over memory.

    Both passes walk the catalogue in blocks of items small enough to stay in cache. Forward: each block's logits
    are computed, shifted by the block's row maximum and exponentiated in place (kept for backward); the
    log-sum-exp combines the blocks' sums. Backward: each saved block times exp(block max - lse) * grad is the
    softmax part of the gradient; the one-hot part is subtracted at the targets; the block then feeds the two
    gradient products while still in cache, and is freed. (The generic path writes logits, log-softmax, a one-hot
    gradient and the log-softmax gradient: several full passes over the [B, n] matrix.) Each block is its own
    contiguous tensor, which measured 2-3 ms faster per training step than views into one [B, n] matrix.
    """

    @staticmethod
    def forward(ctx, state, weight, bias, actions):
        n = weight.size(0)
        chunk = item_block(state.device, n)
        blocks, block_max, block_sum = [], [], []
        for lo in range(0, n, chunk):
            block = torch.addmm(bias[lo : lo + chunk], state, weight[lo : lo + chunk].t())
            top = block.amax(1, keepdim=True)
            block.sub_(top).exp_()
            blocks.append(block)
            block_max.append(top)
            block_sum.append(block.sum(1, keepdim=True))
        block_max, block_sum = torch.cat(block_max, 1), torch.cat(block_sum, 1)  # [B, blocks]
        row_max = block_max.amax(1, keepdim=True)
        lse = (row_max + torch.log((block_sum * torch.exp(block_max - row_max)).sum(1, keepdim=True))).squeeze(1)
        target_logit = state.mul(weight[actions]).sum(1) + bias[actions]
        ctx.blocks = blocks  # consumed (and freed block by block) by the one backward pass
        ctx.save_for_backward(state, weight, block_max, lse, actions)
        return lse - target_logit

    @staticmethod
    def backward(ctx, grad_ce):
        state, weight, block_max, lse, actions = ctx.saved_tensors
        blocks, ctx.blocks = ctx.blocks, None
        grad_state = torch.zeros_like(state)
        grad_weight = torch.empty_like(weight)
        grad_bias = torch.empty(weight.size(0), dtype=weight.dtype, device=weight.device)
        rows = torch.arange(state.size(0), device=state.device)
        scale = torch.exp(block_max - lse.unsqueeze(1)) * grad_ce.unsqueeze(1)  # [B, blocks]
        chunk = item_block(state.device, weight.size(0))
        for b, lo in enumerate(range(0, weight.size(0), chunk)):
            hi = min(lo + chunk, weight.size(0))
            block = blocks[b]  # d CE / d logits = (softmax - onehot) * grad, built in place
            blocks[b] = None
            block.mul_(scale[:, b : b + 1])
            inside = (actions >= lo) & (actions < hi)
            block[rows[inside], actions[inside] - lo] -= grad_ce[inside]
            torch.mm(block.t(), state, out=grad_weight[lo:hi])
            torch.sum(block, dim=0, out=grad_bias[lo:hi])
            grad_state.addmm_(block, weight[lo:hi])
        return grad_state, grad_weight, grad_bias, None


def head_cross_entropy(state: torch.Tensor, head: torch.nn.Linear, actions: torch.Tensor) -> torch.Tensor:
    """Per-row CE of the supervised head (`cross_entropy(head(state), actions)`), fused for speed."""
    return _HeadCrossEntropy.apply(state, head.weight, head.bias, actions)


def double_q_td(q_sa: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, q_target_selected: torch.Tensor) -> torch.Tensor:
    """Double Q-learning TD loss per row (TRFL's double_qlearning): 0.5 * (r + discount * Q_target(s', a*) - Q_main(s, a))^2.

    `q_target_selected` is Q_target at a* = argmax Q_main(s'); `discount` is gamma, or 0 where the episode is done.
    """
    target = (reward + discount * q_target_selected).detach()
    return 0.5 * (target - q_sa) ** 2


def negative_td(q_neg: torch.Tensor, r_negative: float, gamma: float, q_target_current: torch.Tensor) -> torch.Tensor:
    """Summed TD loss of the negative actions [B, K]: target r_neg + gamma * Q_target(s, argmax Q_main(s)).

    Negatives bootstrap from the CURRENT state s and are not done-masked (as in the authors' code).
    """
    target = (r_negative + gamma * q_target_current).detach().unsqueeze(1)
    return (0.5 * (target - q_neg) ** 2).sum(dim=1)


def advantage(q_pos: torch.Tensor, q_neg: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """SA2C advantage: Q(s, a+) minus the mean Q over {a+} and the negatives; stop-gradient; clipped to [low, high]."""
    q_pos, q_neg = q_pos.detach(), q_neg.detach()
    average = (q_pos + q_neg.sum(dim=1)) / (1 + q_neg.size(1))
    return (q_pos - average).clamp(low, high)


def off_policy_weight(ce: torch.Tensor, behaviour: torch.Tensor, smooth: float, low: float, high: float) -> torch.Tensor:
    """ips = clip(pi(a|s) / beta(a), low, high) ** smooth, with pi = softmax of the supervised head (stop-gradient).

    pi(a|s) = exp(-CE), so no second softmax is needed. smooth = 0 gives 1 (no correction).
    """
    if smooth == 0:
        return torch.ones_like(ce)
    pi = torch.exp(-ce.detach())
    return (pi / behaviour).clamp(low, high) ** smooth


def sample_negatives(actions: torch.Tensor, n_items: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """K negatives per row, uniform with replacement over the catalogue, never equal to the row's positive.

    Equivalent to the authors' redraw rule (draw uniformly; redraw when equal to the positive), i.e. uniform over
    the other n - 1 items, but done in one vectorised draw: sample from n - 1 values and skip over the positive.
    """
    draw = torch.randint(0, n_items - 1, (actions.size(0), k), generator=generator, device=actions.device)
    return draw + (draw >= actions.unsqueeze(1)).long()


# ---------------------------------------------------------------------------------------- per-step computation


def shares_transition_pass(network: RecommenderNetwork) -> bool:
    """Whether `transition_states` is exact for this network: a causal encoder without dropout (GRU, NextItNet)."""
    encoder = network.encoder
    return bool(getattr(encoder, "causal", False)) and not getattr(encoder, "uses_dropout", True)


def transition_states(network: RecommenderNetwork, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's states of s and of s' from one sequence pass over s' (plus the few rows it does not cover).

    Where s' is s plus the logged item (the history window has not started to slide), a causal encoder's output
    of s' at position len_state - 1 is the state of s. The other rows are the empty histories (all padding: one
    pass serves them all) and the sliding windows (about 7% of rows on RC15-like data): their s gets its own pass,
    in the same call. One pass over about 1.1B rows replaces two over B. Exact only without dropout, where
    separate passes would draw separate masks (`shares_transition_pass`).
    """
    encoder = network.encoder
    state, next_state = batch.state, batch.next_state
    B, T = state.shape
    empty = empty_histories(state, encoder.n_items)
    covered = extends(next_state, batch.len_next_state, state, batch.len_state) & ~empty
    own = (~covered & ~empty).nonzero().squeeze(1)  # rows whose s needs its own pass
    first_empty = empty.nonzero()[:1, 0]
    sequence = encoder.sequence(torch.cat([next_state, state[own], state[first_empty]]))  # [B + m + (0 or 1), T, D]
    flat = sequence.reshape(-1, sequence.size(-1))
    rows = torch.arange(B, device=state.device)
    at_s = rows * T + batch.len_state - 1
    at_s[own] = (B + torch.arange(own.numel(), device=state.device)) * T + batch.len_state[own] - 1
    at_s[empty] = (B + own.numel()) * T  # position 0 of the one empty history
    return flat.index_select(0, at_s), flat.index_select(0, rows * T + batch.len_next_state - 1)


@dataclass
class StepContext:
    """Everything a method's loss may need for one step; Q terms are computed lazily and only once."""

    cfg: TrainConfig
    batch: Batch
    main: RecommenderNetwork
    target: RecommenderNetwork | None
    behaviour: torch.Tensor | None  # beta(a) of every item, for the off-policy weight
    sa2c_actor_phase: bool = False  # SA2C after the warm-up
    share_passes: bool | None = None  # one encoder pass for s and s' (`transition_states`); None: where exact
    _cache: dict = field(default_factory=dict)

    def _shared_passes(self) -> bool:
        """Double Q needs the main network's states of s and s': one pass gives both where that is exact."""
        if self.share_passes is None:
            self.share_passes = self.target is not None and shares_transition_pass(self.main)
        return self.share_passes

    @property
    def state(self) -> torch.Tensor:
        if "state" not in self._cache:
            with torch.enable_grad():  # also when first asked for inside a no-grad block (the selectors)
                if self._shared_passes():
                    self._cache["state"], next_state = transition_states(self.main, self.batch)
                    self._cache["main_next_state"] = next_state.detach()
                else:
                    self._cache["state"] = self.main(self.batch.state, self.batch.len_state)
        return self._cache["state"]

    def _main_next_state(self) -> torch.Tensor:
        """Q_main's state of s' for the selector (no gradient)."""
        if self._shared_passes():
            self.state  # noqa: B018  (computes both)
            return self._cache["main_next_state"]
        with torch.no_grad():
            return self.main(self.batch.next_state, self.batch.len_next_state)

    @property
    def ce(self) -> torch.Tensor:
        if "ce" not in self._cache:
            self._cache["ce"] = head_cross_entropy(self.state, self.main.supervised, self.batch.action)
        return self._cache["ce"]

    def _q_at_actions(self) -> None:
        """Q_main(s, a+) and, with negatives, Q_main(s, negatives): one gather of Q-head rows for both, so that
        backward writes one sparse-into-dense gradient of the head instead of two that are then added."""
        b = self.batch
        if b.negatives is None:
            self._cache["q_pos"] = self.main.q.at(self.state, b.action)
            return
        actions = torch.cat([b.action.unsqueeze(1), b.negatives], 1)  # [B, 1 + K]
        q = self.main.q.at(self.state.unsqueeze(1).expand(-1, actions.size(1), -1), actions)
        self._cache["q_pos"], self._cache["q_neg"] = q[:, 0], q[:, 1:]

    @property
    def q_pos(self) -> torch.Tensor:
        """Q_main(s, a+) [B], with gradient into that row of the Q head."""
        if "q_pos" not in self._cache:
            self._q_at_actions()
        return self._cache["q_pos"]

    @property
    def reward(self) -> torch.Tensor:
        b = self.batch
        return torch.where(b.is_buy, self.cfg.reward_buy, self.cfg.reward_click).to(self.state.dtype)

    def target_states(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Target network's states of s' (and of s, when negatives bootstrap from it), in one encoder call."""
        if "target_states" not in self._cache:
            b = self.batch
            with torch.no_grad():
                if b.negatives is None:
                    self._cache["target_states"] = (self.target(b.next_state, b.len_next_state), None)
                elif self._shared_passes():
                    current, following = transition_states(self.target, b)
                    self._cache["target_states"] = (following, current)
                else:
                    both = self.target(torch.cat([b.next_state, b.state]), torch.cat([b.len_next_state, b.len_state]))
                    self._cache["target_states"] = tuple(both.split(b.state.size(0)))
        return self._cache["target_states"]

    def selectors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """argmax_a Q_main(s', a) and, when there are negatives, argmax_a Q_main(s, a): one catalogue scan.

        Both selectors read the same Q head, so their states go through it together: one [2B, n] pass streams the
        head's weights once for both and runs at about 0.65x the time of two [B, n] passes on CPUs.
        """
        if "selectors" not in self._cache:
            b, cfg = self.batch, self.cfg
            with torch.no_grad():
                if b.negatives is None:
                    states = self._main_next_state()
                elif cfg.share_selector_pass or self._shared_passes():  # (without dropout a second pass is the same)
                    states = torch.cat([self._main_next_state(), self.state.detach()])
                else:  # the authors' code runs a separate forward pass (new dropout mask) for the s selector
                    states = self.main(torch.cat([b.next_state, b.state]), torch.cat([b.len_next_state, b.len_state]))
                chosen = self.main.q.argmax(states)
            rows = b.state.size(0)
            self._cache["selectors"] = (chosen[:rows], chosen[rows:] if b.negatives is not None else None)
        return self._cache["selectors"]

    def td_pos(self) -> torch.Tensor:
        """Double-Q TD loss of the logged (positive) action; bootstrap zeroed when done."""
        b, cfg = self.batch, self.cfg
        with torch.no_grad():
            q_next = self.target.q.at(self.target_states()[0], self.selectors()[0])
        discount = cfg.gamma * (~b.done).to(q_next.dtype)
        return double_q_td(self.q_pos, self.reward, discount, q_next)

    @property
    def q_neg(self) -> torch.Tensor:
        """Q_main(s, negatives) [B, K], with gradient into those rows of the Q head."""
        if "q_neg" not in self._cache:
            self._q_at_actions()
        return self._cache["q_neg"]

    def td_neg(self) -> torch.Tensor:
        cfg = self.cfg
        with torch.no_grad():
            q_current = self.target.q.at(self.target_states()[1], self.selectors()[1])
        return negative_td(self.q_neg, cfg.r_negative, cfg.gamma, q_current)


LossParts = dict[str, torch.Tensor]


def loss_ce(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    ce = ctx.ce
    return ce.mean(), {"ce": ce.mean()}


def loss_sqn(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    td, ce = ctx.td_pos(), ctx.ce
    return (td + ce).mean(), {"td_pos": td.mean(), "ce": ce.mean()}


def loss_sac(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    """SAC: CE weighted by the stop-gradient Q-value of the positive action, plus its TD loss; no warm-up."""
    q_pos = ctx.q_pos
    td, ce = ctx.td_pos(), ctx.ce
    weighted = q_pos.detach() * ce
    return (td + weighted).mean(), {"td_pos": td.mean(), "ce": ce.mean(), "q_pos": q_pos.detach().mean()}


def loss_snqn(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    td_pos, td_neg, ce = ctx.td_pos(), ctx.td_neg(), ctx.ce
    return (td_pos + td_neg + ce).mean(), {"td_pos": td_pos.mean(), "td_neg": td_neg.mean(), "ce": ce.mean()}


def loss_sa2c(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    """SA2C: SNQN during the warm-up; then the CE term weighted by the clipped advantage (and the off-policy weight)."""
    if not ctx.sa2c_actor_phase:
        return loss_snqn(ctx)
    cfg = ctx.cfg
    td_pos, td_neg, ce = ctx.td_pos(), ctx.td_neg(), ctx.ce
    adv = advantage(ctx.q_pos, ctx.q_neg, cfg.advantage_clip_low, cfg.advantage_clip_high)
    ips = off_policy_weight(ce, ctx.behaviour[ctx.batch.action], cfg.smooth, cfg.ips_clip_low, cfg.ips_clip_high)
    actor = adv * ips * ce
    parts = {"td_pos": td_pos.mean(), "td_neg": td_neg.mean(), "ce": ce.mean(), "advantage": adv.mean(), "ips": ips.mean()}
    return (td_pos + td_neg + actor).mean(), parts


def loss_dqn(ctx: StepContext) -> tuple[torch.Tensor, LossParts]:
    """DQN (Table 4): Q head only, positive TD + the negatives' TD terms."""
    td_pos, td_neg = ctx.td_pos(), ctx.td_neg()
    return (td_pos + td_neg).mean(), {"td_pos": td_pos.mean(), "td_neg": td_neg.mean()}


METHOD_LOSSES: dict[str, Callable[[StepContext], tuple[torch.Tensor, LossParts]]] = {
    "ce": loss_ce,
    "sqn": loss_sqn,
    "sac": loss_sac,
    "snqn": loss_snqn,
    "sa2c": loss_sa2c,
    "dqn": loss_dqn,
}
# Methods trained with two networks (double Q) and with sampled negatives.
DOUBLE_Q = ("sqn", "sac", "snqn", "sa2c", "dqn")
USES_NEGATIVES = ("snqn", "sa2c", "dqn")
