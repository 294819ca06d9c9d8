"""Storage calls run in worker threads, many at once, never on the event loop (issue 13:
a slow store serialised every request of a process behind the one waiting on it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from freight.digest import Digest
from freight.server import FilesystemStorage
from freight.server.threads import STORAGE_THREADS

from .conftest import Live, serving

PARALLEL = 16  # more than asyncio's default executor has threads on a small machine (6)
WAIT = 60.0  # seconds a blocked storage call waits before the test fails (a deadlock)


class GatedStorage(FilesystemStorage):
    """A real filesystem store whose tag reads wait for the test to open the gate, and
    whose manifest reads can be made to meet at a barrier (to count concurrent calls)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Semaphore(0)
        self.barrier: threading.Barrier | None = None

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        if not self.gate.is_set():
            self.waiting.release()
            assert self.gate.wait(WAIT), "the test never opened the gate"
        if self.barrier is not None:
            self.barrier.wait(WAIT)  # BrokenBarrierError unless PARALLEL calls run at once
        return super().resolve_tag(repo, tag)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Live, GatedStorage]]:
    storage = GatedStorage(tmp_path / "root")
    with serving(tmp_path / "root", storage=storage) as live:
        live.push_image("gated/app", "v1")
        yield live, storage


def test_a_waiting_manifest_read_does_not_stop_other_requests(
        gated: tuple[Live, GatedStorage]) -> None:
    live, storage = gated
    storage.gate.clear()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(live.client.get, "/v2/gated/app/manifests/v1")
        assert storage.waiting.acquire(timeout=WAIT)  # the GET is inside the store now
        # On the event loop, the blocked read would hold these until the gate opens.
        assert live.client.get("/v2/").status_code == 200
        assert live.client.get("/healthz").status_code == 200
        assert live.client.head(f"/v2/gated/app/blobs/{'sha256:' + '0' * 64}"
                                ).status_code == 404
        storage.gate.set()
        assert pending.result(timeout=WAIT).status_code == 200


def test_many_storage_calls_wait_at_once(gated: tuple[Live, GatedStorage]) -> None:
    assert STORAGE_THREADS >= PARALLEL
    live, storage = gated
    storage.barrier = threading.Barrier(PARALLEL)
    with ThreadPoolExecutor(PARALLEL) as pool:
        codes = list(pool.map(lambda _: live.client.get(
            "/v2/gated/app/manifests/v1").status_code, range(PARALLEL)))
    assert codes == [200] * PARALLEL
    assert not storage.barrier.broken
