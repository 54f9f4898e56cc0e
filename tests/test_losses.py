"""Method losses on tiny hand-made networks, against values computed independently with numpy."""

import numpy as np
import pytest
import torch
from torch import nn

from sa2c.config import TrainConfig
from sa2c.losses import (
    METHOD_LOSSES,
    Batch,
    StepContext,
    advantage,
    double_q_td,
    negative_td,
    off_policy_weight,
    sample_negatives,
)
from sa2c.models import RecommenderNetwork

N_ITEMS = 4


class LookupEncoder(nn.Module):
    """State vector = a fixed row chosen by the history's first item (no dropout, no randomness)."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))
        self.output_dim = self.table.size(1)

    def forward(self, states, lengths):
        return self.table[states[:, 0]]


def make_network(table, wq, bq, ws, bs):
    net = RecommenderNetwork("gru", N_ITEMS, 10, 2, 0.0, ("supervised", "q"))
    net.encoder = LookupEncoder(table)
    with torch.no_grad():
        net.q.weight.copy_(torch.tensor(wq)), net.q.bias.copy_(torch.tensor(bq))
        net.supervised.weight.copy_(torch.tensor(ws)), net.supervised.bias.copy_(torch.tensor(bs))
    return net


# histories are identified by their first item (0..4, 4 = padding); 5 rows of 2-d states
MAIN_TABLE = [[0.5, -0.2], [0.1, 0.4], [-0.3, 0.8], [0.9, 0.1], [0.0, 0.0]]
TARGET_TABLE = [[0.2, 0.1], [-0.4, 0.3], [0.6, -0.5], [0.3, 0.3], [0.0, 0.0]]
WQ_MAIN = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.3, -0.7]]
BQ_MAIN = [0.1, -0.1, 0.05, 0.2]
WQ_TARGET = [[0.2, 0.9], [-0.5, 0.4], [1.1, -0.3], [0.0, 0.6]]
BQ_TARGET = [0.0, 0.3, -0.2, 0.5]
WS = [[0.4, -0.6], [0.2, 0.2], [-0.1, 0.9], [0.7, 0.3]]
BS = [0.0, 0.1, -0.1, 0.05]


def first(history_item):
    return [history_item] + [N_ITEMS] * 9


BATCH = dict(
    state=[first(0), first(1), first(3)],
    next_state=[first(2), first(3), first(1)],
    action=[2, 3, 0],
    is_buy=[False, True, False],
    done=[False, True, False],
    negatives=[[1, 3], [0, 2], [3, 3]],
)


def make_batch():
    b = BATCH
    return Batch(
        state=torch.tensor(b["state"]), len_state=torch.ones(3, dtype=torch.long), action=torch.tensor(b["action"]),
        is_buy=torch.tensor(b["is_buy"]), next_state=torch.tensor(b["next_state"]),
        len_next_state=torch.ones(3, dtype=torch.long), done=torch.tensor(b["done"]), negatives=torch.tensor(b["negatives"]),
    )


def numpy_reference(cfg, beta):
    """Every term of every method, written out directly from SPEC.md with numpy."""
    hm, ht = np.array(MAIN_TABLE), np.array(TARGET_TABLE)
    wq, bq, wt, bt = np.array(WQ_MAIN), np.array(BQ_MAIN), np.array(WQ_TARGET), np.array(BQ_TARGET)
    ws, bs = np.array(WS), np.array(BS)
    s = np.array([row[0] for row in BATCH["state"]])
    s2 = np.array([row[0] for row in BATCH["next_state"]])
    a, neg = np.array(BATCH["action"]), np.array(BATCH["negatives"])
    buy, done = np.array(BATCH["is_buy"]), np.array(BATCH["done"])
    q_main_s = hm[s] @ wq.T + bq
    q_main_s2 = hm[s2] @ wq.T + bq
    q_target_s2 = ht[s2] @ wt.T + bt
    q_target_s = ht[s] @ wt.T + bt
    rows = np.arange(3)
    reward = np.where(buy, cfg.reward_buy, cfg.reward_click)
    a_next = q_main_s2.argmax(1)  # double Q: main selects, target evaluates
    td_pos = 0.5 * (reward + cfg.gamma * (1 - done) * q_target_s2[rows, a_next] - q_main_s[rows, a]) ** 2
    a_cur = q_main_s.argmax(1)
    boot = cfg.r_negative + cfg.gamma * q_target_s[rows, a_cur]  # current state, no done mask
    td_neg = (0.5 * (boot[:, None] - q_main_s[rows[:, None], neg]) ** 2).sum(1)
    logits = hm[s] @ ws.T + bs
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -logp[rows, a]
    q_pos = q_main_s[rows, a]
    adv = q_pos - (q_pos + q_main_s[rows[:, None], neg].sum(1)) / (1 + neg.shape[1])
    adv = np.clip(adv, cfg.advantage_clip_low, cfg.advantage_clip_high)
    ips = np.clip(np.exp(logp[rows, a]) / beta[a], cfg.ips_clip_low, cfg.ips_clip_high) ** cfg.smooth
    return {
        "ce": ce.mean(),
        "sqn": (td_pos + ce).mean(),
        "sac": (td_pos + q_pos * ce).mean(),
        "snqn": (td_pos + td_neg + ce).mean(),
        "sa2c_actor": (td_pos + td_neg + adv * ips * ce).mean(),
        "dqn": (td_pos + td_neg).mean(),
        "a_next": a_next,
        "target_own_argmax": q_target_s2.argmax(1),
    }


def context(cfg, actor_phase=False, beta=None):
    main = make_network(MAIN_TABLE, WQ_MAIN, BQ_MAIN, WS, BS)
    target = make_network(TARGET_TABLE, WQ_TARGET, BQ_TARGET, WS, BS)
    behaviour = torch.tensor(beta, dtype=torch.float32) if beta is not None else None
    return StepContext(cfg, make_batch(), main, target, behaviour, sa2c_actor_phase=actor_phase), main, target


@pytest.mark.parametrize("method", ["ce", "sqn", "sac", "snqn", "dqn"])
def test_method_losses_match_reference(method):
    cfg = TrainConfig(method=method, r_negative=-0.3, gamma=0.5)
    ref = numpy_reference(cfg, np.ones(N_ITEMS))
    ctx, main, target = context(cfg)
    loss, _ = METHOD_LOSSES[method](ctx)
    assert loss.item() == pytest.approx(ref[method], rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in target.parameters())  # only the main network learns
    assert main.encoder.table.grad is not None and main.encoder.table.grad.abs().sum() > 0  # encoder included


@pytest.mark.parametrize("method", ["snqn", "dqn"])
def test_negatives_selector_from_a_separate_pass_gives_the_same_loss_without_dropout(method):
    # share_selector_pass=False selects the negatives' bootstrap action from a second pass of the main network
    # over s (batched with its pass over s'); with a deterministic encoder that is the same argmax
    cfg = TrainConfig(method=method, r_negative=-0.3, gamma=0.5, share_selector_pass=False)
    ref = numpy_reference(cfg, np.ones(N_ITEMS))
    ctx, main, _ = context(cfg)
    loss = METHOD_LOSSES[method](ctx)[0]
    assert loss.item() == pytest.approx(ref[method], rel=1e-5)
    loss.backward()
    assert main.encoder.table.grad is not None and main.encoder.table.grad.abs().sum() > 0


def test_double_q_selection_is_the_main_networks_argmax():
    cfg = TrainConfig(method="sqn")
    ref = numpy_reference(cfg, np.ones(N_ITEMS))
    # the fixture is chosen so that selecting with the target's own argmax would give a different loss
    assert (ref["a_next"] != ref["target_own_argmax"]).any()


@pytest.mark.parametrize("smooth", [0.0, 1.0, 0.5])
def test_sa2c_actor_phase_matches_reference(smooth):
    beta = np.array([0.1, 0.2, 0.3, 0.4])
    cfg = TrainConfig(method="sa2c", r_negative=-0.3, smooth=smooth)
    ref = numpy_reference(cfg, beta)
    ctx, _, _ = context(cfg, actor_phase=True, beta=beta)
    loss, parts = METHOD_LOSSES["sa2c"](ctx)
    assert loss.item() == pytest.approx(ref["sa2c_actor"], rel=1e-5)
    # during the warm-up SA2C is exactly SNQN
    ctx, _, _ = context(cfg, actor_phase=False, beta=beta)
    assert METHOD_LOSSES["sa2c"](ctx)[0].item() == pytest.approx(ref["snqn"], rel=1e-5)


def test_td_formulas_by_hand():
    # r = 0.2, gamma = 0.5, Q_target(s', a*) = 2.0, Q(s, a) = 1.0 -> target 1.2, loss 0.5 * 0.2^2 = 0.02
    loss = double_q_td(torch.tensor([1.0]), torch.tensor([0.2]), torch.tensor([0.5]), torch.tensor([2.0]))
    assert loss.item() == pytest.approx(0.02)
    # done: discount 0 -> target = r = 0.2 -> 0.5 * 0.8^2 = 0.32
    loss = double_q_td(torch.tensor([1.0]), torch.tensor([0.2]), torch.tensor([0.0]), torch.tensor([2.0]))
    assert loss.item() == pytest.approx(0.32)
    # negatives: r_neg = -1, gamma = 0.5, Q_target(s, a*) = 1.0 -> target -0.5; Q = [0.5, -0.5] -> 0.5 + 0 = 0.5 (summed)
    loss = negative_td(torch.tensor([[0.5, -0.5]]), -1.0, 0.5, torch.tensor([1.0]))
    assert loss.item() == pytest.approx(0.5)


def test_advantage_clip_and_stop_gradient():
    q_pos = torch.tensor([3.0, 0.0, 30.0], requires_grad=True)
    q_neg = torch.tensor([[1.0, 2.0], [3.0, 3.0], [0.0, 0.0]])
    adv = advantage(q_pos, q_neg, 0.0, 10.0)
    # row 0: 3 - (3+1+2)/3 = 1; row 1: 0 - 2 = -2 -> 0; row 2: 30 - 10 = 20 -> 10
    assert adv.tolist() == pytest.approx([1.0, 0.0, 10.0])
    assert not adv.requires_grad
    assert advantage(q_pos, q_neg, -5.0, 10.0).tolist() == pytest.approx([1.0, -2.0, 10.0])


def test_off_policy_weight_clip_and_exponent():
    # pi = exp(-ce): pi = [0.5, 0.01, 0.9]; beta = [0.1, 0.5, 0.01] -> ratio [5, 0.02, 90] -> clip [5, 0.1, 10]
    ce = -torch.log(torch.tensor([0.5, 0.01, 0.9]))
    beta = torch.tensor([0.1, 0.5, 0.01])
    assert off_policy_weight(ce, beta, 1.0, 0.1, 10.0).tolist() == pytest.approx([5.0, 0.1, 10.0], rel=1e-5)
    assert off_policy_weight(ce, beta, 0.5, 0.1, 10.0).tolist() == pytest.approx([5**0.5, 0.1**0.5, 10**0.5], rel=1e-5)
    assert off_policy_weight(ce, beta, 0.0, 0.1, 10.0).tolist() == [1.0, 1.0, 1.0]


def test_negatives_never_equal_positive_and_are_uniform():
    gen = torch.Generator().manual_seed(0)
    n_items, rows, k = 6, 20000, 10
    actions = torch.full((rows,), 2)
    neg = sample_negatives(actions, n_items, k, gen)
    assert neg.shape == (rows, k)
    assert not (neg == 2).any()
    assert neg.min() >= 0 and neg.max() < n_items
    freq = torch.bincount(neg.flatten(), minlength=n_items).double() / neg.numel()
    expected = torch.tensor([0.2, 0.2, 0.0, 0.2, 0.2, 0.2], dtype=torch.float64)
    assert torch.allclose(freq, expected, atol=0.01)


def test_fused_head_cross_entropy_equals_the_generic_path():
    from sa2c.losses import cross_entropy, head_cross_entropy

    torch.manual_seed(0)
    head = nn.Linear(8, 5000)
    state = torch.randn(16, 8, requires_grad=True)
    actions = torch.randint(0, 5000, (16,))
    weights = torch.randn(16)  # per-row weights, negative too (SAC's Q-values can be)
    ref = cross_entropy(head(state), actions)
    (ref * weights).sum().backward()
    expected = [t.grad.clone() for t in (state, head.weight, head.bias)]
    for t in (state, head.weight, head.bias):
        t.grad = None
    got = head_cross_entropy(state, head, actions)
    (got * weights).sum().backward()
    assert torch.allclose(got, ref, atol=1e-5)
    for g, e in zip((state.grad, head.weight.grad, head.bias.grad), expected):
        assert torch.allclose(g, e, atol=1e-5)
    from sa2c.models.common import item_block

    assert item_block(state.device, 5000) < 5000  # the test crosses block boundaries


def test_chunked_argmax_equals_full_argmax():
    torch.manual_seed(1)
    head = nn.Linear(8, 5000)
    from sa2c.models import Head

    h = Head(8, 5000)
    with torch.no_grad():
        h.weight.copy_(head.weight), h.bias.copy_(head.bias)
    state = torch.randn(64, 8)
    assert torch.equal(h.argmax(state, chunk=1000), h(state).argmax(1))


def transition_batch(n_items=30, seed=0):
    """A batch of real transitions: sessions shorter and longer than the 10-item window, with empty histories."""
    from sa2c.data.transitions import build_transitions

    rng = np.random.default_rng(seed)
    lengths = [3, 14, 1, 6, 25, 2, 9]
    session = np.repeat(np.arange(len(lengths)), lengths)
    item = rng.integers(0, n_items, size=session.size)
    t = build_transitions(session, item, (rng.random(session.size) < 0.2).astype(np.int8), n_items, history=10)
    order = rng.permutation(session.size)  # a training batch is a random draw, not in session order
    as_long = lambda key: torch.from_numpy(np.asarray(t[key])[order]).long()  # noqa: E731
    batch = Batch(state=as_long("state"), len_state=as_long("len_state"), action=as_long("action"),
                  is_buy=torch.from_numpy(t["is_buy"][order].astype(bool)), next_state=as_long("next_state"),
                  len_next_state=as_long("len_next_state"), done=torch.from_numpy(t["done"][order]))
    batch.negatives = sample_negatives(batch.action, n_items, 4, torch.Generator().manual_seed(seed))
    return batch


@pytest.mark.parametrize("name", ["gru", "nextitnet"])
def test_one_pass_over_next_states_gives_both_states(name):
    from sa2c.losses import shares_transition_pass, transition_states

    torch.manual_seed(0)
    net = RecommenderNetwork(name, 30, 10, 16, 0.1, ("supervised", "q")).train()  # training mode: no dropout
    assert shares_transition_pass(net)
    b = transition_batch()
    empty, sliding = b.state[:, 0] == 30, (b.len_state == 10) & (b.len_next_state == 10)
    assert empty.sum() == 7 and sliding.sum() == 4 + 15  # both kinds of rows a single pass cannot cover
    s, s_next = transition_states(net, b)
    assert torch.allclose(s, net(b.state, b.len_state), atol=1e-5)
    assert torch.allclose(s_next, net(b.next_state, b.len_next_state), atol=1e-5)


@pytest.mark.parametrize("method", ["snqn", "sqn"])
def test_shared_transition_pass_gives_the_same_losses_and_gradients(method):
    from sa2c.losses import shares_transition_pass

    b = transition_batch(seed=1)
    if method == "sqn":
        b.negatives = None
    cfg = TrainConfig(method=method, r_negative=-0.3)
    results = []
    for share in (True, False):
        torch.manual_seed(0)
        main = RecommenderNetwork("gru", 30, 10, 16, 0.1, ("supervised", "q"))
        target = RecommenderNetwork("gru", 30, 10, 16, 0.1, ("supervised", "q"))
        ctx = StepContext(cfg, b, main, target, None, share_passes=share)
        loss, _ = METHOD_LOSSES[method](ctx)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in main.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for shared, separate in zip(results[0][1], results[1][1]):
        assert torch.allclose(shared, separate, atol=1e-6)
    # SASRec and Caser draw dropout masks per pass: never shared
    assert not shares_transition_pass(RecommenderNetwork("sasrec", 30, 10, 16, 0.1, ("q",)))
    assert not shares_transition_pass(RecommenderNetwork("caser", 30, 10, 16, 0.1, ("q",)))
