"""Synthetic raw data in the real datasets' formats (SPEC.md, "Synthetic data").

The data exist to make the paper's comparisons meaningful without the real logs, so their structure is the point:

- a catalogue with long-tailed (Zipf) popularity, split into `groups` (think categories);
- every item has `successors` preferred next items, mostly in its own group, that take `successor_prob` of the next
  clicks (a sequential signal that a sequence model can learn and a popularity ranking cannot); the other next
  clicks revisit an earlier item of the session, or follow popularity within the session's current group or over
  the whole catalogue (the session drifts to another group);
- purchases (~`purchase_rate` of the events after filtering) whose propensity depends on the item (a latent
  buyability) and on how the session got there: higher after a chain of preferred successors, on a revisited item,
  and when the session stays in one group. Next-click prediction alone does not see these; reward-aware methods can;
- purchases placed as in the real logs, not right after their click (which would make "the event after a click of
  X is a purchase of X" and purchase prediction trivial): in RC15 most buys come after the session's last click, in
  the order of their clicks, the rest right after their click; in RetailRocket an add-to-cart follows a few later
  views of the session. Predicting a purchase then takes the session's history (which clicked items are buyable),
  not just the last click;
- RC15-like session lengths: `sessions` sessions with at least 3 clicks (mean about 5-6 events, long tail), plus
  short 1-2 click sessions that the preprocessing filter removes;
- large, non-contiguous raw ids, timestamps over half a year, the raw files' exact layouts.

Generation is vectorised across sessions, one step per click position. Same spec, same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from sa2c.errors import DataError
from sa2c.io import atomic_path

log = logging.getLogger(__name__)

# Structure constants (the spec's keys are the knobs a config may turn; these shape the data around them).
CROSS_GROUP_SUCCESSOR = 0.2  # share of preferred successors taken from another group
# Successors are drawn with weight popularity**beta. Pure popularity (beta = 1) would let a small catalogue's top 10
# items take nearly half of the clicks; beta is chosen per catalogue so that the top 10 items' expected share of the
# clicks (the popularity ranking's click HR@10) is this, whatever the catalogue's size.
TARGET_POPULARITY_HR = 0.25
# How the clicks that do not follow a preferred successor are split.
REVISIT, IN_GROUP, GLOBAL = 0.2, 0.4, 0.4
# Purchase propensity: logit = base + buyability(item) + bonuses for how the session reached the item.
BUYABILITY_STD = 1.6  # strong enough that which clicked item gets bought is learnable from a few thousand sessions
CHAIN_BONUS = 1.0  # reached by at least 2 consecutive preferred-successor steps
REVISIT_BONUS = 1.0  # the item was clicked before in this session
STAY_BONUS = 0.5  # the last 3 clicks are in the item's group
# Session lengths: sessions kept by the filter have 3 + floor(lognormal) clicks.
LENGTH_LOG_MEAN, LENGTH_LOG_STD, MAX_CLICKS = 0.5, 1.0, 200
SHORT_SESSION_FRACTION = 0.3  # extra 1-2 click sessions per kept session
MEAN_GAP_MS = 60_000
# Where purchases go (the raw files' time order). In YooChoose the buys of a session come after its browsing, and
# the bought item was clicked earlier, often not last; in RetailRocket an add-to-cart often follows further views.
# A purchase placed right after its click would make "the next event after a click of X is a purchase of X" and
# purchase prediction trivial for any next-item model.
RC15_BUY_AT_END = 0.75  # share of RC15 buys placed after the session's last click (the rest right after their click)
BUY_GAP_MIN_MS, BUY_GAP_MEAN_MS = 3_000, 60_000  # spacing of end-of-session buys: a few seconds to minutes
RR_CART_DELAY_P = 0.2  # later views before an add-to-cart: geometric, P(0) = this (mean 4), capped by the session
START_MS, END_MS = 1396310400000, 1412121600000  # 2014-04-01 .. 2014-10-01 (UTC)


@dataclass(frozen=True)
class SyntheticSpec:
    sessions: int
    items: int
    seed: int
    zipf: float = 1.0
    successors: int = 5
    successor_prob: float = 0.7
    purchase_rate: float = 0.04
    groups: int = 20

    @classmethod
    def from_dict(cls, spec: dict) -> "SyntheticSpec":
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(spec) - set(known))
        missing = [key for key in ("sessions", "items", "seed") if key not in spec]
        if unknown or missing:
            raise DataError(
                f"synthetic spec: unknown key(s) {unknown} / missing key(s) {missing}; known keys: {', '.join(known)}"
            )
        self = cls(**spec)
        problems = []
        if self.sessions < 10:
            problems.append(f"sessions={self.sessions} must be >= 10")
        if self.items < 20:
            problems.append(f"items={self.items} must be >= 20")
        if self.zipf <= 0:
            problems.append(f"zipf={self.zipf} must be > 0")
        if self.successors < 1:
            problems.append(f"successors={self.successors} must be >= 1")
        if not 0 <= self.successor_prob <= 1:
            problems.append(f"successor_prob={self.successor_prob} must be in [0, 1]")
        # At most one purchase per click, so purchases can be at most half of the events.
        if not 0 <= self.purchase_rate < 0.5:
            problems.append(f"purchase_rate={self.purchase_rate} must be in [0, 0.5)")
        if self.groups < 1:
            problems.append(f"groups={self.groups} must be >= 1")
        if problems:
            raise DataError("synthetic spec: " + "; ".join(problems))
        return self


# --------------------------------------------------------------------------------------------------------------
# The catalogue


@dataclass
class Catalogue:
    popularity: np.ndarray  # [n] probabilities, Zipf over a random order of the items
    group: np.ndarray  # [n]
    successors: np.ndarray  # [n, K] preferred next items (slot 0 the most preferred)
    successor_cdf: np.ndarray  # [K] cumulative probability of each successor slot
    buyability: np.ndarray  # [n] purchase logit of the item itself
    group_items: np.ndarray  # item ids ordered by group
    group_start: np.ndarray  # [G + 1] where each group's items begin in group_items
    group_cdf: np.ndarray  # cumulative popularity along group_items


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)


def _draw_in_group(items_by_group, start, cdf, group, u):
    """Items drawn from the groups `group` by the weights whose running sum along items_by_group is `cdf`."""
    low, high = start[group], start[group + 1]
    below = np.where(low > 0, cdf[np.maximum(low - 1, 0)], 0.0)
    position = np.searchsorted(cdf, below + u * (cdf[high - 1] - below), side="right")
    return items_by_group[np.clip(position, low, high - 1)]


def make_catalogue(spec: SyntheticSpec, rng: np.random.Generator) -> Catalogue:
    n, k = spec.items, spec.successors
    rank = rng.permutation(n)
    popularity = (rank + 1.0) ** -spec.zipf
    popularity /= popularity.sum()
    groups = min(spec.groups, n)
    group = rng.permutation(n) % groups
    group_items = np.argsort(group, kind="stable")
    group_start = np.searchsorted(group[group_items], np.arange(groups + 1))
    slot_weight = 1.0 / np.arange(1, k + 1)
    slot_weight /= slot_weight.sum()

    beta = successor_exponent(spec, popularity, group)
    log.info("successor popularity exponent %.3f", beta)
    weight = popularity**beta
    group_weight_cdf = np.cumsum(weight[group_items])
    weight_cdf = np.cumsum(weight)
    # Each slot is filled from the item's own group, or (CROSS_GROUP_SUCCESSOR of them) from the others; a
    # popular item may fill two slots. Draws that hit the item itself (or its own group, for a cross-group slot)
    # are redrawn.
    rows = np.repeat(np.arange(n), k)
    cross = rng.random(n * k) < CROSS_GROUP_SUCCESSOR
    if groups == 1:
        cross[:] = False
    cross |= np.bincount(group, minlength=groups)[group[rows]] == 1  # an item alone in its group
    successor = np.empty(n * k, dtype=np.int64)
    pending = np.arange(n * k)
    for _ in range(1000):  # each round resolves most of what is left
        u = rng.random(len(pending))
        candidate = np.where(
            cross[pending],
            _inverse_cdf(weight_cdf, u),
            _draw_in_group(group_items, group_start, group_weight_cdf, group[rows[pending]], u),
        )
        accept = (candidate != rows[pending]) & ((group[candidate] != group[rows[pending]]) | ~cross[pending])
        successor[pending[accept]] = candidate[accept]
        pending = pending[~accept]
        if len(pending) == 0:
            break
    else:
        raise DataError("synthetic spec: could not draw successors (one group holds nearly all the popularity)")
    return Catalogue(
        popularity=popularity,
        group=group,
        successors=successor.reshape(n, k),
        successor_cdf=np.cumsum(slot_weight),
        buyability=rng.normal(0.0, BUYABILITY_STD, n),
        group_items=group_items,
        group_start=group_start,
        group_cdf=np.cumsum(popularity[group_items]),
    )


def expected_clicks(spec: SyntheticSpec, popularity: np.ndarray, group: np.ndarray, beta: float) -> np.ndarray:
    """The share of the clicks each item can expect, before the successors are drawn.

    A session's first click follows popularity; a later click follows a preferred successor of the previous click
    (drawn by popularity**beta, within the group with probability 1 - CROSS_GROUP_SUCCESSOR), or revisits an earlier
    click, or follows popularity within the previous click's group or over the catalogue. Given the share of the
    clicks in each group, each item's share follows; iterate to the fixed point.
    """
    first = 1.0 / (3 + np.exp(LENGTH_LOG_MEAN + LENGTH_LOG_STD**2 / 2) - 0.5)  # share of first clicks
    q = spec.successor_prob
    groups = int(group.max()) + 1
    weight = popularity**beta
    group_weight = np.bincount(group, weights=weight, minlength=groups)
    group_popularity = np.bincount(group, weights=popularity, minlength=groups)
    cross = CROSS_GROUP_SUCCESSOR if groups > 1 else 0.0
    outside_weight = np.maximum(weight.sum() - group_weight, 1e-300)
    group_share = group_popularity.copy()
    for _ in range(200):
        from_outside = (group_share / outside_weight).sum() - group_share / outside_weight  # per group
        successor = q * weight * ((1 - cross) * group_share[group] / group_weight[group] + cross * from_outside[group])
        by_popularity = popularity * (
            first / (1 - first) + (1 - q) * (IN_GROUP * group_share[group] / group_popularity[group] + GLOBAL)
        )
        clicks = (successor + by_popularity) / (1 - (1 - q) * REVISIT)
        clicks /= clicks.sum()
        new_share = np.bincount(group, weights=clicks, minlength=groups)
        if np.abs(new_share - group_share).max() < 1e-12:
            break
        group_share = new_share
    return clicks


def successor_exponent(spec: SyntheticSpec, popularity: np.ndarray, group: np.ndarray, top: int = 10) -> float:
    """beta in [0, 1] that brings the expected click share of the top `top` items to TARGET_POPULARITY_HR."""

    def top_share(beta: float) -> float:
        return float(np.sort(expected_clicks(spec, popularity, group, beta))[-top:].sum())

    if top_share(1.0) <= TARGET_POPULARITY_HR:
        return 1.0
    if top_share(0.0) >= TARGET_POPULARITY_HR:
        return 0.0
    low, high = 0.0, 1.0  # the top share rises with beta
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if top_share(middle) < TARGET_POPULARITY_HR else (low, middle)
    return (low + high) / 2


# --------------------------------------------------------------------------------------------------------------
# Sessions


@dataclass
class Clicks:
    """All clicks, session by session (session s holds positions offset[s] .. offset[s] + length[s] - 1)."""

    length: np.ndarray  # [S]
    offset: np.ndarray  # [S]
    item: np.ndarray  # [N]
    successor_chain: np.ndarray  # [N] consecutive preferred-successor steps that led to this click
    group_run: np.ndarray  # [N] consecutive earlier clicks in this click's group

    @property
    def session(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.length)), self.length)

    @property
    def position(self) -> np.ndarray:
        return np.arange(len(self.item)) - np.repeat(self.offset, self.length)


def session_lengths(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    long = 3 + np.floor(rng.lognormal(LENGTH_LOG_MEAN, LENGTH_LOG_STD, spec.sessions)).astype(np.int64)
    short = rng.integers(1, 3, int(round(SHORT_SESSION_FRACTION * spec.sessions)))
    return rng.permutation(np.minimum(np.r_[long, short], MAX_CLICKS))


def generate_clicks(spec: SyntheticSpec, catalogue: Catalogue, rng: np.random.Generator) -> Clicks:
    length = session_lengths(spec, rng)
    offset = np.r_[0, np.cumsum(length)[:-1]]
    total = int(length.sum())
    item = np.empty(total, dtype=np.int64)
    chain = np.zeros(total, dtype=np.int64)
    run = np.zeros(total, dtype=np.int64)
    popularity_cdf = np.cumsum(catalogue.popularity)
    item[offset] = _inverse_cdf(popularity_cdf, rng.random(len(length)))

    # Longest sessions first, so the sessions still going at position t are a prefix of this order.
    by_length = np.argsort(-length, kind="stable")
    descending = -length[by_length]
    mode_cdf = np.cumsum([spec.successor_prob] + [(1 - spec.successor_prob) * p for p in (REVISIT, IN_GROUP, GLOBAL)])
    for t in range(1, int(length.max())):
        active = by_length[: np.searchsorted(descending, -t, side="left")]  # sessions longer than t
        here = offset[active] + t
        previous = item[here - 1]
        mode = np.minimum(np.searchsorted(mode_cdf, rng.random(len(active)) * mode_cdf[-1], side="right"), 3)
        u = rng.random(len(active))
        chosen = np.empty(len(active), dtype=np.int64)

        pick = mode == 0  # a preferred successor of the previous click
        slot = np.minimum(np.searchsorted(catalogue.successor_cdf, u[pick], side="right"), spec.successors - 1)
        chosen[pick] = catalogue.successors[previous[pick], slot]
        pick = mode == 1  # an earlier click of this session
        chosen[pick] = item[offset[active[pick]] + (u[pick] * t).astype(np.int64)]
        pick = mode == 2  # popularity within the previous click's group
        chosen[pick] = _draw_in_group(
            catalogue.group_items, catalogue.group_start, catalogue.group_cdf, catalogue.group[previous[pick]], u[pick]
        )
        pick = mode == 3  # popularity over the catalogue
        chosen[pick] = _inverse_cdf(popularity_cdf, u[pick])

        item[here] = chosen
        chain[here] = np.where(mode == 0, chain[here - 1] + 1, 0)
        run[here] = np.where(catalogue.group[chosen] == catalogue.group[previous], run[here - 1] + 1, 0)
    return Clicks(length=length, offset=offset, item=item, successor_chain=chain, group_run=run)


def first_visit(session: np.ndarray, item: np.ndarray) -> np.ndarray:
    """True where an item is clicked for the first time in its session (positions are in order within sessions)."""
    order = np.lexsort((np.arange(len(item)), item, session))
    new_pair = np.r_[True, (session[order][1:] != session[order][:-1]) | (item[order][1:] != item[order][:-1])]
    first = np.empty(len(item), dtype=bool)
    first[order] = new_pair
    return first


def purchase_logit(clicks: Clicks, catalogue: Catalogue) -> np.ndarray:
    revisit = ~first_visit(clicks.session, clicks.item)
    return (
        catalogue.buyability[clicks.item]
        + CHAIN_BONUS * (clicks.successor_chain >= 2)
        + REVISIT_BONUS * revisit
        + STAY_BONUS * (clicks.group_run >= 2)
    )


def calibrated_offset(logit: np.ndarray, mean_probability: float) -> float:
    """b such that the mean of sigmoid(b + logit) is `mean_probability` (bisection; the mean rises with b)."""
    low, high = -40.0, 40.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(middle + logit)))) < mean_probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def draw_purchases(spec: SyntheticSpec, clicks: Clicks, catalogue: Catalogue, rng: np.random.Generator) -> np.ndarray:
    """Which clicks lead to a purchase of the clicked item (placed later by the writers, not necessarily next)."""
    logit = purchase_logit(clicks, catalogue)
    u = rng.random(len(logit))
    if spec.purchase_rate == 0:
        return np.zeros(len(logit), dtype=bool)
    # Calibrated on the sessions the filter keeps, so that purchases are `purchase_rate` of the filtered events
    # (one purchase per click at most: purchases / clicks = rate / (1 - rate)).
    kept = np.repeat(clicks.length >= 3, clicks.length)
    base = calibrated_offset(logit[kept], spec.purchase_rate / (1 - spec.purchase_rate))
    return u < 1.0 / (1.0 + np.exp(-(base + logit)))


def click_times(clicks: Clicks, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Click timestamps (ms) and each click's gap to the next click of its session (a made-up one after the last)."""
    n_sessions = len(clicks.length)
    start = np.sort(rng.integers(START_MS, END_MS, n_sessions))  # session ids rise with time, as in YooChoose
    gap = 2000 + rng.exponential(MEAN_GAP_MS, len(clicks.item)).astype(np.int64)
    elapsed = np.cumsum(gap) - gap
    elapsed -= np.repeat(elapsed[clicks.offset], clicks.length)
    return np.repeat(start, clicks.length) + elapsed, gap


