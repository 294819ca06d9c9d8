"""RegistrySink details the upload edge cases left untested (found by mutation testing):
what each error says it was doing, every success status a registry may give, answers
without a Location, OCI-Chunk-Min-Length, streamed PATCHes, cut connections, sources that
cannot seek, and what a wrong blob is reported as."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import httpx
import pytest

from freight.digest import Digest
from freight.errors import AuthError, DigestMismatch, NetworkError, RegistryError
from freight.sinks.registry import MAX_FAILURES, RegistrySink
from freight.sinks.resume import UploadJournal
from freight.transport.client import RegistryClient
from freight.transport.credentials import Credentials
from freight.transport.retry import RetryPolicy
from support.tokenserver import TokenServer

from .conftest import StubFactory
from .stubregistry import CUT, Answer, Seen, Shared, StubRegistry, error

MiB = 1024 * 1024
DATA = os.urandom(3 * MiB + 123)
DIGEST = Digest.of(DATA)
ClientFor = Callable[..., RegistryClient]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def upload(sink: RegistrySink, data: bytes = DATA, *, verify: bool = True,
           opener: Callable[[], BinaryIO] | None = None) -> None:
    sink.upload(Digest.of(data), len(data), opener or (lambda: io.BytesIO(data)),
                verify=verify)


def on(method: str, answer: Answer, kind: str = "") -> Callable[[Seen], Answer | None]:
    return lambda seen: answer if seen.method == method and kind in seen.path else None


def once(method: str, answer: Answer, nth: int = 1) -> Callable[[Seen], Answer | None]:
    count: list[int] = []

    def hook(seen: Seen) -> Answer | None:
        if seen.method != method:
            return None
        count.append(1)
        return answer if len(count) == nth else None

    return hook


def status_of(method: str, status: int, kind: str = "/uploads/") -> \
        Callable[[Seen, Answer], Answer]:
    """Answer `status` where the stub would have said 2xx: the same work, another code."""
    def rewrite(seen: Seen, answer: Answer) -> Answer:
        if seen.method == method and kind in seen.path and 200 <= answer[0] < 300:
            return status, answer[1], answer[2]
        return answer
    return rewrite


def without_location(method: str) -> Callable[[Seen, Answer], Answer]:
    def rewrite(seen: Seen, answer: Answer) -> Answer:
        if seen.method == method:
            return answer[0], {k: v for k, v in answer[1].items() if k != "Location"}, answer[2]
        return answer
    return rewrite


def with_header(method: str, name: str, value: str) -> Callable[[Seen, Answer], Answer]:
    def rewrite(seen: Seen, answer: Answer) -> Answer:
        if seen.method == method and answer[0] < 300:
            return answer[0], {**answer[1], name: value}, answer[2]
        return answer
    return rewrite


# --- what an error says it was doing ------------------------------------------------


def test_a_refused_blob_check_names_the_blob(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("HEAD", error(400, "UNSUPPORTED")))
    with pytest.raises(RegistryError, match=rf"HTTP 400 while checking blob {DIGEST.short}"):
        RegistrySink(client_for(stub), "team/app").has_blob(DIGEST)


def test_a_refused_upload_start_says_so(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("POST", error(400, "UNSUPPORTED")))
    with pytest.raises(RegistryError, match="HTTP 400 while starting a blob upload"):
        upload(RegistrySink(client_for(stub), "team/app"))


@pytest.mark.parametrize(("chunk", "doing"), [(None, "uploading blob"),
                                              (MiB, "uploading a chunk of blob")])
def test_a_refused_upload_names_the_blob(stubs: StubFactory, client_for: ClientFor,
                                         chunk: int | None, doing: str) -> None:
    stub = stubs()
    method = "PUT" if chunk is None else "PATCH"
    stub.script.append(on(method, error(400, "DENIED_BY_POLICY")))
    with pytest.raises(RegistryError, match=rf"HTTP 400 while {doing} {DIGEST.short}"):
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=chunk))
    assert len(stub.requests(method)) == 1  # an answer that is not about the session: no retry


def test_a_refused_status_request_says_so(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    url = sink.start()
    stub.script.append(on("GET", error(403, "DENIED")))
    with pytest.raises(AuthError, match="while asking how much of an upload arrived"):
        sink.status(url)


def test_a_refused_close_names_the_blob(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    url = sink.stream(sink.start(), iter([b"not the blob"]))
    with pytest.raises(RegistryError, match=rf"HTTP 400 while completing blob {DIGEST.short}"):
        sink.close_upload(url, DIGEST)


def test_a_refused_manifest_names_repository_and_tag(stubs: StubFactory,
                                                     client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("PUT", error(400, "MANIFEST_INVALID"), "/manifests/"))
    with pytest.raises(RegistryError, match="while pushing the manifest team/app:v1"):
        RegistrySink(client_for(stub), "team/app").put_manifest("v1", b"{}", OCI_MANIFEST)


# --- every success status, answers without a Location ---------------------------------


@pytest.mark.parametrize("status", [200, 201, 202])
def test_a_manifest_put_takes_any_success_and_sends_its_media_type(
        stubs: StubFactory, client_for: ClientFor, status: int) -> None:
    stub = stubs()
    stub.script.append(on("PUT", (status, {}, b""), "/manifests/"))
    raw = b'{"schemaVersion": 2}'
    assert RegistrySink(client_for(stub), "team/app").put_manifest(
        "v1", raw, OCI_MANIFEST) == Digest.of(raw)
    (put,) = stub.requests("PUT", "/manifests/")
    assert put.path == "/v2/team/app/manifests/v1"
    assert put.headers["content-type"] == OCI_MANIFEST and put.body_length == len(raw)


def test_a_manifest_digest_of_another_algorithm_is_not_compared(
        stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    said = "sha512:" + hashlib.sha512(b"other").hexdigest()
    stub.script.append(on("PUT", (201, {"docker-content-digest": said}, b""), "/manifests/"))
    raw = b"{}"
    assert RegistrySink(client_for(stub), "team/app").put_manifest("1", raw, OCI_MANIFEST) \
        == Digest.of(raw)


@pytest.mark.parametrize("status", [201, 204])
def test_a_whole_blob_put_takes_201_and_204(stubs: StubFactory, client_for: ClientFor,
                                            status: int) -> None:
    stub = stubs()
    stub.rewrite.append(status_of("PUT", status))
    upload(RegistrySink(client_for(stub), "team/app"))
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert len(stub.requests("PUT")) == 1


def test_a_whole_blob_put_declares_its_length_and_type(stubs: StubFactory,
                                                      client_for: ClientFor) -> None:
    """Sent from a generator, the body would otherwise go chunked, without a length (which
    registries behind S3-style stores refuse)."""
    stub = stubs()
    upload(RegistrySink(client_for(stub), "team/app"))
    (put,) = stub.requests("PUT")
    assert put.headers.get("content-length") == str(len(DATA))
    assert "transfer-encoding" not in put.headers
    assert put.headers.get("content-type") == "application/octet-stream"


def test_each_chunk_declares_its_length(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB))
    patches = stub.requests("PATCH")
    assert [p.headers.get("content-length") for p in patches] == \
        [str(MiB)] * 3 + [str(len(DATA) - 3 * MiB)]
    assert not any("transfer-encoding" in p.headers for p in patches)


@pytest.mark.parametrize("status", [201, 202, 204])
def test_a_chunk_takes_201_202_and_204(stubs: StubFactory, client_for: ClientFor,
                                       status: int) -> None:
    stub = stubs()
    stub.rewrite.append(status_of("PATCH", status))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB))
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert len(stub.requests("PATCH")) == 4


def test_a_chunk_answer_without_location_keeps_the_url(stubs: StubFactory,
                                                       client_for: ClientFor) -> None:
    stub = stubs()
    stub.check_state = False
    stub.rewrite.append(without_location("PATCH"))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB))
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert len({s.path for s in stub.requests("PATCH")}) == 1


@pytest.mark.parametrize("status", [200, 204])
def test_the_upload_status_takes_200_and_204(stubs: StubFactory, client_for: ClientFor,
                                             status: int) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    url = sink.stream(sink.start(), iter([b"x" * 100]))
    stub.rewrite.append(status_of("GET", status))
    newest, held = sink.status(url)
    assert held == 100 and newest.endswith("_state=1")


def test_an_upload_status_without_location_keeps_the_url(stubs: StubFactory,
                                                         client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    url = sink.stream(sink.start(), iter([b"x" * 100]))
    stub.rewrite.append(without_location("GET"))
    assert sink.status(url) == (url, 100)


# --- OCI-Chunk-Min-Length ---------------------------------------------------------------


def test_a_chunk_minimum_makes_the_upload_chunked(stubs: StubFactory,
                                                  client_for: ClientFor) -> None:
    stub = stubs()
    stub.rewrite.append(with_header("POST", "OCI-Chunk-Min-Length", str(MiB)))
    sink = RegistrySink(client_for(stub), "team/app", stream=True)
    assert sink.can_stream
    sink.start()  # the registry tells its minimum when a session opens
    upload(sink)
    (patch,) = stub.requests("PATCH")  # all of it in one chunk of the fallback size
    assert patch.body_length == len(DATA)
    assert stub.requests("PUT")[0].body_length == 0  # the close carries no bytes
    assert not sink.can_stream and sink.streamer() is None  # the registry wants bounds


def test_the_first_upload_already_honours_the_chunk_minimum(stubs: StubFactory,
                                                           client_for: ClientFor) -> None:
    """The registry tells its minimum on the POST that opens the first session: that
    blob's chunks already follow it (before, only the blobs after the first did)."""
    stub = stubs()
    stub.rewrite.append(with_header("POST", "OCI-Chunk-Min-Length", str(2 * MiB)))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    upload(sink)
    sizes = [s.body_length for s in stub.requests("PATCH")]
    assert sizes == [2 * MiB, len(DATA) - 2 * MiB]


