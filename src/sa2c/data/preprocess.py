"""Raw files -> filtered events (events.npz) and Table 1 statistics (stats.json), as in SPEC.md, "Datasets".

RC15 (yoochoose-clicks.dat, yoochoose-buys.dat): keep sessions with more than 2 clicks; sample `sample_sessions` of
them with a seeded RNG; map item ids to 0..n-1 from the sampled clicks; keep only buys of sampled sessions and drop
buys of items never clicked in the sample; merge clicks (is_buy=0) and buys (is_buy=1).

RetailRocket (events.csv): drop every row that has a transaction id; view = click, addtocart = purchase; keep
visitors (sessions) with more than 2 events, then items with more than 2 events, each filter applied once.

Both: re-index sessions and items to 0..S-1 and 0..n-1 in order of their raw ids, then sort by session, then
timestamp, with a purchase after a click on equal timestamps (stable otherwise).

Raw files are read with pandas' C parser and explicit dtypes. When that fails, a second, slower pass reads the file as
text to name the first bad line, so every error message says which file and line to fix.

Hostile input (tests/test_hostile_inputs.py): ids (sessions, items, transactions, RetailRocket timestamps) must be
non-negative integers below 2**63, anything else is an error naming the line. Bytes that are not UTF-8 are read as
U+FFFD: in a column that is used this makes the line invalid (an error naming it); in the columns that are not used
(RC15 category, price, quantity) they are ignored. A UTF-8 byte-order mark is allowed; a UTF-16 file is an error
saying so. Rows that repeat another row exactly (same session, item, event type and timestamp) are kept, as the
filtering has no de-duplication step, and counted in a warning. Quoted fields and integers written as 5.0 are read
as their values. A compressed file (gzip, 7z, zip, ...) where the unpacked one belongs is an error saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sa2c.errors import DataError
from sa2c.io import save_npz, write_json

log = logging.getLogger(__name__)

CHUNK_ROWS = 2_000_000
MIN_EVENTS = 3  # "more than 2" clicks (RC15) / events (RetailRocket, sessions and items)
DEFAULT_SAMPLE_SESSIONS = 200_000
RR_EVENTS = ("view", "addtocart", "transaction")


# --------------------------------------------------------------------------------------------------------------
# Reading raw files


@dataclass(frozen=True)
class RawLayout:
    """What a raw file looks like: its columns (in order), which of them are read, and a hint for error messages."""

    columns: tuple[str, ...]
    kinds: dict[str, str]  # read column -> "int" | "iso_time" | "event" | "optional_int"
    header: bool
    where: str  # where the file comes from, for messages

    @property
    def used(self) -> list[str]:
        return [c for c in self.columns if c in self.kinds]

    def describe(self) -> str:
        text = ",".join(self.columns)
        return f"header line `{text}`" if self.header else f"no header; columns `{text}`"


YOOCHOOSE = "the RecSys Challenge 2015 archive yoochoose-data.7z"
CLICKS = RawLayout(
    ("session_id", "timestamp", "item_id", "category"),
    {"session_id": "int", "timestamp": "iso_time", "item_id": "int"},
    header=False,
    where=YOOCHOOSE,
)
BUYS = RawLayout(
    ("session_id", "timestamp", "item_id", "price", "quantity"),
    {"session_id": "int", "timestamp": "iso_time", "item_id": "int"},
    header=False,
    where=YOOCHOOSE,
)
RR_EVENTS_FILE = RawLayout(
    ("timestamp", "visitorid", "event", "itemid", "transactionid"),
    {"timestamp": "int", "visitorid": "int", "event": "event", "itemid": "int", "transactionid": "optional_int"},
    header=True,
    where="Kaggle dataset retailrocket/ecommerce-dataset",
)


_COMPRESSED = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"PK\x03\x04", "zip archive"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
)


def _check_file(path: Path, layout: RawLayout, allow_empty: bool = False) -> bool:
    """Existence, emptiness and the first line's shape; returns False for an allowed empty file."""
    if not path.is_file():
        raise DataError(f"{path}: missing. Put the file there ({layout.where}; {layout.describe()}).")
    with open(path, "rb") as fh:
        raw_first = fh.readline()
    for magic, kind in _COMPRESSED:
        if raw_first.startswith(magic):
            raise DataError(f"{path}: is a {kind} file, not text; unpack it and put the unpacked file there.")
    if raw_first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: is UTF-16 text (byte-order mark); save it as UTF-8 or ASCII text.")
    if b"\x00" in raw_first[:4096]:
        raise DataError(
            f"{path}: line 1 has NUL bytes: a binary or UTF-16 file, not text; expected {layout.describe()}."
        )
    first = raw_first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not first.strip():
        if allow_empty and path.stat().st_size == 0:
            return False
        raise DataError(f"{path}: empty (or line 1 is blank); expected {layout.describe()}.")
    fields = first.split(",")
    if layout.header:
        if fields != list(layout.columns):
            raise DataError(f"{path}: line 1 is `{first[:200]}`; expected the {layout.describe()}.")
    elif len(fields) != len(layout.columns):
        raise DataError(
            f"{path}: line 1 has {len(fields)} comma-separated fields, "
            f"expected {len(layout.columns)} ({layout.describe()})."
        )
    return True


