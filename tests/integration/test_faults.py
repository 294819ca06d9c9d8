"""``freight push`` through a fault-injecting proxy in front of a real distribution registry.

Under each fault the push must end with the same digest as a clean push, the tag must point
at a complete image (checked through the registry directly, not the proxy), the tag must be
written only after every blob was stored, and a failure must cost the failing request or
chunk (or at worst that one blob), never the whole image.

Size: a 27 MiB image (layers of 20, 6 and 0.1 MiB of random bytes, pushed with
``--compression keep`` so no CPU goes to gzip): big enough for several chunks and for cuts
deep inside a body, small enough that each test stays well under a minute on 2 cores.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from freight.errors import EXIT_REGISTRY
from freight.testing import ImageSet, random_image
from support.faults import (
    BodyLimit,
    Cut,
    CutAfter,
    FailTimes,
    Fault,
    Matcher,
    Reply,
    RequestInfo,
)
from support.freightcli import FreightRun, UserDirs, run_freight
from support.proxy import Exchange, RegistryProxy
from support.registry import Registry
from support.registry_api import tag_exists
from support.verify import verify_image

pytestmark = pytest.mark.integration

MB = 1 << 20
LAYERS_MB = [20, 6, 0.1]
CUT_RATE = 0.2  # the brief: connections cut in a fifth of requests
SEED = 7


class RandomCuts(Fault):
    """Drop the connection of about ``rate`` of all requests: bodiless ones before they are
    forwarded, the others at a random byte offset of their body (seeded, so reproducible)."""

    def __init__(self, rate: float, seed: int, *, spare: Matcher | None = None) -> None:
        self.rate, self.rng, self.spare = rate, random.Random(seed), spare
        self.cut_at: dict[int, int] = {}
        self.cuts = 0
        self.bytes_lost = 0  # body bytes the registry got in requests that were then cut
        self._lock = threading.Lock()

    def before(self, request: RequestInfo) -> Reply | None:
        if self.spare is not None and self.spare(request):
            return None
        with self._lock:
            if self.rng.random() >= self.rate:
                return None
            length = request.content_length or 0
            if length == 0:
                self.cuts += 1
                raise Cut()
            self.cut_at[id(request)] = self.rng.randrange(length)
        return None

    def on_body(self, request: RequestInfo, offset: int, chunk: bytes) -> Reply | None:
        with self._lock:
            at = self.cut_at.get(id(request))
            if at is None or offset + len(chunk) <= at:
                return None
            del self.cut_at[id(request)]
            self.cuts += 1
            self.bytes_lost += offset
        raise Cut()


class Answer(Fault):
    """Answer the first ``times`` requests that ``match`` with a registry error body."""

    def __init__(self, status: int, code: str, *, times: int, match: object) -> None:
        self.status, self.code, self.remaining, self.match = status, code, times, match
        self._lock = threading.Lock()

    def before(self, request: RequestInfo) -> Reply | None:
        with self._lock:
            if self.remaining <= 0 or not self.match(request):  # type: ignore[operator]
                return None
            self.remaining -= 1
        body = f'{{"errors":[{{"code":"{self.code}","message":"injected"}}]}}'.encode()
        return Reply(self.status, body, {"Content-Type": "application/json"})


def is_close(r: RequestInfo) -> bool:
    return r.kind == "upload" and r.method == "PUT"


def is_patch(r: RequestInfo) -> bool:
    return r.kind == "upload" and r.method == "PATCH"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    sizes = [int(mb * MB) for mb in LAYERS_MB]
    return random_image(tmp_path_factory.mktemp("synth") / "big.tar", layers=sizes,
                        tags=["synth/big:1"])


@pytest.fixture(scope="module")
def clean_digest(registry: Registry, image: ImageSet,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    """The digest of a push with no faults (straight to the registry)."""
    dirs = UserDirs.under(tmp_path_factory.mktemp("clean"))
    run = push(image, registry.host, "faults/clean", dirs)
    return digest_of(run)


@pytest.fixture
def proxy(registry: Registry) -> RegistryProxy:
    proxy = RegistryProxy(registry.host).start()
    yield proxy  # type: ignore[misc]
    proxy.stop()


@pytest.fixture
def dirs(tmp_path: Path) -> UserDirs:
    return UserDirs.under(tmp_path / "user")


def push(image: ImageSet, host: str, repository: str, dirs: UserDirs,
         *extra: str) -> FreightRun:
    return run_freight("push", str(image.path), f"{host}/{repository}:1", "-q",
                       "--compression", "keep", *extra, dirs=dirs)


def digest_of(run: FreightRun) -> str:
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    (line,) = run.lines
    return line.rsplit("@", 1)[1]


def assert_complete(registry: Registry, repository: str, image: ImageSet) -> None:
    """Straight from the registry: the tag's image has every blob, each hashing right."""
    verify_image(registry, repository, "1", image_id=image.image.config_digest, compression="tar")


