"""Encoders: output shape, padding never changes a state, causal masking (a future item cannot change the state)."""

import pytest
import torch

from sa2c.models import RecommenderNetwork, build_encoder

N_ITEMS, T, DIM = 50, 10, 64
EXPECTED_DIM = {"gru": 64, "caser": 112, "nextitnet": 64, "sasrec": 64}
CAUSAL = ["gru", "nextitnet", "sasrec"]


def histories(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    states = torch.randint(0, N_ITEMS, (len(lengths), T), generator=gen)
    lengths = torch.tensor(lengths)
    states[torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)] = N_ITEMS  # right padding
    return states, lengths


def encoder(name):
    torch.manual_seed(0)
    return build_encoder(name, N_ITEMS, T, DIM, 0.1).eval()


@pytest.mark.parametrize("name", list(EXPECTED_DIM))
def test_output_shape_and_heads(name):
    states, lengths = histories([1, 3, 10, 7])
    enc = encoder(name)
    out = enc(states, lengths)
    assert out.shape == (4, EXPECTED_DIM[name])
    assert torch.isfinite(out).all()
    net = RecommenderNetwork(name, N_ITEMS, T, DIM, 0.1, ("supervised", "q")).eval()
    state = net(states, lengths)
    assert net.q(state).shape == (4, N_ITEMS) and net.supervised(state).shape == (4, N_ITEMS)
    # Head.at equals the full product read at the action
    actions = torch.tensor([0, 5, 49, 7])
    assert torch.allclose(net.q.at(state, actions), net.q(state).gather(1, actions[:, None]).squeeze(1), atol=1e-6)


@pytest.mark.parametrize("name", list(EXPECTED_DIM))
def test_padding_embedding_does_not_change_the_state(name):
    states, lengths = histories([2, 5, 9, 10])  # non-empty histories
    enc = encoder(name)
    before = enc(states, lengths)
    with torch.no_grad():
        enc.embedding.weight[N_ITEMS] = torch.randn(DIM) * 5  # scramble the padding item's embedding
    after = enc(states, lengths)
    assert torch.allclose(before, after, atol=1e-5)


@pytest.mark.parametrize("name", CAUSAL)
def test_future_items_cannot_change_the_state(name):
    states, lengths = histories([1, 4, 6, 9])
    enc = encoder(name)
    before = enc(states, lengths)
    future = torch.arange(T).unsqueeze(0) >= lengths.unsqueeze(1)
    changed = states.clone()
    changed[future] = torch.randint(0, N_ITEMS, (int(future.sum()),))  # real items where padding was
    assert torch.allclose(before, enc(changed, lengths), atol=1e-5)
    # ...while a change inside the history does change it
    inside = states.clone()
    inside[:, 0] = (inside[:, 0] + 1) % N_ITEMS
    assert not torch.allclose(before[1:], enc(inside, lengths)[1:], atol=1e-5)


@pytest.mark.parametrize("name", CAUSAL)
def test_state_equals_the_sequence_output_at_the_last_position(name):
    # forward() may compute only what the last position needs; sequence() computes every position
    from sa2c.models.common import state_at

    states, lengths = histories([1, 2, 5, 10, 7, 3])
    states[0] = N_ITEMS  # an empty history (all padding, length 1)
    enc = encoder(name)
    assert torch.allclose(enc(states, lengths), state_at(enc.sequence(states), lengths), atol=1e-5)


def test_only_encoders_tested_as_causal_are_flagged_causal():
    # evaluation shares one pass among prefix histories for encoders flagged causal (evaluation.encode)
    assert [name for name in EXPECTED_DIM if encoder(name).causal] == CAUSAL


def test_caser_ignores_lengths_and_dropout_is_active_in_training():
    states, lengths = histories([3, 3])
    enc = encoder("caser")
    assert torch.allclose(enc(states, lengths), enc(states, torch.tensor([1, 9])))
    enc.train()
    torch.manual_seed(1)
    a = enc(states, lengths)
    torch.manual_seed(2)
    assert not torch.allclose(a, enc(states, lengths))


def test_dropout_keeps_the_right_share_and_scales():
    from sa2c.models.common import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.1).train()
    out = drop(torch.ones(200_000))
    kept = out > 0
    assert abs(kept.float().mean().item() - 0.9) < 0.003
    assert torch.allclose(out[kept], torch.full((int(kept.sum()),), 1 / 0.9))
    x = torch.randn(5, 7, requires_grad=True)
    drop(x).sum().backward()  # gradient is the mask times the scale
    grads = x.grad.unique().tolist()
    assert all(g == 0.0 or g == pytest.approx(1 / 0.9) for g in grads)
    drop.eval()
    assert torch.equal(drop(x), x)