def _within_gap(anchor: np.ndarray, times: np.ndarray, gap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Times strictly between click `anchor` and the next click of its session (or the made-up gap after the last)."""
    return times[anchor] + 1 + (rng.random(len(anchor)) * (gap[anchor] - 2)).astype(np.int64)


def rc15_buy_times(
    clicks: Clicks, rows: np.ndarray, times: np.ndarray, gap: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Buy timestamps of the bought clicks `rows` (ascending click indices).

    RC15_BUY_AT_END of the buys (and every buy of a session's last click) come after the session's last click, in
    the order of their clicks, BUY_GAP_MIN_MS plus an exponential BUY_GAP_MEAN_MS apart; the others come right after
    their click, before the session's next click.
    """
    session = clicks.session[rows]
    last = (clicks.offset + clicks.length - 1)[session]
    at_end = (rng.random(len(rows)) < RC15_BUY_AT_END) | (rows == last)
    spacing = BUY_GAP_MIN_MS + rng.exponential(BUY_GAP_MEAN_MS, len(rows)).astype(np.int64)
    # Running sum of the spacings of the end buys within each session (rows are in click order).
    end_rows = np.flatnonzero(at_end)
    running = np.cumsum(spacing[end_rows])
    first_of_session = np.diff(session[end_rows], prepend=-1) != 0
    before_session = np.maximum.accumulate(np.where(first_of_session, running - spacing[end_rows], 0))
    buy_time = _within_gap(rows, times, gap, rng)
    buy_time[end_rows] = times[last[end_rows]] + running - before_session
    return buy_time


def retailrocket_cart_times(
    clicks: Clicks, rows: np.ndarray, times: np.ndarray, gap: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Add-to-cart timestamps of the bought views `rows`: after a geometric number of the session's later views
    (P(none) = RR_CART_DELAY_P; past the last view it is after the last view), before the view that follows."""
    session = clicks.session[rows]
    last = (clicks.offset + clicks.length - 1)[session]
    anchor = np.minimum(rows + rng.geometric(RR_CART_DELAY_P, len(rows)) - 1, last)
    return _within_gap(anchor, times, gap, rng)


# --------------------------------------------------------------------------------------------------------------
# Raw ids and files


def _distinct_ids(rng: np.random.Generator, count: int, low: int, span: int) -> np.ndarray:
    """`count` distinct random ids in [low, low + span) (span widened if needed), in random order."""
    span = max(span, 10 * count)
    return low + rng.choice(span, size=count, replace=False)


def _iso(ms: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "Z")


def _write_csv(path: Path, frame: pd.DataFrame, header: bool) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, header=header, index=False, lineterminator="\n")
    log.info("wrote %s (%d rows)", path, len(frame))
    return path


def _write_rc15(out_dir: Path, n_items: int, clicks: Clicks, bought, times, gap, rng) -> list[Path]:
    session_id = 1 + np.cumsum(rng.integers(1, 6, len(clicks.length)))  # rising, with gaps
    item_id = _distinct_ids(rng, n_items, 214_500_000, 1_000_000)
    price = np.maximum(1, rng.lognormal(7.0, 1.0, n_items)).astype(np.int64)
    session = clicks.session
    paths = [
        _write_csv(
            out_dir / "yoochoose-clicks.dat",
            pd.DataFrame(
                {
                    "session_id": session_id[session],
                    "timestamp": _iso(times),
                    "item_id": item_id[clicks.item],
                    "category": 0,
                }
            ),
            header=False,
        )
    ]
    rows = np.flatnonzero(bought)
    buy_time = rc15_buy_times(clicks, rows, times, gap, rng)
    quantity = np.where(rng.random(len(rows)) < 0.8, 1, rng.integers(2, 5, len(rows)))
    buys = pd.DataFrame(
        {
            "session_id": session_id[session[rows]],
            "timestamp": _iso(buy_time),
            "item_id": item_id[clicks.item[rows]],
            "price": price[clicks.item[rows]],
            "quantity": quantity,
        }
    )
    paths.append(_write_csv(out_dir / "yoochoose-buys.dat", buys, header=False))
    return paths


def _write_retailrocket(out_dir: Path, n_items: int, clicks: Clicks, bought, times, gap, rng) -> list[Path]:
    visitor_id = _distinct_ids(rng, len(clicks.length), 0, 1_500_000)
    item_id = _distinct_ids(rng, n_items, 0, 470_000)
    session = clicks.session
    rows = np.flatnonzero(bought)
    cart_time = retailrocket_cart_times(clicks, rows, times, gap, rng)
    # About half of the carts are paid for: a later "transaction" row with a transaction id (the filter drops it).
    paid = rows[rng.random(len(rows)) < 0.5]
    paid_time = cart_time[np.searchsorted(rows, paid)] + rng.integers(1000, 600_000, len(paid))
    transaction_id = _distinct_ids(rng, len(paid), 1, 20_000)
    frame = pd.DataFrame(
        {
            "timestamp": np.r_[times, cart_time, paid_time],
            "visitorid": visitor_id[np.r_[session, session[rows], session[paid]]],
            "event": np.r_[
                np.full(len(times), "view"), np.full(len(rows), "addtocart"), np.full(len(paid), "transaction")
            ],
            "itemid": item_id[np.r_[clicks.item, clicks.item[rows], clicks.item[paid]]],
            "transactionid": pd.array(np.r_[np.full(len(times) + len(rows), -1), transaction_id], dtype="Int64"),
        }
    )
    frame["transactionid"] = frame["transactionid"].mask(frame["transactionid"] < 0)
    # One log in time order, visitors mixed.
    frame = frame.iloc[np.argsort(frame["timestamp"].to_numpy(), kind="stable")]
    return [_write_csv(out_dir / "events.csv", frame, header=True)]


WRITERS = {"rc15": _write_rc15, "retailrocket": _write_retailrocket}


@dataclass
class Simulation:
    """Everything drawn before the raw files are written; `rng` continues into the writer."""

    catalogue: Catalogue
    clicks: Clicks
    bought: np.ndarray  # [N] which clicks lead to a purchase of the clicked item
    times: np.ndarray  # [N] click timestamps (ms)
    gap: np.ndarray  # [N] gap to the session's next click (made up after the last)
    rng: np.random.Generator


def simulate(params: SyntheticSpec) -> Simulation:
    rng = np.random.default_rng(params.seed)
    catalogue = make_catalogue(params, rng)
    clicks = generate_clicks(params, catalogue, rng)
    bought = draw_purchases(params, clicks, catalogue, rng)
    times, gap = click_times(clicks, rng)
    return Simulation(catalogue, clicks, bought, times, gap, rng)


def generate(fmt: str, out_dir: Path, spec: dict) -> list[Path]:
    if fmt not in WRITERS:
        raise DataError(f"synthetic data: format={fmt!r} is not one of {', '.join(WRITERS)}")
    params = SyntheticSpec.from_dict(spec)
    sim = simulate(params)
    clicks, bought, times, gap, rng = sim.clicks, sim.bought, sim.times, sim.gap, sim.rng
    log.info(
        "generated %d sessions (%d with 3+ clicks), %d clicks, %d purchases over %d items",
        len(clicks.length),
        int(np.count_nonzero(clicks.length >= 3)),
        len(clicks.item),
        int(bought.sum()),
        params.items,
    )
    return WRITERS[fmt](Path(out_dir), params.items, clicks, bought, times, gap, rng)