def test_a_chunk_minimum_above_the_wanted_chunk_wins(stubs: StubFactory,
                                                     client_for: ClientFor) -> None:
    stub = stubs()
    stub.rewrite.append(with_header("POST", "OCI-Chunk-Min-Length", str(2 * MiB)))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    sink.start()
    upload(sink)
    sizes = [s.body_length for s in stub.requests("PATCH")]
    assert sizes == [2 * MiB, len(DATA) - 2 * MiB]


def test_an_empty_chunk_minimum_means_none(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.rewrite.append(with_header("POST", "OCI-Chunk-Min-Length", ""))
    sink = RegistrySink(client_for(stub), "team/app", stream=True)
    upload(sink)
    assert not stub.requests("PATCH") and sink.can_stream


# --- streaming ------------------------------------------------------------------------


def test_streaming_is_offered_only_when_asked_and_unbounded(stubs: StubFactory,
                                                            client_for: ClientFor) -> None:
    client = client_for(stubs())
    assert RegistrySink(client, "r").streamer() is None
    assert RegistrySink(client, "r", stream=True, chunk_size=MiB).streamer() is None
    sink = RegistrySink(client, "r", stream=True)
    assert sink.streamer() is sink
    sink.stop_streaming()
    assert sink.streamer() is None and not sink.stream_layers


@pytest.mark.parametrize("status", [201, 202, 204])
def test_a_streamed_layer_is_one_patch_then_a_close(stubs: StubFactory, client_for: ClientFor,
                                                    status: int) -> None:
    stub = stubs()
    stub.rewrite.append(status_of("PATCH", status))
    sink = RegistrySink(client_for(stub), "team/app", stream=True)
    parts = [b"a" * 1000, b"b" * 3000, b"c"]
    url = sink.stream(sink.start(), iter(parts))
    blob = b"".join(parts)
    sink.close_upload(url, Digest.of(blob))
    assert stub.shared.blobs[str(Digest.of(blob))] == blob
    (patch,) = stub.requests("PATCH")
    assert patch.headers["content-type"] == "application/octet-stream"
    assert "content-range" not in patch.headers
    assert url.endswith("_state=1")  # the PATCH answer's Location, not the session's first
    assert sink.bytes_sent == len(blob)


def test_a_streamed_answer_without_location_keeps_the_url(stubs: StubFactory,
                                                          client_for: ClientFor) -> None:
    stub = stubs()
    stub.check_state = False
    stub.rewrite.append(without_location("PATCH"))
    sink = RegistrySink(client_for(stub), "team/app", stream=True)
    start = sink.start()
    assert sink.stream(start, iter([b"abc"])) == start


@pytest.mark.parametrize("status", [201, 204])
def test_a_close_takes_201_and_204(stubs: StubFactory, client_for: ClientFor,
                                   status: int) -> None:
    stub = stubs()
    stub.rewrite.append(status_of("PUT", status))
    sink = RegistrySink(client_for(stub), "team/app")
    sink.close_upload(sink.stream(sink.start(), iter([b"abc"])), Digest.of(b"abc"))
    assert str(Digest.of(b"abc")) in stub.shared.blobs


# --- failures ---------------------------------------------------------------------------


def test_cancel_ignores_a_registry_that_is_gone(stubs: StubFactory,
                                                client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    url = sink.start()
    stub.script.append(on("DELETE", CUT))  # hangs up: the pooled connection would still answer
    stub.stop()
    sink.cancel(url)  # nothing raised: the registry expires the session anyway
    assert len(stub.requests("DELETE")) == 1  # the DELETE was sent, and failed


def test_a_404_without_a_code_at_close_restarts_the_blob(stubs: StubFactory,
                                                         client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once("PUT", (404, {}, b"")))
    upload(RegistrySink(client_for(stub), "team/app"))
    assert len(stub.requests("POST")) == 2
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_a_registry_refusing_whole_blob_puts_gets_patches_from_then_on(
        stubs: StubFactory, client_for: ClientFor) -> None:
    """A registry that answers a monolithic PUT with BLOB_UNKNOWN (one that needs PATCH,
    field-notes §5) gets the blob in one PATCH and an empty closing PUT; the sink then
    sends every later blob that way at once."""
    stub = stubs()
    stub.script.append(lambda seen: error(404, "BLOB_UNKNOWN") if seen.method == "PUT"
                       and "/uploads/" in seen.path and seen.body_length > 0 else None)
    sink = RegistrySink(client_for(stub), "team/app")
    other = DATA[::-1]
    upload(sink)
    upload(sink, other)
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert stub.shared.blobs[str(Digest.of(other))] == other
    refused = [s for s in stub.requests("PUT") if s.body_length > 0]
    assert len(refused) == 1  # the first blob's only: the second went by PATCH at once
    patches = stub.requests("PATCH")
    assert [p.body_length for p in patches] == [len(DATA), len(other)]


def test_416_on_every_chunk_ends_with_the_registry_answer(stubs: StubFactory,
                                                          client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("PATCH", error(416, "RANGE_INVALID")))
    with pytest.raises(RegistryError, match="416") as caught:
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB))
    assert caught.value.status == 416
    assert len(stub.requests("PATCH")) == MAX_FAILURES


