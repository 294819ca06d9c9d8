"""`freight serve` as a real process: start-up line, kill -9 mid-upload, SIGTERM, CLI errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import digest_of

# The command itself, independent of the CLI group that registers it.
SERVE = [sys.executable, "-c", "from freight.cli.serve import serve; serve()"]
MiB = 1 << 20


class Server:
    """A `freight serve` subprocess on a free loopback port."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen([*SERVE, "--root", str(root), "--address", "127.0.0.1:0",
                                      *args], stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        self.first_line = self.proc.stderr.readline()
        found = re.search(r"https?://127\.0\.0\.1:\d+", self.first_line)
        assert found, self.first_line
        self.url = found.group(0)
        # Keep draining the access log so the server never blocks on a full pipe.
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def wait_for(condition: object, what: str) -> None:
    """Poll `condition()` (no timing assertion: a generous bound only against hangs)."""
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def accepting(url: str) -> bool:
    """True while the server accepts new connections (it stops once shutting down)."""
    import socket

    host, port = url.rsplit("/", 1)[1].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError:
        return False
    return True


def visible_files(root: Path, sub: str) -> list[Path]:
    return [p for p in (root / sub).rglob("*") if p.is_file()]


def test_startup_line_names_address_and_root(root: Path) -> None:
    server = Server(root)
    try:
        assert str(root) in server.first_line
        with server.client() as client:
            assert client.get("/v2/").status_code == 200
    finally:
        server.kill()


def test_kill_during_chunked_upload_then_resume(root: Path) -> None:
    data = os.urandom(12 * MiB)
    server = Server(root)
    with server.client() as client:
        location = client.post("/v2/crash/test/blobs/uploads/").headers["location"]
        first = client.patch(location, content=data[:MiB], headers={"Content-Range":
                                                                    f"0-{MiB - 1}"})
        assert first.status_code == 202
    session = root / "uploads" / location.rsplit("/", 1)[1] / "data"
    release = threading.Event()

    def stalled_body() -> Iterator[bytes]:
        yield data[MiB:9 * MiB]
        release.wait(60)  # the server dies while this request is still streaming
        yield data[9 * MiB:]

    def patch() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client, \
                pytest.raises(httpx.HTTPError):
            client.patch(location, content=stalled_body())

    sender = threading.Thread(target=patch)
    sender.start()
    # The server writes in batches of a few MiB: wait until one of them reached the file.
    wait_for(lambda: session.stat().st_size > MiB, "the server to write part of the chunk")
    server.kill()
    release.set()
    sender.join()

    assert visible_files(root, "blobs") == []
    assert not list((root / "repositories").rglob("_layers"))
    restarted = Server(root)
    try:
        with restarted.client() as client:
            status = client.get(location)
            assert status.status_code == 204
            offset = int(status.headers["range"].split("-")[1]) + 1
            assert offset == session.stat().st_size
            assert MiB < offset <= 9 * MiB
            resumed = client.patch(status.headers["location"], content=data[offset:],
                                   headers={"Content-Range": f"{offset}-{len(data) - 1}"})
            assert resumed.status_code == 202
            done = client.put(resumed.headers["location"], params={"digest": digest_of(data)})
            assert done.status_code == 201, done.text
            assert client.get(done.headers["location"]).content == data
    finally:
        restarted.kill()


def test_kill_during_many_uploads_leaves_no_partial_blob(root: Path) -> None:
    """Kill at an arbitrary moment among many small uploads: whatever is visible is whole."""
    server = Server(root)
    blobs = {digest_of(b"%d" % i * 5000): b"%d" % i * 5000 for i in range(200)}
    stop = threading.Event()

    def pusher() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for digest, blob in blobs.items():
                if stop.is_set():
                    return
                try:
                    location = client.post("/v2/many/blobs/uploads/").headers["location"]
                    client.put(location, params={"digest": digest}, content=blob)
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=pusher) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(visible_files(root, "blobs")) >= 20, "some blobs to land")
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    for path in visible_files(root, "blobs"):
        assert digest_of(path.read_bytes()) == f"sha256:{path.name}"


def test_sigterm_shuts_down(root: Path) -> None:
    """A graceful shutdown exits 0: death by the signal (-SIGTERM) is no graceful one."""
    server = Server(root)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0


