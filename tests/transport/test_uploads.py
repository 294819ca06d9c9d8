"""Upload edge cases (protocol.md §7 C1 to C5) against a scripted registry on loopback."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from freight.digest import Digest
from freight.errors import AuthError, DigestMismatch, RegistryError
from freight.sinks.registry import RegistrySink
from freight.transport.client import RegistryClient
from freight.transport.credentials import Credentials

from .conftest import StubFactory
from .stubregistry import Answer, Seen, StubRegistry, error

DATA = os.urandom(3 * 1024 * 1024 + 123)
DIGEST = Digest.of(DATA)
ClientFor = Callable[..., RegistryClient]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def upload(sink: RegistrySink, data: bytes = DATA, digest: Digest = DIGEST,
           session: str | None = None) -> None:
    sink.upload(digest, len(data), lambda: io.BytesIO(data), session=session)


def once(predicate: Callable[[Seen], bool], answer: Answer) -> Callable[[Seen], Answer | None]:
    fired: list[bool] = []

    def hook(seen: Seen) -> Answer | None:
        if fired or not predicate(seen):
            return None
        fired.append(True)
        return answer

    return hook


def nth_patch(n: int) -> Callable[[Seen], bool]:
    count: list[int] = []

    def match(seen: Seen) -> bool:
        if seen.method != "PATCH":
            return False
        count.append(1)
        return len(count) == n

    return match


@pytest.mark.parametrize("location", ["absolute", "relative"])
@pytest.mark.parametrize("chunk", [None, 1024 * 1024])
def test_location_forms(stubs: StubFactory, client_for: ClientFor, location: str,
                        chunk: int | None) -> None:
    stub = stubs(location=location)
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=chunk))
    assert stub.shared.blobs[str(DIGEST)] == DATA


@pytest.mark.parametrize("chunk", [None, 1024 * 1024])
def test_no_authorization_to_another_host(pair: tuple[StubRegistry, StubRegistry],
                                          client_for: ClientFor, chunk: int | None) -> None:
    registry, other = pair
    client = client_for(registry, credentials=Credentials("u", "p"))
    client.ping()
    upload(RegistrySink(client, "team/app", chunk_size=chunk))
    assert other.seen and all("authorization" not in s.headers for s in other.seen)
    assert any("authorization" in s.headers for s in registry.seen)
    assert str(DIGEST) in registry.shared.blobs


def test_chunks_use_plain_inclusive_ranges_and_the_newest_location(
        stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024))
    ranges = [s.headers["content-range"] for s in stub.requests("PATCH")]
    assert ranges == ["0-1048575", "1048576-2097151", "2097152-3145727", "3145728-3145850"]
    states = [s.path.rsplit("_state=", 1)[1].split("&")[0] for s in stub.requests("PATCH")]
    assert states == ["0", "1", "2", "3"]  # a stale one would have been refused


def test_416_resyncs_from_the_upload_status(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once(nth_patch(3), error(416, "RANGE_INVALID")))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024))
    methods = [s.method for s in stub.seen if "/uploads/" in s.path]
    assert methods == ["POST", "PATCH", "PATCH", "PATCH", "GET", "PATCH", "PATCH", "PUT"]
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_range_0_0_restarts_rather_than_guessing(stubs: StubFactory,
                                                 client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(once(nth_patch(1), error(416, "RANGE_INVALID")))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024))
    assert len(stub.requests("POST")) == 2  # GET said 0-0: a new session, from byte 0
    assert len(stub.requests("DELETE")) == 1  # the old one is cancelled
    assert stub.shared.blobs[str(DIGEST)] == DATA


@pytest.mark.parametrize(("status", "code"), [(400, "DIGEST_INVALID"),
                                              (404, "BLOB_UPLOAD_UNKNOWN")])
@pytest.mark.parametrize("chunk", [None, 1024 * 1024])
def test_lost_session_at_close_restarts_from_post(stubs: StubFactory, client_for: ClientFor,
                                                  status: int, code: str,
                                                  chunk: int | None) -> None:
    stub = stubs()
    stub.script.append(once(lambda s: s.method == "PUT", error(status, code)))
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=chunk)
    upload(sink)
    assert len(stub.requests("POST")) == 2
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert sink.bytes_resent == len(DATA)  # that blob again, nothing more


def test_abort_cancels_the_session(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    wrong = Digest.of(b"something else")
    with pytest.raises(DigestMismatch):
        upload(RegistrySink(client_for(stub), "team/app"), digest=wrong)
    assert len(stub.requests("DELETE")) == 1
    assert not stub.shared.sessions and not stub.shared.blobs


def test_wrong_bytes_never_complete_an_upload(stubs: StubFactory,
                                              client_for: ClientFor) -> None:
    stub = stubs()
    wrong = Digest.of(b"something else")
    with pytest.raises(DigestMismatch):
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024),
               digest=wrong)
    assert not stub.requests("PUT")


def test_mount_202_continues_with_that_session(stubs: StubFactory,
                                               client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    assert sink.mount(DIGEST, "other/repo") is False  # 202: not mounted, a session opened
    upload(sink)
    assert len(stub.requests("POST")) == 1  # the mount's own session was used


def test_429_waits_as_long_as_retry_after_says(stubs: StubFactory, client_for: ClientFor,
                                               sleeps: list[float]) -> None:
    stub = stubs()
    stub.script.append(once(lambda s: s.method == "PUT",
                            (429, {"Retry-After": "3"}, b"")))
    sink = RegistrySink(client_for(stub), "team/app")
    upload(sink)
    assert sleeps == [3.0]
    assert sink.bytes_resent == len(DATA)  # the refused body, once


def test_5xx_retried_in_place_then_given_up(stubs: StubFactory, client_for: ClientFor,
                                            sleeps: list[float]) -> None:
    stub = stubs()
    stub.script.append(lambda s: error(503, "UNAVAILABLE") if s.method == "PUT" else None)
    with pytest.raises(RegistryError, match="503"):
        upload(RegistrySink(client_for(stub), "team/app"))
    assert len(stub.requests("PUT")) == 6  # first try + 5 retries
    assert len(sleeps) == 5
    assert len(stub.requests("DELETE")) == 1


def test_413_on_whole_blob_falls_back_to_chunks(stubs: StubFactory,
                                                client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(lambda s: (413, {}, b"too large")
                       if s.body_length > 8 * 1024 * 1024 else None)
    big = os.urandom(9 * 1024 * 1024)
    upload(RegistrySink(client_for(stub), "team/app"), data=big, digest=Digest.of(big))
    assert [s.headers.get("content-range") for s in stub.requests("PATCH")] == [
        "0-8388607", f"8388608-{len(big) - 1}"]
    assert stub.shared.blobs[str(Digest.of(big))] == big


def test_resume_across_runs_from_the_registry_range(stubs: StubFactory, client_for: ClientFor,
                                                    cache_dir: Path) -> None:
    stub = stubs()
    refuse_third = nth_patch(3)
    down: list[bool] = []
    stub.script.append(lambda s: error(503, "UNAVAILABLE")
                       if down or (refuse_third(s) and not down.append(True)) else None)
    first = RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024)
    with pytest.raises(RegistryError, match="503"):
        upload(first)
    assert not stub.requests("DELETE"), "a session with progress is kept for the next run"
    assert list(cache_dir.rglob("sha256-*"))
    stub.script.clear()
    stub.seen.clear()
    second = RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024)
    upload(second)
    assert [s.method for s in stub.seen][:2] == ["GET", "PATCH"]
    assert stub.requests("PATCH")[0].headers["content-range"].startswith("2097152-")
    assert second.bytes_resumed == 2 * 1024 * 1024
    assert second.bytes_sent == len(DATA) - 2 * 1024 * 1024
    assert stub.shared.blobs[str(DIGEST)] == DATA
    assert not list(cache_dir.rglob("sha256-*")), "the journal entry is gone once done"


def test_resume_entry_the_registry_forgot_starts_afresh(stubs: StubFactory,
                                                        client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024)
    sink.journal.save("team/app", DIGEST, f"http://{stub.host}/v2/team/app/blobs/uploads/"
                      "gone?_state=9", 2 * 1024 * 1024)
    upload(sink)
    assert sink.bytes_resumed == 0 and stub.shared.blobs[str(DIGEST)] == DATA


def test_resume_of_a_fully_uploaded_blob_still_verifies(stubs: StubFactory,
                                                        client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(lambda s: error(503, "UNAVAILABLE") if s.method == "PUT" else None)
    with pytest.raises(RegistryError):
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=4 * 1024 * 1024))
    stub.script.clear()
    sink = RegistrySink(client_for(stub), "team/app")
    upload(sink)
    assert sink.bytes_sent == 0 and sink.bytes_resumed == len(DATA)
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_redirect_to_another_host_carries_no_authorization(
        pair: tuple[StubRegistry, StubRegistry], client_for: ClientFor) -> None:
    registry, other = pair
    path = f"/v2/team/app/blobs/{DIGEST}"
    registry.script.append(lambda s: (307, {"Location": f"http://{other.host}{path}"}, b"")
                           if s.method == "HEAD" and s.path == path else None)
    client = client_for(registry, credentials=Credentials("u", "p"))
    client.ping()
    sink = RegistrySink(client, "team/app")
    assert sink.has_blob(DIGEST) is False  # the other host answered 404
    (followed,) = other.requests("HEAD")
    assert "authorization" not in followed.headers


def test_a_manifest_stored_under_another_digest_is_a_registry_error(
        stubs: StubFactory, client_for: ClientFor) -> None:
    """The registry's Docker-Content-Digest must be what was sent: a registry (or proxy)
    that rewrote the manifest would otherwise tag an image nobody pushed."""
    stub = stubs()
    other = str(Digest.of(b"a manifest we never sent"))
    stub.script.append(lambda seen: (201, {"Docker-Content-Digest": other}, b"")
                       if seen.method == "PUT" and "/manifests/" in seen.path else None)
    sink = RegistrySink(client_for(stub), "team/app")
    with pytest.raises(RegistryError, match="stored manifest"):
        sink.put_manifest("1", b'{"schemaVersion": 2}', OCI_MANIFEST)


def test_a_manifest_stored_under_its_digest_is_accepted(stubs: StubFactory,
                                                        client_for: ClientFor) -> None:
    stub = stubs()
    raw = b'{"schemaVersion": 2}'
    said = str(Digest.of(raw))
    stub.script.append(lambda seen: (201, {"Docker-Content-Digest": said}, b"")
                       if seen.method == "PUT" and "/manifests/" in seen.path else None)
    sink = RegistrySink(client_for(stub), "team/app")
    assert sink.put_manifest("1", raw, OCI_MANIFEST) == Digest.of(raw)


def _on_mount(answer: Answer) -> Callable[[Seen], Answer | None]:
    return lambda seen: answer if seen.method == "POST" and "mount=" in seen.path else None


def test_a_mount_the_registry_does_moves_no_bytes(stubs: StubFactory,
                                                  client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(_on_mount((201, {"Location": f"/v2/team/app/blobs/{DIGEST}"}, b"")))
    assert RegistrySink(client_for(stub), "team/app").mount(DIGEST, "other/repo") is True
    (post,) = stub.requests("POST")
    assert post.path == f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=other/repo"
    assert post.headers["content-length"] == "0"  # some proxies refuse a POST without one
    assert not stub.requests("PATCH") and not stub.requests("PUT")


@pytest.mark.parametrize("status", [400, 404, 405])
def test_a_mount_the_registry_refuses_is_an_upload(stubs: StubFactory, client_for: ClientFor,
                                                   status: int) -> None:
    stub = stubs()
    stub.script.append(_on_mount(error(status, "UNSUPPORTED")))
    sink = RegistrySink(client_for(stub), "team/app")
    assert sink.mount(DIGEST, "other/repo") is False
    upload(sink)
    assert stub.shared.blobs[str(DIGEST)] == DATA


@pytest.mark.parametrize("status", [401, 403])
def test_a_mount_refused_for_lack_of_rights_says_which(stubs: StubFactory,
                                                       client_for: ClientFor,
                                                       status: int) -> None:
    stub = stubs()
    stub.script.append(_on_mount(error(status, "DENIED")))
    with pytest.raises(AuthError, match=r"refused to mount blob .* from other/repo into "
                                        r"team/app \(\d+\): the credentials need pull on "
                                        r"other/repo and push on team/app") as caught:
        RegistrySink(client_for(stub), "team/app").mount(DIGEST, "other/repo")
    assert (caught.value.status, caught.value.code) == (status, "DENIED")


def test_has_blob_asks_with_head(stubs: StubFactory, client_for: ClientFor) -> None:
    stub = stubs()
    sink = RegistrySink(client_for(stub), "team/app")
    assert sink.has_blob(DIGEST) is False
    upload(sink)
    assert sink.has_blob(DIGEST) is True
    assert [s.path for s in stub.requests("HEAD")] == [f"/v2/team/app/blobs/{DIGEST}"] * 2


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_session_lost_while_resyncing_starts_afresh(stubs: StubFactory,
                                                      client_for: ClientFor,
                                                      status: int) -> None:
    stub = stubs()
    stub.script.append(once(nth_patch(2), error(416, "RANGE_INVALID")))
    stub.script.append(once(lambda s: s.method == "GET" and "/uploads/" in s.path,
                            error(status, "BLOB_UPLOAD_UNKNOWN")))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024 * 1024))
    assert len(stub.requests("POST")) == 2
    assert stub.shared.blobs[str(DIGEST)] == DATA


SMALL = os.urandom(2500)


def test_a_registry_that_refuses_every_close_is_given_up_on(
        stubs: StubFactory, client_for: ClientFor) -> None:
    """Accepted chunks do not reset the budget: a registry (or a proxy corrupting bytes)
    that answers DIGEST_INVALID to every close ends the push, it does not loop for ever."""
    from freight.sinks.registry import MAX_TOTAL_FAILURES

    stub = stubs()
    stub.script.append(lambda s: error(400, "DIGEST_INVALID") if s.method == "PUT" else None)
    with pytest.raises(RegistryError, match=rf"failed the upload of blob .* "
                                            rf"{MAX_TOTAL_FAILURES} times .*giving up") as caught:
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=1024), data=SMALL,
               digest=Digest.of(SMALL))
    assert caught.value.retryable is False
    assert len(stub.requests("POST")) == MAX_TOTAL_FAILURES


def test_sessions_lost_in_a_row_end_the_upload_with_the_registry_words(
        stubs: StubFactory, client_for: ClientFor) -> None:
    from freight.sinks.registry import MAX_FAILURES

    stub = stubs()
    stub.script.append(lambda s: error(400, "DIGEST_INVALID") if s.method == "PUT" else None)
    with pytest.raises(RegistryError, match="DIGEST_INVALID") as caught:
        upload(RegistrySink(client_for(stub), "team/app"), data=SMALL, digest=Digest.of(SMALL))
    assert caught.value.code == "DIGEST_INVALID"
    assert len(stub.requests("POST")) == MAX_FAILURES


def _too_large_over(limit: int) -> Callable[[Seen], Answer | None]:
    return lambda s: error(413, "SIZE_INVALID") if s.method == "PATCH" and \
        s.body_length > limit else None


def test_a_413_on_a_chunk_halves_the_chunks_until_they_pass(stubs: StubFactory,
                                                            client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(_too_large_over(1536 * 1024))
    upload(RegistrySink(client_for(stub), "team/app", chunk_size=4 << 20))
    sizes = [s.body_length for s in stub.requests("PATCH")]
    assert sizes[:2] == [len(DATA), 2 << 20]  # refused: 4 MiB held it all, then 2 MiB
    assert set(sizes[2:-1]) == {1 << 20}  # the floor, and it passes
    assert stub.shared.blobs[str(DIGEST)] == DATA


def test_a_413_at_the_smallest_chunk_is_the_registrys_answer(stubs: StubFactory,
                                                             client_for: ClientFor) -> None:
    stub = stubs()
    stub.script.append(_too_large_over(1000))
    with pytest.raises(RegistryError, match="413") as caught:
        upload(RegistrySink(client_for(stub), "team/app", chunk_size=1 << 20))
    assert caught.value.status == 413 and len(stub.requests("PATCH")) == 1  # no retry loop