def assert_tag_written_last(exchanges: list[Exchange]) -> None:
    """The manifest PUT (the tag) came after every blob upload had been completed."""
    tag_at = max(i for i, e in enumerate(exchanges) if e.kind == "manifest" and e.method == "PUT"
                 and e.status == 201)
    closes = [i for i, e in enumerate(exchanges) if e.kind == "upload" and e.method == "PUT"
              and e.status == 201]
    assert closes and max(closes) < tag_at


def blob_bytes(exchanges: list[Exchange]) -> int:
    return sum(e.request_bytes for e in exchanges if e.kind == "upload")


def report(record_property: pytest.RecordProperty, exchanges: list[Exchange],
           image: ImageSet, **extra: int) -> int:
    """Record (and return) the blob bytes sent more than once."""
    total = sum(image.image.layer_sizes)
    resent = blob_bytes(exchanges) - total
    for name, value in {"image_bytes": total, "bytes_resent": resent, **extra}.items():
        record_property(name, value)
    print(f"image {total} B, re-sent {resent} B, {extra}")
    return resent


def test_random_cuts_whole_blobs(registry: Registry, proxy: RegistryProxy, image: ImageSet,
                                 clean_digest: str, dirs: UserDirs,
                                 record_property: pytest.RecordProperty) -> None:
    cuts = RandomCuts(CUT_RATE, SEED)
    deep = CutAfter(5 * MB, times=1, match=is_close)  # at least one cut deep in a big body
    proxy.faults.extend([deep, cuts])
    run = push(image, proxy.host, "faults/cuts", dirs)
    assert digest_of(run) == clean_digest
    assert cuts.cuts > 0 and deep.remaining == 0
    assert_complete(registry, "faults/cuts", image)
    assert_tag_written_last(proxy.exchanges)
    lost = cuts.bytes_lost + 5 * MB
    resent = report(record_property, proxy.exchanges, image, cuts=cuts.cuts + 1,
                    bytes_lost=lost)
    # each cut costs at most the blob it hit: never the whole image again
    assert resent <= (cuts.cuts + 1) * max(image.image.layer_sizes)


def test_random_cuts_chunked(registry: Registry, proxy: RegistryProxy, image: ImageSet,
                             clean_digest: str, dirs: UserDirs,
                             record_property: pytest.RecordProperty) -> None:
    cuts = RandomCuts(CUT_RATE, SEED + 1)
    deep = CutAfter(2 * MB, times=1, match=is_patch)
    proxy.faults.extend([deep, cuts])
    run = push(image, proxy.host, "faults/cuts-chunked", dirs, "--chunk-size", "5M")
    assert digest_of(run) == clean_digest
    assert cuts.cuts > 0 and deep.remaining == 0
    assert_complete(registry, "faults/cuts-chunked", image)
    assert_tag_written_last(proxy.exchanges)
    resent = report(record_property, proxy.exchanges, image, cuts=cuts.cuts + 1,
                    bytes_lost=cuts.bytes_lost + 2 * MB)
    # distribution 2.8 drops a session whose chunk was cut (stale _state offset): that
    # blob starts again, but nothing else does
    assert resent <= (cuts.cuts + 1) * max(image.image.layer_sizes)


def test_server_error_bursts(registry: Registry, proxy: RegistryProxy, image: ImageSet,
                             clean_digest: str, dirs: UserDirs) -> None:
    faults = [
        FailTimes(500, times=2, match=is_close),
        FailTimes(502, times=3, match=lambda r: r.kind == "blob" and r.method == "HEAD"),
        FailTimes(503, times=3, match=lambda r: r.kind == "manifest"),
        FailTimes(503, times=2, match=lambda r: r.kind == "upload" and r.method == "POST"),
    ]
    proxy.faults.extend(faults)
    run = push(image, proxy.host, "faults/5xx", dirs)
    assert digest_of(run) == clean_digest
    assert all(f.remaining == 0 for f in faults)
    assert_complete(registry, "faults/5xx", image)
    assert_tag_written_last(proxy.exchanges)
    # a 5xx answered before the body went anywhere is retried in place: nothing re-sent
    # beyond the refused requests' bodies, which never reached the registry
    assert blob_bytes(proxy.exchanges) == sum(image.image.layer_sizes) + len_config(registry, image)