def _invalid(values: pd.Series, kind: str) -> np.ndarray:
    """Mask of values (strings) that do not parse as `kind`."""
    if kind == "optional_int":
        present = values != ""
        return present.to_numpy() & _invalid(values.where(present, "0"), "int")
    if kind == "int":  # non-negative, below 2**63 (19 digits at most, and no more than INT64_MAX with 19)
        digits = values.str.strip().str.lstrip("+").str.lstrip("0").fillna("")
        valid = values.str.fullmatch(r"\s*\+?\d+\s*").to_numpy(dtype=bool)
        too_big = (digits.str.len() > 19) | ((digits.str.len() == 19) & (digits > str(INT64_MAX)))
        return ~valid | too_big.to_numpy(dtype=bool)
    if kind == "iso_time":
        return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce").isna().to_numpy()
    if kind == "event":
        return ~values.isin(RR_EVENTS).to_numpy()
    raise ValueError(kind)


def _first_bad_line(path: Path, layout: RawLayout) -> str | None:
    """Read the file again as plain lines and describe the first one that does not parse (None if all do)."""
    n_columns = len(layout.columns)
    optional_last = layout.kinds.get(layout.columns[-1]) == "optional_int"
    reader = pd.read_csv(
        path,
        header=None,
        names=["text"],
        sep="\x1f",  # a separator that never occurs: each line is one string
        dtype=str,
        quoting=3,  # csv.QUOTE_NONE
        keep_default_na=False,
        skip_blank_lines=False,  # so that row numbers are line numbers
        skiprows=1 if layout.header else 0,
        chunksize=CHUNK_ROWS,
        engine="c",
        encoding_errors="replace",
    )
    first_line = 2 if layout.header else 1
    with reader:
        for chunk in reader:
            text = chunk["text"].str.rstrip("\r")
            blank = (text.str.strip() == "").to_numpy()  # blank lines are skipped when reading
            n_fields = text.str.count(",").to_numpy() + 1
            if optional_last:  # an empty transaction id may come without its comma
                missing_last = n_fields == n_columns - 1
                text = text.where(~missing_last, text + ",")
                n_fields[missing_last] = n_columns
            problems: list[tuple[int, str]] = []
            wrong = np.flatnonzero(~blank & (n_fields != n_columns))
            if wrong.size:
                problems.append(
                    (wrong[0], f"has {n_fields[wrong[0]]} fields, expected {n_columns} ({layout.describe()})")
                )
            ok = np.flatnonzero(~blank & (n_fields == n_columns))
            if ok.size:
                fields = text.iloc[ok].str.split(",", expand=True)
                for column, kind in layout.kinds.items():
                    values = fields[layout.columns.index(column)].str.strip()
                    invalid = np.flatnonzero(_invalid(values, kind))
                    if invalid.size:
                        value = values.iloc[invalid[0]]
                        note = " (\ufffd stands for bytes that are not UTF-8 text)" if "\ufffd" in value else ""
                        problems.append(
                            (ok[invalid[0]], f"has {column}={value!r}, not a valid {_KIND_NAMES[kind]}{note}")
                        )
            if problems:
                row, problem = min(problems, key=lambda p: p[0])  # the first line; on it, the first column
                return f"line {first_line + chunk.index[0] + row} {problem}"
    return None


INT64_MAX = 2**63 - 1

_KIND_NAMES = {
    "int": "non-negative integer below 2**63",
    "iso_time": "ISO-8601 timestamp (like 2014-04-07T10:51:09.277Z)",
    "event": f"event ({'/'.join(RR_EVENTS)})",
    "optional_int": "non-negative integer below 2**63, or empty",
}


def _bad_input(path: Path, layout: RawLayout, error: Exception) -> DataError:
    where = _first_bad_line(path, layout)
    if where is None:
        return DataError(f"{path}: cannot be read ({error}); expected {layout.describe()}.")
    return DataError(f"{path}: {where}. Fix or remove that line.")


