"""Download the real datasets' raw files (SPEC.md, "Datasets").

- RC15: the RecSys Challenge 2015 archive yoochoose-data.7z; yoochoose-clicks.dat and yoochoose-buys.dat are
  extracted from it (py7zr), wherever they sit inside the archive.
- RetailRocket: the Kaggle dataset retailrocket/ecommerce-dataset through Kaggle's API (HTTP basic auth with the
  user's API token); the zip it returns holds events.csv.

Downloads are resumable (bytes go to `<name>.part` beside the target; a rerun asks for the rest with an HTTP Range
request, and starts over if the server ignores it), checked against a known SHA-256 where one is known, and atomic
(the target appears only once complete and verified). Without network, or without a Kaggle token, the step fails at
once with a message naming the files to put in place by hand and where to get them.

Environment: SA2C_RC15_URL and SA2C_KAGGLE_API_URL override the sources (tests use a local server);
KAGGLE_USERNAME + KAGGLE_KEY, or kaggle.json in KAGGLE_CONFIG_DIR (default ~/.kaggle), give the Kaggle token.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from sa2c.errors import DataError

log = logging.getLogger(__name__)

RC15_URL = "https://s3-eu-west-1.amazonaws.com/yc-rdata/yoochoose-data.7z"
RC15_FILES = ("yoochoose-clicks.dat", "yoochoose-buys.dat")
KAGGLE_API_URL = "https://www.kaggle.com/api/v1"
RETAILROCKET_DATASET = "retailrocket/ecommerce-dataset"
RETAILROCKET_PAGE = "https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset"
RETAILROCKET_FILES = ("events.csv",)

# SHA-256 of downloads, by file name. None is recorded yet: the archives could not be fetched where this was
# written. Add a value once verified; an unknown name is downloaded without a check.
KNOWN_SHA256: dict[str, str] = {}

TIMEOUT_S = 20  # connect (and each read): fail fast without network
CHUNK_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------------------------
# Resumable, verified, atomic download


class IncompleteDownload(OSError):
    """The server sent fewer bytes than it announced; what arrived stays in the .part file."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _request(url: str, offset: int, auth: str | None) -> urllib.request.Request:
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    if auth:
        # Not passed on to redirects: Kaggle redirects to a storage host that must not receive the token.
        request.add_unredirected_header("Authorization", auth)
    return request


