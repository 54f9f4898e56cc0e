"""Evaluation metrics against a brute-force reference (sorting, Python loops) on random scores with ties."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sa2c.evaluation import MetricAccumulator, evaluate, select_value, target_ranks


def brute_force_rank(scores: np.ndarray, target: int) -> int:
    """Position of the target in a full sort, best first, with ties placed before the target (pessimistic)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i == target))
    return order.index(target) + 1


def brute_force_metrics(scores, targets, is_buy, beta, r_click=0.2, r_buy=1.0):
    out = {}
    for name, flag in (("click", False), ("purchase", True)):
        rows = [i for i in range(len(targets)) if bool(is_buy[i]) == flag]
        block = {"n": len(rows)}
        for k in (5, 10, 20):
            hits = [i for i in rows if brute_force_rank(scores[i], targets[i]) <= k]
            block[f"hr@{k}"] = len(hits) / len(rows) if rows else None
            block[f"ndcg@{k}"] = (
                sum(1 / math.log2(brute_force_rank(scores[i], targets[i]) + 1) for i in hits) / len(rows) if rows else None
            )
        hits10 = [i for i in rows if brute_force_rank(scores[i], targets[i]) <= 10]
        num = sum(1 / math.log2(brute_force_rank(scores[i], targets[i]) + 1) / beta[targets[i]] for i in hits10)
        den = sum(1 / beta[targets[i]] for i in rows)
        block["off_ndcg@10"] = num / den if rows else None
        out[name] = block
    for k in (5, 10, 20):
        out.setdefault("all", {})[f"reward@{k}"] = sum(
            (r_buy if is_buy[i] else r_click) for i in range(len(targets)) if brute_force_rank(scores[i], targets[i]) <= k
        )
    return out


def test_rank_one_is_top_and_ties_count_against_target():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 1.0, 0.0]])
    ranks = target_ranks(scores, torch.tensor([1, 2, 3]))
    assert ranks.tolist() == [1, 4, 4]  # best item -> 1; all tied -> last; worst -> n