def read_raw(path: Path, layout: RawLayout, allow_empty: bool = False) -> dict[str, np.ndarray]:
    """The used columns as numpy arrays (timestamps as int64 ms, events as strings, missing transaction ids as -1)."""
    path = Path(path)
    if not _check_file(path, layout, allow_empty):
        return {column: np.zeros(0, dtype=np.int64) for column in layout.used}
    dtypes = {"int": "int64", "iso_time": str, "event": "category", "optional_int": "float64"}
    parts: dict[str, list[np.ndarray]] = {column: [] for column in layout.used}
    unused = [column for column in layout.columns if column not in layout.kinds]
    short_rows = False
    try:
        # All columns are read (unused ones as cheap categoricals): a line with too many fields then fails, and one
        # with too few leaves a gap in the last column.
        with pd.read_csv(
            path,
            header=0 if layout.header else None,
            names=list(layout.columns),
            dtype={
                column: dtypes[layout.kinds[column]] if column in layout.kinds else "category"
                for column in layout.columns
            },
            chunksize=CHUNK_ROWS,
            engine="c",
            encoding_errors="replace",
        ) as reader:
            for chunk in reader:
                for column, kind in layout.kinds.items():
                    parts[column].append(_convert(chunk[column], kind))
                short_rows = short_rows or any(chunk[column].isna().any() for column in unused)
    except (ValueError, OverflowError, pd.errors.ParserError) as err:  # EmptyDataError is a ValueError too
        raise _bad_input(path, layout, err) from None
    if short_rows:  # or merely empty trailing fields, which are fine: only the text pass can tell
        where = _first_bad_line(path, layout)
        if where is not None:
            raise DataError(f"{path}: {where}. Fix or remove that line.")
    return {
        column: np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64) for column, arrays in parts.items()
    }