def download(url: str, target: Path, sha256: str | None = None, auth: str | None = None) -> Path:
    """Fetch `url` into `target`, resuming a previous `<target>.part`; returns `target`.

    Raises urllib/http.client errors and IncompleteDownload for the caller to explain, DataError for corrupt bytes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = urllib.request.urlopen(_request(url, offset, auth), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not offset:
            raise
        # Range not satisfiable: the part is whole already, or stale; only a fresh download can tell.
        log.info("server refused to resume %s (HTTP 416); starting over", url)
        part.unlink()
        offset = 0
        response = urllib.request.urlopen(_request(url, 0, auth), timeout=TIMEOUT_S)

    with response:
        total = None
        mode = "wb"
        if offset and response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                raise DataError(f"{url}: server resumed at byte {start}, not {offset}; delete {part} and run again")
            mode = "ab"
            log.info("resuming %s at byte %d", url, offset)
        else:
            if offset:
                log.info("server ignored the Range request for %s; downloading from the start", url)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with open(part, mode) as fh:
            for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                fh.write(block)

    size = part.stat().st_size
    if total is not None and size != total:
        raise IncompleteDownload(f"the connection closed after {size} of {total} bytes")
    if sha256 is not None:
        actual = _sha256(part)
        if actual != sha256.lower():
            part.unlink()  # corrupt bytes must not be resumed
            raise DataError(
                f"{url}: SHA-256 {actual} does not match the expected {sha256}; the partial file was deleted, run again"
            )
    os.replace(part, target)
    log.info("downloaded %s (%d bytes)", target, size)
    return target


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not match:
        raise DataError(f"server answered a Range request with an unreadable Content-Range {value!r}")
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


# --------------------------------------------------------------------------------------------------------------
# Extraction


def _install(members: dict[str, Path], out_dir: Path) -> list[Path]:
    """Move extracted files into place (each rename is atomic)."""
    paths = []
    for name, extracted in members.items():
        os.replace(extracted, out_dir / name)
        paths.append(out_dir / name)
    return paths


def _find(names: list[str], wanted: tuple[str, ...], archive: Path) -> dict[str, str]:
    """Archive member of each wanted file name (in any folder of the archive)."""
    found = {}
    for name in wanted:
        matches = [member for member in names if member.replace("\\", "/").rsplit("/", 1)[-1] == name]
        if not matches:
            raise DataError(f"{archive}: holds no {name} (members: {', '.join(names[:10])}); delete it and run again")
        found[name] = sorted(matches, key=len)[0]
    return found


def extract_7z(archive: Path, wanted: tuple[str, ...], out_dir: Path) -> list[Path]:
    import py7zr

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".extract-") as tmp:
        try:
            with py7zr.SevenZipFile(archive, "r") as z:
                members = _find(z.getnames(), wanted, archive)
                z.extract(path=tmp, targets=list(members.values()))
        except (py7zr.exceptions.ArchiveError, OSError, EOFError) as err:
            raise DataError(f"{archive}: cannot be extracted ({err}); delete it and run again") from None
        return _install({name: Path(tmp) / member for name, member in members.items()}, out_dir)


def extract_zip(archive: Path, wanted: tuple[str, ...], out_dir: Path) -> list[Path]:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".extract-") as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                members = _find(z.namelist(), wanted, archive)
                extracted = {}
                for name, member in members.items():
                    extracted[name] = Path(tmp) / name
                    with z.open(member) as src, open(extracted[name], "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK_BYTES)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise DataError(f"{archive}: cannot be extracted ({err}); delete it and run again") from None
        return _install(extracted, out_dir)


# --------------------------------------------------------------------------------------------------------------
# The datasets


def _by_hand(files: tuple[str, ...], out_dir: Path, source: str) -> str:
    return f"Put {' and '.join(files)} into {out_dir}/ by hand: {source}"


def kaggle_auth() -> str | None:
    """HTTP basic-auth header value from KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json; None when there is no token."""
    username, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not (username and key):
        config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle")) / "kaggle.json"
        if not config.is_file():
            return None
        try:
            token = json.loads(config.read_text())
            username, key = token["username"], token["key"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(
                f'{config}: not a Kaggle API token ({err!r}); it should be {{"username": ..., "key": ...}}'
            ) from None
    return "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()


def _fetch_rc15(out_dir: Path) -> list[Path]:
    url = os.environ.get("SA2C_RC15_URL", RC15_URL)
    archive = out_dir / url.rstrip("/").rsplit("/", 1)[-1]
    manual = _by_hand(RC15_FILES, out_dir, f"extract them from yoochoose-data.7z (RecSys Challenge 2015), {url}.")
    if not archive.is_file():
        _download_or_explain(url, archive, None, manual)
    return extract_7z(archive, RC15_FILES, out_dir)


def _fetch_retailrocket(out_dir: Path) -> list[Path]:
    base = os.environ.get("SA2C_KAGGLE_API_URL", KAGGLE_API_URL).rstrip("/")
    url = f"{base}/datasets/download/{RETAILROCKET_DATASET}"
    manual = _by_hand(
        RETAILROCKET_FILES,
        out_dir,
        f"download it from {RETAILROCKET_PAGE} (sign in, accept the dataset's terms, unzip). Or create a Kaggle API "
        "token (kaggle.com > Settings > API) and set KAGGLE_USERNAME and KAGGLE_KEY, or save it as "
        "~/.kaggle/kaggle.json, and run again.",
    )
    auth = kaggle_auth()
    if auth is None:
        raise DataError(f"no Kaggle API token (KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json). {manual}")
    archive = out_dir / "retailrocket-ecommerce-dataset.zip"
    if not archive.is_file():
        try:
            _download_or_explain(url, archive, auth, manual)
        except _Refused as err:
            raise DataError(
                f"Kaggle refused the API token for {url} (HTTP {err.code}): check the token and that you accepted the "
                f"dataset's terms on {RETAILROCKET_PAGE}. {manual}"
            ) from None
    return extract_zip(archive, RETAILROCKET_FILES, out_dir)


class _Refused(Exception):
    def __init__(self, code: int):
        self.code = code


def _download_or_explain(url: str, archive: Path, auth: str | None, manual: str) -> None:
    """download(), with network failures turned into a DataError that says what to do by hand."""
    try:
        download(url, archive, sha256=KNOWN_SHA256.get(archive.name), auth=auth)
    except urllib.error.HTTPError as err:
        if auth and err.code in (401, 403):
            raise _Refused(err.code) from None
        reason = f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        reason = f"no connection: {err.reason}"
    except (OSError, http.client.HTTPException) as err:  # the connection broke off mid-download
        reason = f"{type(err).__name__}: {err}"
    else:
        return
    part = archive.with_name(archive.name + ".part")
    resume = f" The partial download {part} is kept: run again to resume." if part.exists() else ""
    raise DataError(f"cannot download {url} ({reason}).{resume} {manual}")


FETCHERS = {"rc15": (_fetch_rc15, RC15_FILES), "retailrocket": (_fetch_retailrocket, RETAILROCKET_FILES)}


def fetch_raw(dataset: str, fmt: str, out_dir: Path) -> list[Path]:
    if fmt not in FETCHERS:
        raise DataError(f"dataset {dataset}: format={fmt!r} is not one of {', '.join(FETCHERS)}")
    fetch, files = FETCHERS[fmt]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    present = [out_dir / name for name in files]
    if all(path.is_file() for path in present):
        log.info("dataset %s: raw files already in %s", dataset, out_dir)
        return present
    log.info("dataset %s: downloading its raw files into %s", dataset, out_dir)
    return fetch(out_dir)