def test_nan_scores_rank_last():
    scores = torch.tensor([[float("nan"), 1.0, 2.0]])
    assert target_ranks(scores, torch.tensor([0])).tolist() == [3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_items, n_events = 40, 300
    # integer scores in a small range: many ties
    scores = rng.integers(0, 8, size=(n_events, n_items)).astype(np.float32)
    targets = rng.integers(0, n_items, size=n_events)
    is_buy = rng.random(n_events) < 0.2
    beta = rng.random(n_items) + 0.05
    expected = brute_force_metrics(scores, targets, is_buy, beta)

    acc = MetricAccumulator(torch.device("cpu"), 0.2, 1.0)
    for lo in range(0, n_events, 64):  # batched, as in evaluation
        s = torch.from_numpy(scores[lo : lo + 64])
        t = torch.from_numpy(targets[lo : lo + 64])
        acc.add(target_ranks(s, t), torch.from_numpy(is_buy[lo : lo + 64]), torch.from_numpy(1 / beta)[t])
    got = acc.result()
    for event in ("click", "purchase"):
        assert got[event]["n"] == expected[event]["n"]
        for key, value in expected[event].items():
            assert got[event][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (event, key)
    for key, value in expected["all"].items():
        assert got["all"][key] == pytest.approx(value)


class ScoreTable(nn.Module):
    """A 'network' whose scores for an event are row state[:, 0] of a fixed table (to test `evaluate`)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.dropout = nn.Dropout(0.5)  # must be off during evaluation

    def forward(self, states, lengths):
        return self.dropout(self.table[states[:, 0]])

    def head(self, name):
        return nn.Identity()


def test_evaluate_batches_and_undefined_purchases():
    rng = np.random.default_rng(3)
    table = torch.from_numpy(rng.normal(size=(50, 30)).astype(np.float32))
    n = 70
    split = {
        "state": torch.from_numpy(rng.integers(0, 50, size=(n, 10))),
        "len_state": torch.ones(n, dtype=torch.long),
        "action": torch.from_numpy(rng.integers(0, 30, size=n)),
        "is_buy": torch.zeros(n, dtype=torch.bool),  # no purchases in this split
    }
    inv_beta = torch.ones(30)
    net = ScoreTable(table).train()
    metrics, speed = evaluate(net, "supervised", split, inv_beta, batch_size=16, reward_click=0.2, reward_buy=1.0)
    assert net.training  # mode restored
    assert speed > 0
    assert metrics["purchase"]["n"] == 0
    assert all(v is None for k, v in metrics["purchase"].items() if k != "n")
    scores = table[split["state"][:, 0]].numpy()
    expected = brute_force_metrics(scores, split["action"].numpy(), np.zeros(n, bool), np.ones(30))
    assert metrics["click"]["hr@10"] == pytest.approx(expected["click"]["hr@10"])
    assert metrics["click"]["ndcg@20"] == pytest.approx(expected["click"]["ndcg@20"])
    # selection falls back to the defined event type when purchases are undefined
    assert select_value(metrics, "mean/ndcg@10") == pytest.approx(expected["click"]["ndcg@10"])


def test_blockwise_head_ranks_equal_full_score_ranks():
    from sa2c.evaluation import head_target_ranks
    from sa2c.models import Head

    torch.manual_seed(0)
    head = Head(8, 5000)
    state = torch.randn(100, 8)
    targets = torch.randint(0, 5000, (100,))
    assert torch.equal(head_target_ranks(state, head, targets, chunk=700), target_ranks(head(state), targets))
    # a constant scorer: every item ties with the target, which then ranks last
    with torch.no_grad():
        head.weight.zero_(), head.bias.fill_(0.5)
    assert head_target_ranks(state, head, targets, chunk=700).tolist() == [5000] * 100


def test_capped_head_ranks_are_exact_up_to_the_cap_and_above_it_otherwise():
    from sa2c.evaluation import head_target_ranks
    from sa2c.models import Head

    torch.manual_seed(1)
    head = Head(8, 3000)
    state = torch.randn(400, 8)
    targets = torch.randint(0, 3000, (400,))
    with torch.no_grad():  # half of the rows get a target that scores near the top
        head.weight[targets[:200]] = state[:200] * torch.rand(200, 1) * 2
    full = target_ranks(head(state), targets)
    assert 50 < int((full <= 20).sum()) < 350  # both kinds of rows are present
    for cap in (0, 1, 5, 20, 2999):
        capped = head_target_ranks(state, head, targets, chunk=256, cap=cap)
        low = full <= cap
        assert torch.equal(capped[low], full[low]), cap
        assert bool((capped[~low] > cap).all()) and bool((capped <= 3000).all()), cap


def test_prefix_groups_by_hand():
    from sa2c.evaluation import prefix_groups

    P = 9  # padding id; histories of up to 3 items
    states = torch.tensor([
        [P, P, P],  # 0: empty history (len 1): a run of its own
        [4, P, P],  # 1: session A ...
        [4, 5, P],  # 2: extends 1
        [4, 5, 6],  # 3: extends 2
        [5, 6, 7],  # 4: the window slides: not a prefix of anything before
        [3, P, P],  # 5: session B
        [2, P, P],  # 6: session C: same length, other item
        [2, 8, P],  # 7: extends 6
        [2, 1, 0],  # 8: longer, but disagrees with 7 at position 1
    ])
    lengths = torch.tensor([1, 1, 2, 3, 3, 1, 1, 2, 3])
    ends, run_of_row = prefix_groups(states, lengths)
    assert ends.tolist() == [0, 3, 4, 5, 7, 8]
    assert run_of_row.tolist() == [0, 1, 1, 1, 2, 3, 4, 4, 5]


@pytest.mark.parametrize("name", ["gru", "nextitnet", "sasrec", "caser"])
def test_shared_prefix_encoding_equals_one_pass_per_event(name):
    from sa2c.data.transitions import build_transitions
    from sa2c.evaluation import encode, prefix_groups
    from sa2c.models import RecommenderNetwork

    rng = np.random.default_rng(5)
    n_items, lengths = 40, [2, 14, 3, 1, 9, 25, 4]  # sessions shorter and longer than the 10-item window
    session = np.repeat(np.arange(len(lengths)), lengths)
    item = rng.integers(0, n_items, size=session.size)
    t = build_transitions(session, item, np.zeros(session.size, np.int8), n_items, history=10)
    states, lens = torch.from_numpy(t["state"]).long(), torch.from_numpy(t["len_state"]).long()
    torch.manual_seed(0)
    net = RecommenderNetwork(name, n_items, 10, 16, 0.3, ("supervised",)).eval()
    with torch.no_grad():
        expected = net(states, lens)
        shared = encode(net, states, lens)
    assert torch.allclose(shared, expected, atol=1e-5)
    ends, _ = prefix_groups(states, lens)
    # per session: the empty first history; events 2-11 (histories of 1-10 items from the session's start); then
    # one run per event, as the window slides
    assert len(ends) == sum(1 + (n >= 2) + max(0, n - 11) for n in lengths) == 30
    # evaluation gives the same metrics either way
    split = {"state": states, "len_state": lens, "action": torch.from_numpy(item), "is_buy": torch.zeros(len(item), dtype=torch.bool)}
    kw = dict(batch_size=8, reward_click=0.2, reward_buy=1.0)
    assert evaluate(net, "supervised", split, torch.ones(n_items), **kw)[0] == evaluate(
        net, "supervised", split, torch.ones(n_items), share_prefixes=False, **kw)[0]
