"""Operations (issue 13, item 5): metrics, health, access log, limits; and the defences of
item 6 that are about connections and logins (slowloris, header size, login rate)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from freight.server import auth as auth_module
from freight.server.auth import BasicAuth, FailureLimiter
from freight.server.exchange import MAX_HEADER_BYTES, HTTPError
from freight.server.runner import is_loopback, warn_if_clear_text

from .conftest import Live, digest_of, serving
from .test_errors import basic


def metric(live: Live, line_start: str) -> float:
    """The value of the first /metrics sample whose line starts with `line_start`."""
    text = live.client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r} in:\n{text}")

@pytest.mark.direct  # wire level or per process: not through HAProxy

def test_metrics_count_requests_bytes_sessions_and_latency(live: Live) -> None:
    live.push_image("m/app", "v1")
    assert live.client.get("/v2/m/app/manifests/v1").status_code == 200
    assert live.client.get("/v2/m/app/manifests/nope").status_code == 404
    live.client.post("/v2/m/app/blobs/uploads/")
    reply = live.client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    ok = 'freight_http_requests_total{method="GET",route="manifest",status="200"}'
    assert metric(live, ok) == 1
    missing = 'freight_http_requests_total{method="GET",route="manifest",status="404"}'
    assert metric(live, missing) == 1
    assert metric(live, 'freight_http_received_bytes_total{route="upload"}') > 0
    assert metric(live, 'freight_http_sent_bytes_total{route="manifest"}') > 0
    assert metric(live, "freight_upload_sessions") == 1
    buckets = 'freight_http_request_duration_seconds_count{method="GET",route="manifest"}'
    assert metric(live, buckets) == 2

@pytest.mark.direct  # wire level or per process: not through HAProxy

def test_metrics_labels_stay_bounded(live: Live) -> None:
    for method in ("BREW", "WHEN", "XYZ"):
        live.client.request(method, "/v2/")
    assert metric(live, 'freight_http_requests_total{method="other",route="base"') == 3


def test_health_and_readiness(tmp_path: Path) -> None:
    with serving(tmp_path / "root") as live:
        assert live.client.get("/healthz").json() == {"status": "ok"}
        assert live.client.get("/readyz").status_code == 200
        assert live.client.post("/healthz").status_code == 405
        shutil.rmtree(tmp_path / "root" / "repositories")  # the storage is broken
        reply = live.client.get("/readyz")
        assert reply.status_code == 503
        assert reply.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert live.client.get("/healthz").status_code == 200  # alive all the same


def test_health_needs_no_credentials_metrics_do(live_auth: Live) -> None:
    assert live_auth.client.get("/healthz").status_code == 200
    assert live_auth.client.get("/readyz").status_code == 200
    assert live_auth.client.get("/metrics").status_code == 401
    assert live_auth.client.get("/metrics", headers=basic("alice", "secret")).status_code == 200


def test_access_log_names_the_user(tmp_path: Path, htpasswd_users: dict[str, bytes]) -> None:
    stream = io.StringIO()
    with serving(tmp_path / "root", auth=BasicAuth(htpasswd_users),
                 access_log=stream) as live:
        live.client.get("/v2/", headers=basic("alice", "secret"))
        live.client.get("/v2/")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["user"], first["status"], first["path"]) == ("alice", 200, "/v2/")
    assert "user" not in second and second["status"] == 401


def test_upload_sessions_are_limited(tmp_path: Path) -> None:
    with serving(tmp_path / "root", max_uploads=2) as live:
        first = live.client.post("/v2/l/blobs/uploads/")
        assert live.client.post("/v2/l/blobs/uploads/").status_code == 202
        refused = live.client.post("/v2/l/blobs/uploads/")
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert live.client.delete(first.headers["location"]).status_code == 204
        third = live.client.post("/v2/l/blobs/uploads/")
        assert third.status_code == 202
        done = live.client.put(third.headers["location"], params={"digest": digest_of(b"x")},
                               content=b"x")
        assert done.status_code == 201
        assert live.client.post("/v2/l/blobs/uploads/").status_code == 202


def test_blob_size_is_limited(tmp_path: Path) -> None:
    with serving(tmp_path / "root", max_blob_size=10) as live:
        assert live.push_blob("s", b"0123456789")  # exactly the limit

        def refused(reply: httpx.Response) -> None:
            assert reply.status_code == 413, reply.text
            assert reply.json()["errors"][0]["code"] == "SIZE_INVALID"

        big = b"0123456789A"
        location = live.client.post("/v2/s/blobs/uploads/").headers["location"]
        refused(live.client.put(location, params={"digest": digest_of(big)}, content=big))

        def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield big[:6]
            yield big[6:]

        location = live.client.post("/v2/s/blobs/uploads/").headers["location"]
        refused(live.client.patch(location, content=streamed()))
        location = live.client.post("/v2/s/blobs/uploads/").headers["location"]
        refused(live.client.patch(location, content=b"x", headers={"Content-Range": "10-10"}))
        refused(live.client.post("/v2/s/blobs/uploads/", params={"digest": digest_of(big)},
                                 content=big))
        # the limit holds for the blob, not for each request: streamed PATCHes add up
        location = live.client.post("/v2/s/blobs/uploads/").headers["location"]
        first = live.client.patch(location, content=streamed_part(big[:6]))
        assert first.status_code == 202, first.text
        refused(live.client.patch(first.headers["location"], content=streamed_part(big[6:])))
        refused(live.client.put(first.headers["location"], params={"digest": digest_of(big)},
                                content=big[6:]))


def streamed_part(data: bytes) -> Iterator[bytes]:
    yield data


# -- connections -------------------------------------------------------------------------------

def connect(live: Live) -> socket.socket:
    host, port = live.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def closed_by_server(sock: socket.socket, drip: bytes) -> bool:
    """Send `drip` a byte at a time (bounded); True once the server has closed the socket."""
    for byte in drip:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return True
        time.sleep(0.1)
        sock.setblocking(False)
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            pass
        except OSError:
            return True
        finally:
            sock.setblocking(True)
    return False


SLOW_HEAD = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n"


def test_slowloris_connections_are_closed(tmp_path: Path) -> None:
    with serving(tmp_path / "root", header_timeout=1.0) as live, connect(live) as sock:
        assert closed_by_server(sock, SLOW_HEAD)


def test_slow_head_after_a_keep_alive_request_is_closed(tmp_path: Path) -> None:
    with serving(tmp_path / "root", header_timeout=1.0) as live, connect(live) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock, SLOW_HEAD)


def test_a_slow_body_is_not_a_slow_head(tmp_path: Path) -> None:
    """The deadline covers the head only: a body may take its time."""
    with serving(tmp_path / "root", header_timeout=1.0) as live, connect(live) as sock:
        location = live.client.post("/v2/b/blobs/uploads/").headers["location"]
        body = b"z" * 30
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                     "\r\n\r\n".encode())
        for byte in body:  # 3 s in all, three times the head's deadline
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")


def reply(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the reply on a connection the server closes after it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def reply_status(sock: socket.socket) -> int:
    return reply(sock)[0]

@pytest.mark.direct  # wire level or per process: not through HAProxy

def test_headers_past_the_limit_are_refused_even_in_pieces(live: Live) -> None:
    with connect(live) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: " + b"a" * 40_000
                     + b"\r\n")
        time.sleep(0.2)  # two reads on the server side
        sock.sendall(b"X-B: " + b"b" * 40_000 + b"\r\n\r\n")
        assert reply_status(sock) == 431
    with connect(live) as sock:
        # A head that never ends, in 1 KiB pieces, one byte past the limit in all (more
        # would reach a closed socket, and the reset could swallow the reply).
        head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"c" * MAX_HEADER_BYTES
        head = head[:MAX_HEADER_BYTES + 1]
        for start in range(0, len(head), 1024):
            sock.sendall(head[start:start + 1024])
        status, body = reply(sock)
        assert status == 431
        assert json.loads(body)["errors"][0]["code"] == "SIZE_INVALID"
    assert live.client.get("/v2/").status_code == 200


# -- logins ------------------------------------------------------------------------------------

def test_failure_limiter_windows_and_memory() -> None:
    limiter = FailureLimiter(limit=3, window=60, max_clients=2)
    for _ in range(3):
        assert limiter.retry_after("a", 100.0) == 0
        limiter.fail("a", 100.0)
    assert limiter.retry_after("a", 100.0) == 60
    assert limiter.retry_after("a", 159.5) == 1
    assert limiter.retry_after("a", 160.0) == 0  # a new window
    limiter.fail("b", 101.0)
    limiter.fail("c", 102.0)  # "a" is forgotten: at most two addresses are kept
    assert limiter.retry_after("a", 101.0) == 0


def test_unknown_users_cost_a_bcrypt_check(monkeypatch: pytest.MonkeyPatch,
                                           htpasswd_users: dict[str, bytes]) -> None:
    """The time of a refusal must not tell whether the name exists: both run bcrypt."""
    checked: list[bytes] = []
    real = auth_module._checkpw

    def counting(password: bytes, stored: bytes) -> bool:
        checked.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth_module, "_checkpw", counting)
    auth = BasicAuth(htpasswd_users)
    assert asyncio.run(auth.user(basic("mallory", "secret")["Authorization"])) is None
    assert asyncio.run(auth.user(basic("alice", "wrong")["Authorization"])) is None
    assert len(checked) == 2
    assert checked[0][:7] == htpasswd_users["alice"][:7]  # same algorithm and cost


def test_failed_logins_are_rate_limited(live_auth: Live) -> None:
    for _ in range(auth_module.FAILURES_ALLOWED):
        assert live_auth.client.get("/v2/", headers=basic("bob", "guess")).status_code == 401
    refused = live_auth.client.get("/v2/", headers=basic("alice", "guess"))
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(refused.headers["retry-after"]) >= 1


def test_known_good_credentials_pass_while_limited(htpasswd_users: dict[str, bytes]) -> None:
    auth = BasicAuth(htpasswd_users, limiter=FailureLimiter(limit=1, window=60,
                                                            max_clients=10))
    good = basic("alice", "secret")["Authorization"]
    assert asyncio.run(auth.user(good, "10.0.0.1")) == "alice"
    assert asyncio.run(auth.user(basic("alice", "x")["Authorization"], "10.0.0.1")) is None
    with pytest.raises(HTTPError):
        asyncio.run(auth.user(basic("alice", "y")["Authorization"], "10.0.0.1"))
    assert asyncio.run(auth.user(good, "10.0.0.1")) == "alice"  # checked before: no bcrypt
    assert asyncio.run(auth.user(basic("alice", "z")["Authorization"], "10.0.0.2")) is None


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.7", False), ("registry.example", False),
])
def test_clear_text_auth_warning(caplog: pytest.LogCaptureFixture, host: str,
                                 loopback: bool) -> None:
    assert is_loopback(host) is loopback
    caplog.set_level(logging.WARNING, logger="freight.server")
    warn_if_clear_text(True, False, host)
    warn_if_clear_text(True, True, host)
    warn_if_clear_text(False, False, host)
    warnings = [r for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(warnings) == (0 if loopback else 1)


def test_readiness_uses_the_storage_check_when_there_is_one(tmp_path: Path) -> None:
    """A remote store (S3) says itself whether it answers: its `check()` is the probe."""
    from freight.server import FilesystemStorage
    from freight.server.app import Options, Registry, probe

    class Remote(FilesystemStorage):
        reachable = True

        def check(self) -> None:
            if not self.reachable:
                raise ConnectionError("bucket unreachable")

    storage = Remote(tmp_path / "root")
    probe(storage)
    storage.reachable = False
    with pytest.raises(ConnectionError):
        probe(storage)
    app = Registry(storage, options=Options())
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/readyz", "headers": []}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 503