def _convert(values: pd.Series, kind: str) -> np.ndarray:
    if kind == "iso_time":
        times = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
        if times.isna().any():
            raise ValueError("unparsable timestamp")
        return times.dt.tz_convert(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    if kind == "event":
        if not values.isin(RR_EVENTS).all():
            raise ValueError("unknown event")
        return values.astype(str).to_numpy()
    if kind == "optional_int":  # read as float64: missing -> NaN, kept as -1
        present = values.dropna()
        if (present % 1 != 0).any():
            raise ValueError("non-integer transaction id")
        if (present < 0).any() or (present >= 2.0**63).any():
            raise ValueError("transaction id out of range (must be a non-negative integer below 2**63)")
        return values.fillna(-1).to_numpy(dtype=np.int64)
    array = values.to_numpy(dtype=np.int64)
    if (array < 0).any():
        raise ValueError("negative id")
    return array


# --------------------------------------------------------------------------------------------------------------
# Filtering


def dense_ids(raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map raw ids to 0..n-1 in sorted order of the raw ids: (dense ids, the sorted distinct raw ids)."""
    distinct, dense = np.unique(raw_ids, return_inverse=True)
    return dense.astype(np.int64), distinct


def sort_events(session: np.ndarray, timestamp: np.ndarray, is_buy: np.ndarray) -> np.ndarray:
    """Order by session, then timestamp, then clicks before purchases; stable (np.lexsort is)."""
    return np.lexsort((is_buy, timestamp, session))


def filter_rc15(
    clicks: dict[str, np.ndarray], buys: dict[str, np.ndarray], sample_sessions: int, sample_seed: int
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    dropped: dict[str, int] = {"raw_clicks": len(clicks["item_id"]), "raw_buys": len(buys["item_id"])}
    raw_sessions, clicks_per_session = np.unique(clicks["session_id"], return_counts=True)
    long_sessions = raw_sessions[clicks_per_session >= MIN_EVENTS]
    dropped["raw_sessions"] = len(raw_sessions)
    dropped["sessions_dropped_2_or_fewer_clicks"] = len(raw_sessions) - len(long_sessions)
    if len(long_sessions) == 0:
        raise DataError("yoochoose-clicks.dat: no session has more than 2 clicks; nothing is left after filtering")

    if len(long_sessions) <= sample_sessions:
        if len(long_sessions) < sample_sessions:
            log.warning(
                "only %d sessions have more than 2 clicks, fewer than sample_sessions=%d: using all of them",
                len(long_sessions),
                sample_sessions,
            )
        sampled = long_sessions
    else:
        sampled = np.sort(np.random.default_rng(sample_seed).choice(long_sessions, size=sample_sessions, replace=False))
    dropped["sessions_not_sampled"] = len(long_sessions) - len(sampled)

    keep_click = np.isin(clicks["session_id"], sampled)
    click_session = clicks["session_id"][keep_click]
    click_item_raw = clicks["item_id"][keep_click]
    click_item, item_ids = dense_ids(click_item_raw)
    dropped["clicks_dropped_with_their_session"] = dropped["raw_clicks"] - len(click_item)

    in_sample = np.isin(buys["session_id"], sampled)
    item_clicked = np.isin(buys["item_id"], item_ids)
    dropped["buys_dropped_session_not_sampled"] = int(np.count_nonzero(~in_sample))
    dropped["buys_dropped_item_never_clicked"] = int(np.count_nonzero(in_sample & ~item_clicked))
    if dropped["buys_dropped_item_never_clicked"]:
        log.info(
            "dropped %d buys of sampled sessions whose item is never clicked in the sample (it has no item id)",
            dropped["buys_dropped_item_never_clicked"],
        )
    keep_buy = in_sample & item_clicked
    buy_item = np.searchsorted(item_ids, buys["item_id"][keep_buy])

    session_raw = np.concatenate([click_session, buys["session_id"][keep_buy]])
    session = np.searchsorted(sampled, session_raw)
    events = {
        "session": session,
        "item": np.concatenate([click_item, buy_item]),
        "is_buy": np.r_[np.zeros(len(click_item), np.int8), np.ones(len(buy_item), np.int8)],
        "timestamp": np.concatenate([clicks["timestamp"][keep_click], buys["timestamp"][keep_buy]]),
        "n_items": len(item_ids),
    }
    return events, dropped


def filter_retailrocket(rows: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    dropped: dict[str, int] = {"raw_rows": len(rows["itemid"])}
    has_transaction_id = rows["transactionid"] >= 0
    transaction_event = rows["event"] == "transaction"
    dropped["rows_dropped_with_transaction_id"] = int(np.count_nonzero(has_transaction_id))
    # The authors' code drops rows by transaction id only; a transaction row without one would then count as a
    # click. Such rows do not occur in the published file; drop them too, and say so.
    orphan = transaction_event & ~has_transaction_id
    dropped["transaction_rows_dropped_without_id"] = int(np.count_nonzero(orphan))
    if dropped["transaction_rows_dropped_without_id"]:
        log.warning(
            "dropped %d 'transaction' rows without a transaction id", dropped["transaction_rows_dropped_without_id"]
        )
    keep = ~has_transaction_id & ~transaction_event
    visitor, item, timestamp = rows["visitorid"][keep], rows["itemid"][keep], rows["timestamp"][keep]
    is_buy = (rows["event"][keep] == "addtocart").astype(np.int8)
    dropped["raw_sessions"] = len(np.unique(visitor))

    # Sessions with more than 2 events, then items with more than 2 events (of what is left), once each.
    distinct, index, counts = np.unique(visitor, return_inverse=True, return_counts=True)
    keep = counts[index] >= MIN_EVENTS
    dropped["sessions_dropped_2_or_fewer_events"] = int(np.count_nonzero(counts < MIN_EVENTS))
    dropped["events_dropped_with_short_sessions"] = int(np.count_nonzero(~keep))
    visitor, item, timestamp, is_buy = visitor[keep], item[keep], timestamp[keep], is_buy[keep]

    distinct, index, counts = np.unique(item, return_inverse=True, return_counts=True)
    keep = counts[index] >= MIN_EVENTS
    dropped["items_dropped_2_or_fewer_events"] = int(np.count_nonzero(counts < MIN_EVENTS))
    dropped["events_dropped_with_rare_items"] = int(np.count_nonzero(~keep))
    visitor, item, timestamp, is_buy = visitor[keep], item[keep], timestamp[keep], is_buy[keep]
    if len(item) == 0:
        raise DataError("events.csv: no event is left after the session and item filters (more than 2 events each)")

    session, _ = dense_ids(visitor)
    item, item_ids = dense_ids(item)
    events = {"session": session, "item": item, "is_buy": is_buy, "timestamp": timestamp, "n_items": len(item_ids)}
    return events, dropped


# --------------------------------------------------------------------------------------------------------------
# Statistics


def popularity_hit_rate(item: np.ndarray, is_buy: np.ndarray, n_items: int, k: int = 10) -> dict[str, float | None]:
    """HR@k of one fixed ranking by event count (over all events), separately for clicks and purchases."""
    counts = np.bincount(item, minlength=n_items)
    top = np.argsort(-counts, kind="stable")[:k]
    hit = np.isin(item, top)
    rates: dict[str, float | None] = {}
    for name, mask in (("click", is_buy == 0), ("purchase", is_buy == 1)):
        rates[name] = float(hit[mask].mean()) if mask.any() else None
    return rates


def dataset_stats(events: dict[str, np.ndarray], fmt: str, dropped: dict[str, int]) -> dict:
    session, item, is_buy = events["session"], events["item"], events["is_buy"]
    lengths = np.bincount(session)
    purchases = int(np.count_nonzero(is_buy))
    popularity = popularity_hit_rate(item, is_buy, int(events["n_items"]))
    return {
        "format": fmt,
        "sessions": int(len(lengths)),
        "items": int(events["n_items"]),
        "clicks": int(len(item) - purchases),
        "purchases": purchases,
        "events": int(len(item)),
        "mean_session_length": float(lengths.mean()),
        "median_session_length": float(np.median(lengths)),
        "max_session_length": int(lengths.max()),
        "purchase_fraction": purchases / len(item),
        "popularity_click_hr@10": popularity["click"],
        "popularity_purchase_hr@10": popularity["purchase"],
        "filters": dropped,
    }


# --------------------------------------------------------------------------------------------------------------
# Entry point


def load_and_filter(spec: dict, raw_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    fmt = spec.get("format")
    if fmt == "rc15":
        clicks = read_raw(raw_dir / "yoochoose-clicks.dat", CLICKS)
        buys_path = raw_dir / "yoochoose-buys.dat"
        buys = read_raw(buys_path, BUYS, allow_empty=True)
        log.info("read %d clicks and %d buys from %s", len(clicks["item_id"]), len(buys["item_id"]), raw_dir)
        sample_sessions = int(spec.get("sample_sessions", DEFAULT_SAMPLE_SESSIONS))
        return filter_rc15(clicks, buys, sample_sessions, int(spec.get("sample_seed", 0)))
    if fmt == "retailrocket":
        rows = read_raw(raw_dir / "events.csv", RR_EVENTS_FILE)
        if len(rows["itemid"]) == 0:
            raise DataError(f"{raw_dir / 'events.csv'}: has a header but no events")
        log.info("read %d rows from %s", len(rows["itemid"]), raw_dir / "events.csv")
        return filter_retailrocket(rows)
    raise DataError(f"dataset spec: format={fmt!r} is not one of rc15, retailrocket")


def count_duplicate_events(arrays: dict[str, np.ndarray]) -> int:
    """Events equal to another in session, item, is_buy and timestamp (each group counts all but one)."""
    columns = [arrays[key] for key in ("session", "timestamp", "is_buy", "item")]
    if len(columns[0]) < 2:
        return 0
    order = np.lexsort(columns[::-1])
    same = np.ones(len(order) - 1, dtype=bool)
    for column in columns:
        ordered = column[order]
        same &= ordered[1:] == ordered[:-1]
    return int(np.count_nonzero(same))


def preprocess(spec: dict, raw_dir: Path, out_dir: Path) -> None:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    events, dropped = load_and_filter(spec, raw_dir)
    order = sort_events(events["session"], events["timestamp"], events["is_buy"])
    arrays = {key: np.asarray(events[key])[order] for key in ("session", "item", "is_buy", "timestamp")}
    arrays["session"] = arrays["session"].astype(np.int64)
    arrays["item"] = arrays["item"].astype(np.int64)
    arrays["is_buy"] = arrays["is_buy"].astype(np.int8)
    arrays["timestamp"] = arrays["timestamp"].astype(np.int64)
    arrays["n_items"] = np.int64(events["n_items"])

    duplicates = count_duplicate_events(arrays)
    if duplicates:
        log.warning(
            "%d events repeat another event exactly (same session, item, event type and timestamp); they are kept, "
            "as the filtering has no de-duplication step",
            duplicates,
        )
    stats = dataset_stats(arrays, spec["format"], dropped)
    if stats["purchases"] == 0:
        log.warning("no purchases left after filtering: purchase metrics will be reported as not defined")
    save_npz(out_dir / "events.npz", **arrays)
    write_json(out_dir / "stats.json", stats)
    log.info(
        "%d sessions, %d items, %d clicks, %d purchases (%.2f%%), mean session length %.2f, "
        "popularity click HR@10 %.3f",
        stats["sessions"],
        stats["items"],
        stats["clicks"],
        stats["purchases"],
        100 * stats["purchase_fraction"],
        stats["mean_session_length"],
        stats["popularity_click_hr@10"] if stats["popularity_click_hr@10"] is not None else float("nan"),
    )
