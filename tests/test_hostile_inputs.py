"""Hostile inputs: malformed raw files and out-of-range configs. Every case is either one clear error (naming the
file and line, or the config key, and no traceback) or a documented fallback (src/sa2c/data/preprocess.py's
docstring), checked here. tests/test_data_preprocess.py has the plainer format errors; tests/test_config.py the
schema."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sa2c import cli
from sa2c.config import TrainConfig
from sa2c.data.preprocess import preprocess
from sa2c.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_data_preprocess import BUYS, CLICKS, EVENTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def raw_dir(tmp_path: Path, fmt: str, data: bytes) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if fmt == "rc15":
        (raw / "yoochoose-clicks.dat").write_bytes(data)
        (raw / "yoochoose-buys.dat").write_text(BUYS)
    else:
        (raw / "events.csv").write_bytes(data)
    return raw


def spec(fmt: str) -> dict:
    return {"format": "rc15" if fmt == "rc15" else "retailrocket"}


def events_of(out: Path) -> dict:
    with np.load(out / "events.npz") as npz:
        return {key: npz[key] for key in npz.files}


CLICKS_B, EVENTS_B = CLICKS.encode(), EVENTS.encode()

# (format, file content, the error's text after the file name)
ERRORS = {
    # truncated: the last line cut in the middle (a download or copy that stopped)
    "truncated mid-line": ("rc15", CLICKS_B[:-12], r"line 10 has 3 fields, expected 4"),
    "truncated mid-field": ("rr", EVENTS_B[: EVENTS_B.index(b"addtocart,7,") + 5], r"line 19 has 3 fields, expected 5"),
    # wrong delimiter
    "tab-separated clicks": ("rc15", CLICKS_B.replace(b",", b"\t"), r"line 1 has 1 comma-separated fields, expected 4"),
    "semicolon-separated events": ("rr", EVENTS_B.replace(b",", b";"),
                                   r"line 1 is `timestamp;visitorid;event;itemid;transactionid`; expected the header"),
    # bytes that are not UTF-8 (or not text at all)
    "non-UTF-8 byte in an item id": ("rc15", CLICKS_B.replace(b"214000005", b"2140\xff0005"),
                                     r"line 4 has item_id='2140\ufffd0005', not a valid non-negative integer below "
                                     r"2\*\*63 \(\ufffd stands for bytes that are not UTF-8 text\)"),
    "latin-1 event name": ("rr", EVENTS_B.replace(b"500,300,view", b"500,300,vi\xe9w"),
                           r"line 9 has event='vi\ufffdw', not a valid event"),
    "UTF-16 file": ("rr", EVENTS.encode("utf-16"), r"is UTF-16 text \(byte-order mark\); save it as UTF-8"),
    "gzip file where the text belongs": ("rc15", gzip.compress(CLICKS_B), r"is a gzip-compressed file, not text; unpack it"),
    "NUL byte in a field": ("rc15", CLICKS_B.replace(b"214000005", b"2140\x000005"), r"line 4 has item_id='2140\\x000005'"),
    # negative or huge ids
    "negative session id": ("rc15", CLICKS_B.replace(b"20,2014-04-01T11:00:00", b"-20,2014-04-01T11:00:00"),
                            r"line 4 has session_id='-20', not a valid non-negative integer"),
    "negative item id": ("rc15", CLICKS_B.replace(b"214000005", b"-214000005"), r"line 4 has item_id='-214000005'"),
    "negative transaction id": ("rr", EVENTS_B.replace(b"transaction,6,77", b"transaction,6,-77"),
                                r"line 5 has transactionid='-77', not a valid non-negative integer below 2\*\*63, or empty"),
    "negative timestamp": ("rr", EVENTS_B.replace(b"1500,200", b"-1500,200"), r"line 7 has timestamp='-1500'"),
    "item id beyond int64": ("rc15", CLICKS_B.replace(b"214000005", b"99999999999999999999"),
                             r"line 4 has item_id='99999999999999999999', not a valid non-negative integer below 2\*\*63"),
    "item id 2**63": ("rc15", CLICKS_B.replace(b"214000005", b"9223372036854775808"),
                      r"line 4 has item_id='9223372036854775808'"),
    "visitor id beyond int64": ("rr", EVENTS_B.replace(b"500,300,", b"500,300000000000000000000,"),
                                r"line 9 has visitorid='300000000000000000000'"),
    "transaction id beyond int64": ("rr", EVENTS_B.replace(b"transaction,6,77", b"transaction,6,99999999999999999999999"),
                                    r"line 5 has transactionid='99999999999999999999999'"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_malformed_raw_file_is_one_clear_error_naming_file_and_line(tmp_path, case):
    fmt, data, message = ERRORS[case]
    raw = raw_dir(tmp_path, fmt, data)
    name = "yoochoose-clicks.dat" if fmt == "rc15" else "events.csv"
    with pytest.raises(DataError, match=rf"^{raw / name}: {message}"):
        preprocess(spec(fmt), raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_the_error_reaches_the_user_as_one_line_without_a_traceback(tmp_path):
    fmt, data, _ = ERRORS["non-UTF-8 byte in an item id"]
    raw = raw_dir(tmp_path, fmt, data)
    result = subprocess.run(
        [sys.executable, "-m", "sa2c.cli", "preprocess", "--dataset", "d", "--spec", json.dumps(spec(fmt)),
         "--raw-dir", str(raw), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=ENV,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"ERROR sa2c: {raw / 'yoochoose-clicks.dat'}: line 4 has item_id=" in result.stderr


# Documented fallbacks: (format, hostile content, the clean content it must equal)
FALLBACKS = {
    "non-UTF-8 byte in an unused column (category)": (
        "rc15", CLICKS_B.replace(b"214000007,S", b"214000007,\xe9"), CLICKS_B),
    "UTF-8 byte-order mark (clicks)": ("rc15", b"\xef\xbb\xbf" + CLICKS_B, CLICKS_B),
    "UTF-8 byte-order mark (events.csv header)": ("rr", b"\xef\xbb\xbf" + EVENTS_B, EVENTS_B),
    "quoted fields": ("rc15", CLICKS_B.replace(b"214000005", b'"214000005"'), CLICKS_B),
    "integer id written as 5.0": ("rc15", CLICKS_B.replace(b"214000005", b"214000005.0"), CLICKS_B),
    "id 2**63 - 1 (largest allowed)": ("rc15", CLICKS_B.replace(b"214000008", b"9223372036854775807"), CLICKS_B),
    "truncated at a line end": ("rc15", CLICKS_B[: CLICKS_B.index(b"40,2014")], CLICKS_B[: CLICKS_B.index(b"40,2014")]),
}


@pytest.mark.parametrize("case", list(FALLBACKS))
def test_documented_fallbacks_read_the_same_events(tmp_path, case):
    fmt, hostile, clean = FALLBACKS[case]
    preprocess(spec(fmt), raw_dir(tmp_path / "a", fmt, hostile), tmp_path / "a" / "out")
    preprocess(spec(fmt), raw_dir(tmp_path / "b", fmt, clean), tmp_path / "b" / "out")
    a, b = events_of(tmp_path / "a" / "out"), events_of(tmp_path / "b" / "out")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "fmt, hostile, clean, duplicates",
    [
        ("rc15", CLICKS_B + CLICKS_B.splitlines(True)[6] * 2, CLICKS_B, 2),
        ("rr", EVENTS_B + b"400,400,addtocart,9,\n", EVENTS_B, 1),
    ],
)
def test_duplicate_rows_are_kept_and_counted(tmp_path, caplog, fmt, hostile, clean, duplicates):
    """Documented fallback: exact duplicate rows stay events (the filters have no de-duplication step); a warning
    says how many."""
    with caplog.at_level("WARNING"):
        preprocess(spec(fmt), raw_dir(tmp_path / "a", fmt, hostile), tmp_path / "a" / "out")
    assert f"{duplicates} events repeat another event exactly" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        preprocess(spec(fmt), raw_dir(tmp_path / "b", fmt, clean), tmp_path / "b" / "out")
    assert "repeat another event" not in caplog.text
    assert len(events_of(tmp_path / "a" / "out")["item"]) == len(events_of(tmp_path / "b" / "out")["item"]) + duplicates


# ---------------------------------------------------------------------------------------------------- configs


def bad_config(tmp_path: Path, mutate) -> Path:
    config = yaml.safe_load(open(ROOT / "config" / "test.yaml"))
    mutate(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["train"].update(lr=-0.01), ["-0.01 is less than or equal to the minimum of 0", "['train']['lr']"]),
        (lambda c: c["methods"]["snqn"].update(n_negatives=0),
         ["0 is less than the minimum of 1", "['methods']['snqn']['n_negatives']"]),
        (lambda c: c.update(encoders=["gru", "bert4rec"]), ["'bert4rec' is not one of", "['encoders'][1]"]),
        (lambda c: c["methods"]["sa2c"].update(encoder="transformer"),
         ["'transformer' is not one of", "['methods']['sa2c']['encoder']"]),
    ],
    ids=["negative lr", "zero negatives", "unknown encoder", "unknown encoder of a method"],
)
def test_out_of_range_config_stops_snakemake_naming_the_key(tmp_path, mutate, expected):
    path = bad_config(tmp_path, mutate)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(tmp_path), "--configfile", str(path)], capture_output=True, text=True)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error validating config file" in text
    for fragment in expected:
        assert fragment in text
    assert "Traceback" not in text and not (tmp_path / "results").exists()  # stopped before any job


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": -0.01}, "lr=-0.01 and lr_actor=0.001 must be > 0"),
        ({"method": "snqn", "n_negatives": 0}, "n_negatives=0 must be >= 1 for method snqn"),
        ({"encoder": "transformer"}, "encoder='transformer' is not one of gru, caser, nextitnet, sasrec"),
        ({"epochs": 0}, "epochs=0 must be > 0"),
        ({"gamma": 1.5}, "gamma=1.5 must be in [0, 1]"),
        ({"select_metric": "mean/ndcg@11"}, "select_metric='mean/ndcg@11' must be"),
        ({"learning_rate": 0.1}, "unknown training config key(s): learning_rate"),
    ],
)
def test_out_of_range_train_spec_on_the_command_line_is_one_clear_error(tmp_path, caplog, values, message):
    """`sa2c train --spec` bypasses the schema (a user calling it by hand): TrainConfig checks, one message, exit 2,
    before any data is read or torch imported."""
    spec = {"0": {**TrainConfig().to_dict(), **values}}
    rc = cli.main(["train", "--data-dir", str(tmp_path / "none"), "--run-dir", str(tmp_path / "runs/d/gru/m"),
                   "--log-dir", str(tmp_path / "logs"), "--folds", "0", "--spec", json.dumps(spec)])
    assert rc == 2
    assert message in caplog.text and "--spec, seed 0" in caplog.text
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--spec", "{not json"], "--spec is not valid JSON"),
        (["--spec", "[]"], "--spec must be a JSON object"),
        (["--spec", json.dumps({"zero": TrainConfig().to_dict()})], "--spec, seed zero"),
        (["--spec", json.dumps({"0": TrainConfig().to_dict()}), "--folds", "0,one"], "--folds '0,one'"),
    ],
)
def test_malformed_command_line_arguments_are_clear_errors(tmp_path, caplog, args, message):
    argv = ["train", "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "r"), "--log-dir", str(tmp_path / "l"),
            "--folds", "0", "--spec", "{}"]
    for flag, value in zip(args[::2], args[1::2]):
        argv[argv.index(flag) + 1] = value
    assert cli.main(argv) == 2
    assert message in caplog.text