def test_sigterm_through_the_freight_command_exits_0(root: Path) -> None:
    """The `freight` group routes signals for its other commands; serve keeps its own."""
    proc = subprocess.Popen([sys.executable, "-m", "freight", "serve", "--root", str(root),
                             "--address", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert "serving" in proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == ""


def test_sigterm_finishes_an_upload_in_flight(root: Path) -> None:
    data = os.urandom(6 * MiB)
    server = Server(root)
    session = {}
    with server.client() as client:
        location = client.post("/v2/slow/blobs/uploads/").headers["location"]
    session["data"] = root / "uploads" / location.rsplit("/", 1)[1] / "data"
    release = threading.Event()
    replies: list[httpx.Response] = []

    def slow_body() -> Iterator[bytes]:
        yield data[:5 * MiB]
        release.wait(60)  # SIGTERM arrives while this request is still streaming
        yield data[5 * MiB:]

    def upload() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            replies.append(client.put(location, params={"digest": digest_of(data)},
                                      content=slow_body()))

    sender = threading.Thread(target=upload)
    sender.start()
    wait_for(lambda: session["data"].stat().st_size > 0, "the server to write part of the body")
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not accepting(server.url), "the server to stop accepting connections")
    release.set()
    sender.join()
    assert server.proc.wait(timeout=60) == 0
    assert replies and replies[0].status_code == 201, replies
    blob = root / "blobs" / "sha256" / digest_of(data)[7:9] / digest_of(data)[7:]
    assert blob.read_bytes() == data


@pytest.mark.parametrize(("args", "message"), [
    (["--address", "nonsense"], "invalid address"),
    (["--address", "256.1.1.1:80"], "cannot listen"),
    (["--tls-cert", __file__], "needs both"),
    (["--tls-cert", __file__, "--tls-key", __file__], "cannot load TLS"),
])
def test_cli_errors_are_one_line(root: Path, args: list[str], message: str) -> None:
    done = subprocess.run([*SERVE, "--root", str(root), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not root.exists()  # nothing is created before every option is checked


@pytest.mark.parametrize(("args", "message"), [
    (["--max-blob-size", "lots"], "is not a size"),
    (["--max-blob-size", "\u0663M"], "is not a size"),
    (["--max-uploads", "0"], "--max-uploads"),
    (["--access-log", "xml"], "'json', 'off'"),
])
def test_bad_limit_options_are_usage_errors(root: Path, args: list[str], message: str) -> None:
    done = subprocess.run([*SERVE, "--root", str(root), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not root.exists()


GC = [sys.executable, "-c", "from freight.cli.serve import gc; gc()"]


def test_gc_refuses_a_directory_that_is_no_registry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    done = subprocess.run([*GC, "--root", str(home)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "not a registry root" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("make", ["new", "empty", "registry"])
def test_gc_accepts_new_empty_and_registry_roots(tmp_path: Path, make: str) -> None:
    root = tmp_path / "root"
    if make != "new":
        root.mkdir()
    if make == "registry":
        (root / "blobs").mkdir()
        (root / "notes.txt").write_text("a registry's root may hold other files")
    done = subprocess.run([*GC, "--root", str(root)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_serve_refuses_a_directory_that_is_no_registry(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = subprocess.run([*SERVE, "--root", str(tmp_path), "--address", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a registry root" in done.stderr
    assert not (tmp_path / "blobs").exists()


def test_serve_on_a_busy_port_creates_nothing(root: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = subprocess.run([*SERVE, "--root", str(root), "--address", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "cannot listen" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not root.exists()


def test_tls(root: Path, tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    server = Server(root, "--tls-cert", str(tmp_path / "cert.pem"),
                    "--tls-key", str(tmp_path / "key.pem"))
    try:
        assert server.url.startswith("https://")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with httpx.Client(base_url=server.url, verify=context, timeout=30) as client:
            assert client.get("/v2/").status_code == 200
    finally:
        server.kill()


def test_access_log_is_json_lines(root: Path) -> None:
    import json

    server = Server(root)
    try:
        with server.client() as client:
            client.get("/v2/nothing/tags/list")
        wait_for(lambda: server.log, "an access log line")
        entry = json.loads(server.log[0])
        assert entry["method"] == "GET"
        assert entry["path"] == "/v2/nothing/tags/list"
        assert entry["status"] == 404
    finally:
        server.kill()


def test_serve_gc_collects_before_serving(root: Path) -> None:
    from freight.server.storage import FilesystemStorage

    stale = FilesystemStorage(root).tmp / "leftover-from-a-crash"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    server = Server(root, "--gc")
    try:
        assert not stale.exists()
    finally:
        server.kill()


def test_sigterm_during_start_up_checks_says_serve_stopped(tmp_path: Path) -> None:
    """A SIGTERM while serve still checks its store ends it with a line about serve, not
    push's "nothing was tagged" (the CLI group's message for transfers)."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # a store that never answers
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    proc = subprocess.Popen([sys.executable, "-m", "freight", "serve", "--storage",
                             "s3://bucket/p", "--address", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        silent.settimeout(60)
        connection, _ = silent.accept()  # serve is inside its bucket check now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        assert proc.stderr is not None
        error = proc.stderr.read()
        assert "stopped before the registry started serving" in error, error
        assert "tagged" not in error and "Traceback" not in error
        connection.close()
    finally:
        proc.kill()
        proc.wait()
        silent.close()
