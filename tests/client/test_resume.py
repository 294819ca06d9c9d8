"""A blob download cut mid-way resumes with a Range request and verifies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from freight.digest import Digest
from freight.errors import NetworkError
from freight.sources.registry import RegistryReader
from freight.transport.client import RegistryClient

BLOB = bytes(range(256)) * 40_000  # ~10 MB
DIGEST = Digest.of(BLOB)


class _CuttingBlobServer(BaseHTTPRequestHandler):
    """Serves one blob; full GETs are cut after `cut_at` bytes, Range GETs are honoured."""

    cut_at = len(BLOB) // 3
    ranges: list[str] = []  # noqa: RUF012 - shared record of what clients asked for
    supports_range = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        if wanted and self.supports_range:
            self.ranges.append(wanted)
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self._send(206, BLOB[start:], {"Content-Range": f"bytes {start}-{len(BLOB) - 1}/"
                                                            f"{len(BLOB)}"})
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB[: self.cut_at])
        self.wfile.flush()
        self.connection.close()  # the cut: the client sees the body end early

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def cutting_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CuttingBlobServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _CuttingBlobServer.ranges = []
    _CuttingBlobServer.supports_range = True
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cut_download_resumes_from_the_byte_reached(cutting_server: str) -> None:
    reader = RegistryReader(RegistryClient(cutting_server), "team/app")
    with reader.open_blob(DIGEST) as stream:
        data = b"".join(iter(lambda: stream.read(1 << 20), b""))
    assert Digest.of(data) == DIGEST
    (asked,) = _CuttingBlobServer.ranges
    resumed_at = int(asked.removeprefix("bytes=").rstrip("-"))
    # only what was in flight when the connection broke is fetched again
    assert _CuttingBlobServer.cut_at - (1 << 20) <= resumed_at <= _CuttingBlobServer.cut_at


def test_no_range_support_is_a_clear_network_error(cutting_server: str) -> None:
    _CuttingBlobServer.supports_range = False
    reader = RegistryReader(RegistryClient(cutting_server), "team/app")
    with pytest.raises(NetworkError, match="resume"), reader.open_blob(DIGEST) as stream:
        while stream.read(1 << 20):
            pass