def test_a_cut_whole_upload_asks_the_registry_before_sending_again(
        stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once("PUT", CUT))
    upload(RegistrySink(client_for(stub), "team/app"))
    methods = [s.method for s in stub.seen]
    assert methods == ["POST", "PUT", "GET", "DELETE", "POST", "PUT"]  # nothing held: anew
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_a_cut_chunk_resumes_from_what_the_registry_holds(stubs: StubFactory,
                                                          client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once("PATCH", CUT, nth=2))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    upload(sink)
    methods = [s.method for s in stub.seen]
    assert methods == ["POST", "PATCH", "PATCH", "GET", "PATCH", "PATCH", "PATCH", "PUT"]
    assert stub.requests("PATCH")[2].headers["content-range"] == f"{MiB}-{2 * MiB - 1}"
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_chunks_cut_every_time_end_with_the_network_error(stubs: StubFactory,
                                                          client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("PATCH", CUT))
    with pytest.raises(NetworkError, match=rf"while uploading a chunk of blob {DIGEST.short}"):
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB))
    assert len(stub.requests("PATCH")) == MAX_FAILURES


# --- the source's bytes -------------------------------------------------------------------


class Opened:
    """Counts how often the blob's source is opened."""

    def __init__(self, make: Callable[[], BinaryIO]) -> None:
        self.make, self.count = make, 0

    def __call__(self) -> BinaryIO:
        self.count += 1
        return self.make()