def len_config(registry: Registry, image: ImageSet) -> int:
    with registry.client() as client:
        reply = client.head(f"/v2/faults/clean/blobs/{image.image.config_digest}")
    return int(reply.headers["Content-Length"])


def test_429_with_retry_after(registry: Registry, proxy: RegistryProxy, image: ImageSet,
                              clean_digest: str, dirs: UserDirs) -> None:
    limited = FailTimes(429, times=4, retry_after=1,
                        match=lambda r: r.kind in ("upload", "manifest", "blob"))
    proxy.faults.append(limited)
    run = push(image, proxy.host, "faults/429", dirs, "--chunk-size", "8M")
    assert digest_of(run) == clean_digest
    assert limited.remaining == 0
    assert sum(1 for e in proxy.exchanges if e.status == 429) == 4
    assert_complete(registry, "faults/429", image)


def test_request_body_limit_falls_back_to_chunks(registry: Registry, proxy: RegistryProxy,
                                                 image: ImageSet, clean_digest: str,
                                                 dirs: UserDirs) -> None:
    limit = BodyLimit(10 * MB)
    proxy.faults.append(limit)
    run = push(image, proxy.host, "faults/413", dirs)
    assert digest_of(run) == clean_digest
    assert limit.rejected >= 1
    assert_complete(registry, "faults/413", image)
    accepted = [e for e in proxy.exchanges if e.kind == "upload" and e.status in (201, 202)]
    assert accepted and all(e.request_bytes <= 10 * MB for e in accepted)


class WantsPatch(Fault):
    """An older Artifactory (RTFACT-19344): a PUT that carries the blob's bytes is answered
    404 BLOB_UNKNOWN; the bytes must come in a PATCH, then an empty PUT closes."""

    def __init__(self) -> None:
        self.refused = 0
        self._lock = threading.Lock()

    def before(self, request: RequestInfo) -> Reply | None:
        if not is_close(request) or not request.content_length:
            return None
        with self._lock:
            self.refused += 1
        body = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
        return Reply(404, body, {"Content-Type": "application/json"})


def test_a_registry_that_wants_patch_gets_it(registry: Registry, proxy: RegistryProxy,
                                             image: ImageSet, clean_digest: str,
                                             dirs: UserDirs) -> None:
    """One refused whole-blob PUT, then every blob goes as PATCH + empty PUT (docker's
    way), which such a registry takes."""
    wants = WantsPatch()
    proxy.faults.append(wants)
    run = push(image, proxy.host, "faults/wants-patch", dirs, "--jobs", "1")
    assert digest_of(run) == clean_digest
    blobs = len(image.image.layer_sizes) + 1  # the config and each layer
    # learnt for the repository, not blob by blob (a blob already on its way when the first
    # refusal came is refused too)
    assert 1 <= wants.refused < blobs
    assert_complete(registry, "faults/wants-patch", image)
    patches = [e for e in proxy.exchanges if e.kind == "upload" and e.method == "PATCH"]
    assert len(patches) == blobs


def test_416_resyncs_from_the_registry_range(registry: Registry, proxy: RegistryProxy,
                                             image: ImageSet, clean_digest: str,
                                             dirs: UserDirs) -> None:
    sessions: list[str] = []

    def second_patch(r: RequestInfo) -> bool:
        """The second chunk of a session."""
        if not is_patch(r):
            return False
        sessions.append(r.path.split("?")[0])
        return sessions.count(sessions[-1]) == 2

    proxy.faults.append(Answer(416, "RANGE_INVALID", times=1, match=second_patch))
    run = push(image, proxy.host, "faults/416", dirs, "--chunk-size", "4M")
    assert digest_of(run) == clean_digest
    refused = next(e for e in proxy.exchanges if e.status == 416)
    session = [(e.method, e.status) for e in proxy.exchanges
               if e.path.split("?")[0] == refused.path.split("?")[0]]
    at = session.index(("PATCH", 416))
    assert session[at + 1] == ("GET", 204), "the upload status is asked after a 416"
    assert session[at + 2] == ("PATCH", 202), "and the upload goes on in the same session"
    assert blob_bytes(proxy.exchanges) - sum(image.image.layer_sizes) <= 4 * MB + 10_000
    assert_complete(registry, "faults/416", image)


@pytest.mark.parametrize(("status", "code"), [
    (404, "BLOB_UPLOAD_UNKNOWN"), (400, "DIGEST_INVALID"), (404, "BLOB_UPLOAD_INVALID")])
