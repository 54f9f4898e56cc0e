"""Downloads against a local HTTP server on 127.0.0.1: extraction, resume, restart, checksum, Kaggle auth, no token."""

import base64
import hashlib
import io
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import py7zr
import pytest

from sa2c.data import download as dl
from sa2c.data.download import download, fetch_raw
from sa2c.errors import DataError

CLICKS = b"1,2014-04-07T10:51:09.277Z,214536502,0\n" * 2000
BUYS = b"1,2014-04-07T10:55:09.277Z,214536502,1000,1\n" * 100
EVENTS = b"timestamp,visitorid,event,itemid,transactionid\n" + b"1433221332117,257597,view,355908,\n" * 2000
TOKEN = ("someone", "secret-key")


class FakeServer(BaseHTTPRequestHandler):
    """Serves `files` with Range support; `behaviour` can cut a response short or ignore Range."""

    files: dict[str, bytes] = {}
    behaviour: dict[str, str] = {}
    requests: list[tuple[str, dict]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.requests.append((self.path, dict(self.headers)))
        if self.path == "/api/v1/datasets/download/retailrocket/ecommerce-dataset":
            expected = "Basic " + base64.b64encode(":".join(TOKEN).encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.send_error(401, "Unauthorized")
            self.send_response(302)  # like Kaggle: off to a storage host
            self.send_header("Location", "/storage/ecommerce-dataset.zip")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if self.path.startswith("/storage/") and "Authorization" in self.headers:
            return self.send_error(400, "token must not reach the storage host")
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            return self.send_error(404)
        body = self.files[name]
        start = 0
        ranged = self.headers.get("Range")
        if ranged and self.behaviour.get(name) != "ignore-range":
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                return self.send_error(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.behaviour.get(name) == "cut-once":  # the connection breaks off halfway through
            del self.behaviour[name]
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server(monkeypatch, tmp_path):
    FakeServer.files, FakeServer.behaviour, FakeServer.requests = {}, {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("SA2C_RC15_URL", f"{base}/files/yoochoose-data.7z")
    monkeypatch.setenv("SA2C_KAGGLE_API_URL", f"{base}/api/v1")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    yield base
    httpd.shutdown()
    httpd.server_close()


def make_7z(tmp_path):
    path = tmp_path / "made.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(CLICKS, "yoochoose-data/yoochoose-clicks.dat")
        archive.writestr(BUYS, "yoochoose-data/yoochoose-buys.dat")
        archive.writestr(b"readme", "yoochoose-data/dataset-README.txt")
    return path.read_bytes()


def make_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("category_tree.csv", "categoryid,parentid\n1,2\n")
        archive.writestr("ecommerce-dataset/events.csv", EVENTS)
    return buffer.getvalue()


def test_rc15_download_and_extract_from_a_subfolder(server, tmp_path):
    FakeServer.files["yoochoose-data.7z"] = make_7z(tmp_path)
    out = tmp_path / "resources" / "raw" / "rc15"
    paths = fetch_raw("rc15", "rc15", out)
    assert [p.name for p in paths] == ["yoochoose-clicks.dat", "yoochoose-buys.dat"]
    assert (out / "yoochoose-clicks.dat").read_bytes() == CLICKS
    assert (out / "yoochoose-buys.dat").read_bytes() == BUYS
    assert not list(out.glob("*.part")) and not list(out.glob(".extract-*"))
    # Already there: no second request.
    count = len(FakeServer.requests)
    fetch_raw("rc15", "rc15", out)
    assert len(FakeServer.requests) == count


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    archive = make_7z(tmp_path)
    FakeServer.files["yoochoose-data.7z"] = archive
    FakeServer.behaviour["yoochoose-data.7z"] = "cut-once"
    out = tmp_path / "raw"
    with pytest.raises(DataError, match=r"yoochoose-data.7z.part is kept: run again to resume"):
        fetch_raw("rc15", "rc15", out)
    part = out / "yoochoose-data.7z.part"
    assert part.stat().st_size == len(archive) // 2
    assert not (out / "yoochoose-data.7z").exists() and not (out / "yoochoose-clicks.dat").exists()

    fetch_raw("rc15", "rc15", out)
    assert FakeServer.requests[-1][1].get("Range") == f"bytes={len(archive) // 2}-"
    assert (out / "yoochoose-data.7z").read_bytes() == archive
    assert (out / "yoochoose-clicks.dat").read_bytes() == CLICKS and not part.exists()


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    body = bytes(range(256)) * 100
    FakeServer.files["blob.bin"] = body
    FakeServer.behaviour["blob.bin"] = "ignore-range"
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes from another file")
    download(f"{server}/files/blob.bin", tmp_path / "blob.bin")
    assert FakeServer.requests[-1][1].get("Range") == "bytes=29-"
    assert (tmp_path / "blob.bin").read_bytes() == body


def test_part_already_whole_restarts_after_416(server, tmp_path):
    body = b"0123456789" * 50
    FakeServer.files["blob.bin"] = body
    (tmp_path / "blob.bin.part").write_bytes(body)  # e.g. killed between the last byte and the rename
    download(f"{server}/files/blob.bin", tmp_path / "blob.bin")
    assert [headers.get("Range") for _, headers in FakeServer.requests] == ["bytes=500-", None]
    assert (tmp_path / "blob.bin").read_bytes() == body and not (tmp_path / "blob.bin.part").exists()


def test_checksum(server, tmp_path):
    body = b"payload" * 1000
    FakeServer.files["blob.bin"] = body
    good = hashlib.sha256(body).hexdigest()
    download(f"{server}/files/blob.bin", tmp_path / "ok.bin", sha256=good)
    assert (tmp_path / "ok.bin").read_bytes() == body
    with pytest.raises(DataError, match="SHA-256 .* does not match the expected 0000"):
        download(f"{server}/files/blob.bin", tmp_path / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()


def test_known_checksum_is_used_by_fetch_raw(server, tmp_path, monkeypatch):
    FakeServer.files["yoochoose-data.7z"] = make_7z(tmp_path)
    monkeypatch.setitem(dl.KNOWN_SHA256, "yoochoose-data.7z", "f" * 64)
    with pytest.raises(DataError, match="does not match"):
        fetch_raw("rc15", "rc15", tmp_path / "raw")
    assert not (tmp_path / "raw" / "yoochoose-clicks.dat").exists()


def test_kaggle_download_with_token_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", TOKEN[0])
    monkeypatch.setenv("KAGGLE_KEY", TOKEN[1])
    FakeServer.files["ecommerce-dataset.zip"] = make_zip()
    paths = fetch_raw("retailrocket", "retailrocket", tmp_path / "raw")
    assert paths == [tmp_path / "raw" / "events.csv"] and paths[0].read_bytes() == EVENTS
    # The token went to the API, not to the storage host it redirected to.
    assert [path for path, _ in FakeServer.requests] == [
        "/api/v1/datasets/download/retailrocket/ecommerce-dataset",
        "/storage/ecommerce-dataset.zip",
    ]


def test_kaggle_token_from_kaggle_json(server, tmp_path, monkeypatch):
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text(f'{{"username": "{TOKEN[0]}", "key": "{TOKEN[1]}"}}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    FakeServer.files["ecommerce-dataset.zip"] = make_zip()
    fetch_raw("retailrocket", "retailrocket", tmp_path / "raw")
    assert (tmp_path / "raw" / "events.csv").read_bytes() == EVENTS

    (config / "kaggle.json").write_text("not json")
    with pytest.raises(DataError, match="kaggle.json: not a Kaggle API token"):
        fetch_raw("retailrocket", "retailrocket", tmp_path / "other")


def test_kaggle_refuses_a_wrong_token(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", TOKEN[0])
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    out = tmp_path / "resources" / "raw" / "retailrocket"
    with pytest.raises(DataError, match="HTTP 401") as err:
        fetch_raw("retailrocket", "retailrocket", out)
    assert f"Put events.csv into {out}/" in str(err.value)
    assert not (out / "events.csv").exists()


def test_no_kaggle_token_fails_at_once(server, tmp_path):
    out = tmp_path / "resources" / "raw" / "retailrocket"
    with pytest.raises(DataError, match="no Kaggle API token") as err:
        fetch_raw("retailrocket", "retailrocket", out)
    message = str(err.value)
    assert f"Put events.csv into {out}/" in message and "kaggle.com/datasets/retailrocket/ecommerce-dataset" in message
    assert FakeServer.requests == []


def test_no_network_fails_at_once_and_says_what_to_do(server, tmp_path, monkeypatch):
    # A port nobody listens on: the connection is refused, as without network.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SA2C_RC15_URL", f"http://127.0.0.1:{port}/yoochoose-data.7z")
    out = tmp_path / "resources" / "raw" / "rc15"
    start = time.monotonic()
    with pytest.raises(DataError, match="cannot download .*no connection") as err:
        fetch_raw("rc15", "rc15", out)
    assert time.monotonic() - start < 5
    assert f"Put yoochoose-clicks.dat and yoochoose-buys.dat into {out}/" in str(err.value)
    assert "yoochoose-data.7z" in str(err.value)


def test_corrupt_archive(server, tmp_path):
    FakeServer.files["yoochoose-data.7z"] = b"this is not a 7z archive"
    with pytest.raises(DataError, match="yoochoose-data.7z: cannot be extracted .* delete it and run again"):
        fetch_raw("rc15", "rc15", tmp_path / "raw")
    assert not (tmp_path / "raw" / "yoochoose-clicks.dat").exists()


def test_unknown_format(tmp_path):
    with pytest.raises(DataError, match="format='parquet'"):
        fetch_raw("x", "parquet", tmp_path)
