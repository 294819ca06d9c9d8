"""`freight serve --workers N` as real processes, on the filesystem and on SeaweedFS: the
workers are one registry (uploads continue across them, tags written through one are read
through all), a worker that dies is replaced, and SIGTERM stops them all gracefully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.seaweed import Seaweed

from .conftest import OCI_MANIFEST, digest_of, image_manifest
from .test_process import Server, wait_for

WORKERS = 3
MiB = 1 << 20


def worker_pids(parent: int) -> set[int]:
    """The worker processes of `parent` (not multiprocessing's resource tracker)."""
    found = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(int(pid))
            except FileNotFoundError:
                continue
    return found


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.integration)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    args = ["--workers", str(WORKERS), "--access-log", "off"]
    if request.param == "s3":
        store: Seaweed = request.getfixturevalue("seaweed")  # sets the AWS_* variables
        args += ["--storage", store.url()]
    running = Server(tmp_path / "root", *args)
    wait_for(lambda: len(worker_pids(running.proc.pid)) == WORKERS, "the workers")
    yield running
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=120)


def fresh(server: Server) -> httpx.Client:
    """A client on a new connection: the kernel hands it to any of the workers."""
    return httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(
        max_keepalive_connections=0))


def test_workers_are_one_registry(server: Server) -> None:
    chunks = [os.urandom(MiB), os.urandom(2 * MiB), os.urandom(100)]
    data = b"".join(chunks)
    with fresh(server) as client:
        location = client.post("/v2/team/app/blobs/uploads/").headers["location"]
        offset = 0
        for chunk in chunks:  # every request on a new connection
            reply = client.patch(location, content=chunk, headers={
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            assert reply.status_code == 202, reply.text
            offset += len(chunk)
        assert client.put(location, params={"digest": digest_of(data)}).status_code == 201
        config = b"{}"
        started = client.post("/v2/team/app/blobs/uploads/")
        assert client.put(started.headers["location"], params={"digest": digest_of(config)},
                          content=config).status_code == 201

    def push(n: int) -> str:
        body = image_manifest(digest_of(config), len(config), [(digest_of(data), len(data))],
                              annotations={"n": str(n)})
        with fresh(server) as client:
            reply = client.put("/v2/team/app/manifests/latest", content=body,
                               headers={"Content-Type": OCI_MANIFEST})
            assert reply.status_code == 201, reply.text
            return str(reply.headers["docker-content-digest"])

    with ThreadPoolExecutor(6) as pool:  # concurrent writers of one tag, on several workers
        pushed = set(pool.map(push, range(12)))
    with fresh(server) as client:
        tagged = client.get("/v2/team/app/manifests/latest")
        assert tagged.status_code == 200 and tagged.headers["docker-content-digest"] in pushed
        assert digest_of(tagged.content) == tagged.headers["docker-content-digest"]
        for _ in range(2 * WORKERS):  # the same answer from whichever worker is asked
            assert client.get("/v2/team/app/manifests/latest").content == tagged.content
            assert digest_of(client.get(f"/v2/team/app/blobs/{digest_of(data)}").content) \
                == digest_of(data)


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(server: Server) -> None:
    before = worker_pids(server.proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids(server.proc.pid) - {victim}) == WORKERS,
             "a replacement worker")
    with fresh(server) as client:
        for _ in range(2 * WORKERS):
            assert client.get("/v2/").status_code == 200
    workers = worker_pids(server.proc.pid)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=120) == 0
    assert all(not Path(f"/proc/{pid}").exists() or
               "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2] for pid in workers)


def test_workers_option_is_checked() -> None:
    reply = subprocess.run([sys.executable, "-m", "freight", "serve", "--workers", "0"],
                           capture_output=True, text=True, timeout=60)
    assert reply.returncode == 2
    assert "--workers" in reply.stderr and "Traceback" not in reply.stderr