def test_lost_session_restarts_that_blob(registry: Registry, proxy: RegistryProxy,
                                         image: ImageSet, clean_digest: str, dirs: UserDirs,
                                         status: int, code: str) -> None:
    proxy.faults.append(Answer(status, code, times=1, match=is_close))
    repository = f"faults/lost-{code.lower().replace('_', '-')}"
    run = push(image, proxy.host, repository, dirs)
    assert digest_of(run) == clean_digest
    posts = [e for e in proxy.exchanges if e.kind == "upload" and e.method == "POST"]
    assert len(posts) == len(image.image.layer_sizes) + 2  # one per blob + config, one restart
    assert_complete(registry, repository, image)


def test_permanent_failure_writes_no_tag_and_cancels(registry: Registry, proxy: RegistryProxy,
                                                     image: ImageSet, dirs: UserDirs) -> None:
    proxy.faults.append(FailTimes(503, times=10_000, match=is_close))
    run = push(image, proxy.host, "faults/doomed", dirs)
    assert run.returncode == EXIT_REGISTRY, run.describe()
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "503" in run.stderr
    assert not tag_exists(registry, "faults/doomed", "1")
    assert not any(e.kind == "manifest" and e.method == "PUT" for e in proxy.exchanges)
    assert any(e.kind == "upload" and e.method == "DELETE" for e in proxy.exchanges)


def test_interrupted_chunked_upload_resumes_in_the_next_run(
        registry: Registry, proxy: RegistryProxy, image: ImageSet, clean_digest: str,
        dirs: UserDirs) -> None:
    patches: list[RequestInfo] = []

    def after_two_chunks(r: RequestInfo) -> bool:
        if is_patch(r):
            patches.append(r)
        return is_patch(r) and len(patches) > 2

    proxy.faults.append(Answer(400, "SIZE_INVALID", times=10_000, match=after_two_chunks))
    args = ("--chunk-size", "4M", "-j", "1")
    first = push(image, proxy.host, "faults/resume", dirs, *args)
    assert first.returncode == EXIT_REGISTRY, first.describe()
    assert not tag_exists(registry, "faults/resume", "1")
    kept = sum(e.request_bytes for e in proxy.exchanges
               if e.method == "PATCH" and e.status == 202 and e.request_bytes == 4 * MB)
    assert kept >= 4 * MB
    proxy.faults.clear()
    proxy.reset()
    second = push(image, proxy.host, "faults/resume", dirs, *args)
    assert digest_of(second) == clean_digest
    uploads = [e for e in proxy.exchanges if e.kind == "upload"]
    assert uploads[0].method == "GET", "the next run first asks how far the upload got"
    assert blob_bytes(proxy.exchanges) == sum(image.image.layer_sizes) - kept
    assert_complete(registry, "faults/resume", image)


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_random_cuts_with_compression(
        registry: Registry, proxy: RegistryProxy, image: ImageSet, dirs: UserDirs,
        tmp_path_factory: pytest.TempPathFactory, record_property: pytest.RecordProperty,
        stream: str) -> None:
    """The default push (gzip) under random cuts gives the same image as a clean push:
    layers compressed into spool files, then uploaded; or streamed while compressing
    (the default for remote registries), where a cut stream falls back to the spool file."""
    clean_dirs = UserDirs.under(tmp_path_factory.mktemp("clean-gzip"))
    clean = digest_of(push(image, registry.host, "faults/clean-gzip", clean_dirs,
                           "--compression", "gzip"))
    deep = CutAfter(3 * MB, times=1, match=is_close if stream == "--no-stream" else is_patch)

    def first_stream(r: RequestInfo) -> bool:
        """The first failed stream turns streaming off for the push: the random cuts spare
        streams until the deep cut has stopped one (else it might never fire)."""
        return stream == "--stream" and deep.remaining > 0 and r.kind == "upload" \
            and r.method in ("POST", "PATCH")

    cuts = RandomCuts(CUT_RATE, SEED + 2, spare=first_stream)
    proxy.faults.extend([deep, cuts])
    repository = "faults/cuts-gzip" + stream.removeprefix("-")  # not pushed by the other run
    run = push(image, proxy.host, repository, dirs, "--compression", "gzip", stream)
    assert digest_of(run) == clean  # gzip is deterministic: the same bytes either way
    assert deep.remaining == 0
    verify_image(registry, repository, "1", image_id=image.image.config_digest, compression="gzip")
    assert_tag_written_last(proxy.exchanges)
    report(record_property, proxy.exchanges, image, cuts=cuts.cuts + 1)
