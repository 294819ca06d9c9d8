"""Blob bodies by sendfile (protocol.py's ASGI zero-copy extension) on the real server:
exact bytes and ranges, h11 kept in step on a kept-alive connection, a file shorter than
its body, and TLS connections, where the extension is not offered."""

from __future__ import annotations

import http.client
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from freight.digest import Digest
from freight.server import FilesystemStorage, make_app
from freight.server.exchange import ZEROCOPY
from freight.server.runner import listen, uvicorn_config

from .conftest import Live, digest_of

BIG = os.urandom(3 << 20) + b"tail"  # more than one socket buffer


def _connection(live: Live) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(live.url.removeprefix("http://"), timeout=30)


def test_bodies_ranges_and_next_requests_on_one_connection(live_fs: Live) -> None:
    digest = live_fs.push_blob("test/repo", BIG)
    conn = _connection(live_fs)
    try:
        answers = []
        for headers in ({}, {"Range": "bytes=100-2000000"}, {"Range": "bytes=-4"}, {}):
            conn.request("GET", f"/v2/test/repo/blobs/{digest}", headers=headers)
            reply = conn.getresponse()
            answers.append((reply.status, reply.read()))
        conn.request("HEAD", f"/v2/test/repo/blobs/{digest}")
        head = conn.getresponse()
        head.read()
        conn.request("GET", "/v2/")
        ping = conn.getresponse()
        assert (ping.status, ping.read()) == (200, b"{}")
    finally:
        conn.close()
    assert answers == [(200, BIG), (206, BIG[100:2000001]), (206, b"tail"), (200, BIG)]
    assert head.status == 200 and head.getheader("content-length") == str(len(BIG))


def test_file_shorter_than_its_body_cuts_the_connection(live_fs: Live) -> None:
    huge = os.urandom(48 << 20)  # far more than loopback socket buffers hold
    digest = live_fs.push_blob("test/repo", huge)
    blob = live_fs.root / "blobs" / "sha256" / digest[7:9] / digest[7:]
    conn = _connection(live_fs)
    try:
        conn.request("GET", f"/v2/test/repo/blobs/{digest}")
        reply = conn.getresponse()  # the headers only: the body waits in the socket
        assert reply.getheader("content-length") == str(len(huge))
        with blob.open("r+b") as f:  # damaged storage: the server must not pad or hang
            f.truncate(1 << 20)
        with pytest.raises(http.client.IncompleteRead) as cut:
            reply.read()
        # Short, never padded; the bytes themselves past the cut are not checked: sendfile
        # hands the kernel page references, and a file changed in place (freight never
        # does that: blobs are renamed into place and unlinked) changes what is still queued.
        assert len(cut.value.partial) < len(huge)
        assert cut.value.partial[:1 << 20] == huge[:1 << 20]
    finally:
        conn.close()
    assert live_fs.client.get("/v2/").status_code == 200  # still serving


def test_blob_removed_during_its_download_arrives_whole(live_fs: Live) -> None:
    huge = os.urandom(48 << 20)
    digest = live_fs.push_blob("test/repo", huge)
    conn = _connection(live_fs)
    try:
        conn.request("GET", f"/v2/test/repo/blobs/{digest}")
        reply = conn.getresponse()  # the headers only: the body waits in the socket
        FilesystemStorage(live_fs.root).delete_blob_data(Digest.parse(digest))  # as gc does
        assert reply.read() == huge
    finally:
        conn.close()
    assert live_fs.client.head(f"/v2/test/repo/blobs/{digest}").status_code == 404


@contextmanager
def _tls_registry(root: Path, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    app = make_app(FilesystemStorage(root))
    seen: list[Any] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions", {}))
        await app(scope, receive, send)

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(recording, tls_cert=tmp_path / "cert.pem",
                                           tls_key=tmp_path / "key.pem"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", context
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert seen and all(ZEROCOPY not in extensions for extensions in seen)


def test_tls_bodies_stream_without_sendfile(tmp_path: Path) -> None:
    with _tls_registry(tmp_path / "root", tmp_path) as (url, context), \
            httpx.Client(base_url=url, verify=context, timeout=30) as client:
        live = Live(url, tmp_path / "root", client)
        digest = live.push_blob("test/repo", BIG)
        assert digest == digest_of(BIG)
        assert client.get(f"/v2/test/repo/blobs/{digest}").content == BIG
        ranged = client.get(f"/v2/test/repo/blobs/{digest}", headers={"Range": "bytes=5-9"})
        assert (ranged.status_code, ranged.content) == (206, BIG[5:10])


def test_plain_http_offers_the_extension(tmp_path: Path) -> None:
    seen: list[Any] = []
    app = make_app(FilesystemStorage(tmp_path / "root"))

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions", {}))
        await app(scope, receive, send)

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(recording))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        reply = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/v2/", timeout=30)
        assert reply.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert ZEROCOPY in seen[0]