class Pipe(io.RawIOBase):
    """A stream that only reads forward, and says so the way some wrappers do: by failing."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        raise OSError("not a file")

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)


def _refuse_third_chunk(stub: StubRegistry) -> None:
    stub.script.append(once("PATCH", error(416, "RANGE_INVALID"), nth=3))


@pytest.mark.parametrize("verify", [True, False])
def test_a_resync_seeks_back_in_a_seekable_source(stubs: StubFactory, client_for: ClientFor,
                                                  verify: bool) -> None:
    stub = stubs()
    _refuse_third_chunk(stub)
    opened = Opened(lambda: io.BytesIO(DATA))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    upload(sink, verify=verify, opener=opened)
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert opened.count == 1  # seeked back, not opened again
    assert sink.bytes_resent == MiB


@pytest.mark.parametrize("verify", [True, False])
def test_a_resync_reopens_a_source_that_cannot_seek(stubs: StubFactory, client_for: ClientFor,
                                                    verify: bool) -> None:
    stub = stubs()
    _refuse_third_chunk(stub)
    opened = Opened(lambda: cast(BinaryIO, Pipe(DATA)))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=MiB), verify=verify,
           opener=opened)
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert opened.count == 2


def test_unverified_bytes_resume_after_a_restart_of_the_session(
        stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once("PUT", error(400, "DIGEST_INVALID")))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    upload(sink, verify=False)
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert sink.bytes_resent == len(DATA)


def test_a_wrong_blob_reports_both_digests(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    claimed = Digest.of(b"what the manifest says")
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    with pytest.raises(DigestMismatch) as caught:
        sink.upload(claimed, len(DATA), lambda: io.BytesIO(DATA), what="layer 2")
    assert (caught.value.expected, caught.value.actual) == (str(claimed), str(DIGEST))
    assert "layer 2" in str(caught.value)


def test_a_wrong_chunked_blob_leaves_no_journal_entry(stubs: StubFactory,
                                                      client_for: ClientFor,
                                                      tmp_path: Path) -> None:
    stub = stubs()
    claimed = Digest.of(b"what the manifest says")
    journal = UploadJournal(tmp_path / "journal", stub.host)
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB, journal=journal)
    with pytest.raises(DigestMismatch):
        sink.upload(claimed, len(DATA), lambda: io.BytesIO(DATA))
    assert journal.get("team/app", claimed) is None
    assert not list((tmp_path / "journal").rglob("sha256-*"))
    assert len(stub.requests("DELETE")) == 1


def test_one_repository_never_resumes_another_ones_upload(stubs: StubFactory,
                                                          client_for: ClientFor,
                                                          tmp_path: Path) -> None:
    """`team/app` and `team_app` once shared journal entries: the second push would go on
    in the first one's session (a registry that does not tie sessions to repositories
    would store the blob under the wrong one)."""
    stub = stubs()
    journal = UploadJournal(tmp_path / "journal", stub.host)
    stub.script.append(once("PATCH", error(503, "UNAVAILABLE"), nth=3))
    stub.script.append(lambda s: error(503, "UNAVAILABLE")
                       if s.method == "PATCH" and len(stub.requests("PATCH")) > 3 else None)
    first = RegistrySink(client_for(stub), "team/app", chunk_size=MiB, journal=journal)
    with pytest.raises(RegistryError):
        upload(first)
    assert journal.get("team/app", DIGEST) is not None
    stub.script.clear()
    stub.seen.clear()
    second = RegistrySink(client_for(stub), "team_app", chunk_size=MiB, journal=journal)
    upload(second)
    assert second.bytes_resumed == 0
    assert [s.method for s in stub.seen][:2] == ["POST", "PATCH"]
    assert all("/v2/team_app/" in s.path for s in stub.seen)


def test_a_cut_mount_is_a_network_error_that_names_the_mount(stubs: StubFactory,
                                                            client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(on("POST", CUT, "mount="))
    with pytest.raises(NetworkError, match="while mounting a blob"):
        RegistrySink(client_for(stub), "team/app").mount(DIGEST, "other/repo")


def test_an_upload_opened_without_location_is_a_registry_error(stubs: StubFactory,
                                                               client_for: ClientFor) -> None:
    stub = stubs()
    stub.rewrite.append(without_location("POST"))
    with pytest.raises(RegistryError, match=rf"^{stub.host} opened an upload without a "
                                            "Location header$"):
        upload(RegistrySink(client_for(stub), "team/app"))


@pytest.mark.parametrize("chunk", [None, MiB])
def test_a_source_shorter_than_its_size_is_a_mismatch(stubs: StubFactory,
                                                      client_for: ClientFor,
                                                      chunk: int | None) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=chunk)
    with pytest.raises(DigestMismatch) as caught:
        sink.upload(DIGEST, len(DATA), lambda: io.BytesIO(DATA[:-1000]), what="layer 1")
    assert (caught.value.expected, caught.value.actual) == (str(DIGEST), "truncated")
    assert str(DIGEST) not in stub.shared.blobs


def test_progress_counts_each_byte_once_however_often_it_is_sent(
        stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    _refuse_third_chunk(stub)
    told: list[int] = []
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB)
    sink.upload(DIGEST, len(DATA), lambda: io.BytesIO(DATA), progress=told.append)
    assert sum(told) == len(DATA) and sink.bytes_resent == MiB


def test_a_journal_entry_holding_more_than_the_blob_is_cancelled(
        stubs: StubFactory, client_for: ClientFor, tmp_path: Path) -> None:
    stub = stubs()
    small = os.urandom(2500)
    journal = UploadJournal(tmp_path / "journal", stub.host)
    sink = RegistrySink(client_for(stub), "team/app", journal=journal)
    stale = sink.stream(sink.start(), iter([os.urandom(5000)]))
    journal.save("team/app", Digest.of(small), stale, 5000)
    upload(sink, small)
    (cancelled,) = stub.requests("DELETE")
    assert cancelled.path == stale.removeprefix(f"http://{stub.host}")
    assert stub.shared.blobs[str(Digest.of(small))] == small


@pytest.mark.parametrize(("last", "status"), [(error(413, "SIZE_INVALID"), 413),
                                              (error(404, "BLOB_UNKNOWN"), 404)])
def test_the_last_of_failures_in_a_row_is_the_registry_answer_reported(
        stubs: StubFactory, client_for: ClientFor, last: Answer, status: int) -> None:
    """Whole PUTs cut MAX_FAILURES - 1 times, then refused in a way that would change how
    the blob is sent (a 413: chunks; BLOB_UNKNOWN: one PATCH): the budget is spent, and
    the user reads that last refusal, not a crash."""
    stub = stubs()
    puts: list[int] = []

    def hook(seen: Seen) -> Answer | None:
        if seen.method != "PUT" or seen.body_length == 0:
            return None
        puts.append(1)
        return CUT if len(puts) < MAX_FAILURES else last

    stub.script.append(hook)
    with pytest.raises(RegistryError, match=rf"HTTP {status} while uploading blob") as caught:
        upload(RegistrySink(client_for(stub), "team/app"))
    assert caught.value.status == status
    assert len(puts) == MAX_FAILURES and not stub.requests("PATCH")


def test_a_resumed_upload_sends_exactly_the_rest_after_an_odd_offset(
        stubs: StubFactory, client_for: ClientFor, tmp_path: Path) -> None:
    """An earlier run left more than a read block in a session, but not a whole number of
    them: the prefix is read (and hashed) up to exactly there, the rest goes from there."""
    held = 2 * MiB + 1000
    stub = stubs()
    journal = UploadJournal(tmp_path / "journal", stub.host)
    sink = RegistrySink(client_for(stub), "team/app", journal=journal)
    url = sink.stream(sink.start(), iter([DATA[:held]]))
    journal.save("team/app", DIGEST, url, held)
    sink.bytes_sent = 0
    upload(sink)
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert sink.bytes_resumed == held and sink.bytes_sent == len(DATA) - held
    assert stub.requests("PATCH")[1].headers["content-range"] == f"{held}-{len(DATA) - 1}"


def test_the_byte_counts_add_up_over_the_blobs_of_one_sink(
        stubs: StubFactory, client_for: ClientFor, tmp_path: Path) -> None:
    stub = stubs()
    journal = UploadJournal(tmp_path / "journal", stub.host)
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=MiB, journal=journal)
    other = DATA[::-1]
    url = sink.stream(sink.start(), iter([other[:1000]]))  # an earlier run left 1000 bytes
    journal.save("team/app", Digest.of(other), url, 1000)
    sink.bytes_sent = 0
    stub.script.append(once("PATCH", error(416, "RANGE_INVALID"), nth=3))
    upload(sink, other)  # resumed first: the count that is 0 for the next blob must stay
    first = (sink.bytes_sent, sink.bytes_resent, sink.bytes_resumed)
    assert first[1] > 0 and first[2] == 1000
    stub.script.clear()
    _refuse_third_chunk(stub)
    upload(sink)
    assert stub.shared.blobs[str(Digest.of(other))] == other
    assert (sink.bytes_sent, sink.bytes_resent, sink.bytes_resumed) == \
        (first[0] + len(DATA) + MiB, first[1] + MiB, 1000)


def test_a_blob_has_its_own_failure_limits_whatever_the_client_allows(
        stubs: StubFactory) -> None:
    """A client allowing one request 2 failures in all: a blob's upload, many requests,
    still gets its own budget (MAX_FAILURES in a row, 3 times that in all)."""
    stub = stubs()
    for nth in (2, 4, 6):  # every other PATCH refused once: progress between failures
        stub.script.append(once("PATCH", error(416, "RANGE_INVALID"), nth=nth))
    client = RegistryClient(stub.host, config_credentials=False,
                            retry=RetryPolicy(max_total_failures=2, sleep=lambda _: None))
    try:
        upload(RegistrySink(client, "team/app", chunk_size=MiB))
    finally:
        client.close()
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_a_wrong_blob_uploaded_without_a_label_is_called_a_blob(
        stubs: StubFactory, client_for: ClientFor) -> None:
    sink = RegistrySink(client_for(stubs()), "team/app")
    with pytest.raises(DigestMismatch, match=r"^blob: the content does not match"):
        sink.upload(Digest.of(b"another"), len(DATA), lambda: io.BytesIO(DATA))


class FailsToClose(io.BytesIO):
    """A source whose close fails, as a file on a lost network mount can."""

    def close(self) -> None:
        super().close()
        raise OSError("stale file handle")


def test_a_source_that_fails_to_close_fails_no_upload(stubs: StubFactory,
                                                      client_for: ClientFor) -> None:
    """The blob is stored by then: a failed close of what was read must not turn it into
    an error."""
    stub = stubs()
    upload(RegistrySink(client_for(stub), "team/app"), opener=lambda: FailsToClose(DATA))
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_a_sink_asks_for_push_on_its_repository_in_the_first_token(
        stubs: StubFactory, client_for: ClientFor) -> None:
    """Before any upload: a token for the first request (a blob check, challenged for pull
    only) already carries push, so the first POST is not refused for want of it."""
    server = TokenServer(users={"alice": "wonderland"}).start()
    try:
        client = client_for(stubs(), credentials=Credentials("alice", "wonderland"))
        RegistrySink(client, "team/app")
        head = httpx.Request("HEAD", f"{client.base}/v2/team/app/blobs/{DIGEST}")
        challenge = httpx.Response(401, request=head, headers={
            "WWW-Authenticate": f'Bearer realm="{server.realm}",service="svc",'
                                'scope="repository:team/app:pull"'})
        assert client.auth.learn(challenge, head, None) and client.auth.header_for(head)
        assert "repository:team/app:pull,push" in server.requests[0].scopes
    finally:
        server.stop()


def test_a_relative_location_from_the_upload_host_stays_on_that_host(
        stubs: StubFactory, client_for: ClientFor) -> None:
    """The registry sends uploads to another host, which answers with relative Locations:
    they name that host's paths, never the registry's."""
    shared = Shared()
    registry = stubs(location="other", shared=shared)
    registry.other = stubs(location="relative", shared=shared)
    upload(RegistrySink(client_for(registry), "team/app", chunk_size=MiB))
    assert shared.blobs[str(DIGEST)] == DATA
    assert [s.method for s in registry.seen] == ["POST"]
    assert len(registry.other.requests("PATCH")) == 4
