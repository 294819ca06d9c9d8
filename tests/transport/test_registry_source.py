"""A registry repository as a source (sources/registry.py) against a scripted registry on
loopback: manifests verified and typed, blobs streamed and resumed where a download broke,
platforms chosen before anything else is fetched."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import FreightError, NetworkError, NotFound, RegistryError, UsageError
from freight.manifest import Platform
from freight.reference import Reference
from freight.sources.model import ImageNode, IndexNode
from freight.sources.registry import MAX_MANIFEST_SIZE, MAX_RESUMES, RegistryReader, pick
from freight.transport.client import RegistryClient

from .stubregistry import CUT_AFTER, Answer, Seen, StubRegistry, error

pytestmark = pytest.mark.timeout(20)

CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()
LAYER = bytes(range(256)) * 40  # 10240 bytes


def _manifest(config: bytes = CONFIG, layers: tuple[bytes, ...] = (LAYER,)) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(config)),
                   "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": str(Digest.of(layer)),
                    "size": len(layer)} for layer in layers],
    }).encode()


MANIFEST = _manifest()


class Repo:
    """Serves manifests (by tag or digest) and blobs of repository `app` from dicts."""

    def __init__(self, stub: StubRegistry) -> None:
        self.manifests: dict[str, tuple[bytes, str | None]] = {}
        self.blobs: dict[str, bytes] = {}
        self.blob_answer: Callable[[Seen, bytes], Answer] | None = None
        stub.script.append(self._answer)

    def add(self, raw: bytes, media_type: str | None = mt.OCI_MANIFEST, tag: str = "") -> str:
        digest = str(Digest.of(raw))
        self.manifests[digest] = (raw, media_type)
        if tag:
            self.manifests[tag] = (raw, media_type)
        return digest

    def _answer(self, seen: Seen) -> Answer | None:
        path = seen.path.split("?")[0]
        if path.startswith("/v2/app/manifests/"):
            found = self.manifests.get(path.rsplit("/", 1)[1])
            if found is None:
                return error(404, "MANIFEST_UNKNOWN")
            raw, media_type = found
            return 200, ({"Content-Type": media_type} if media_type else {}), raw
        if path.startswith("/v2/app/blobs/") and seen.method == "GET":
            data = self.blobs.get(path.rsplit("/", 1)[1])
            if data is None:
                return error(404, "BLOB_UNKNOWN")
            if self.blob_answer is not None:
                return self.blob_answer(seen, data)
            return 200, {}, data
        return None


@pytest.fixture
def stub(stubs) -> StubRegistry:  # type: ignore[no-untyped-def]
    return stubs()


@pytest.fixture
def repo(stub: StubRegistry) -> Repo:
    repo = Repo(stub)
    repo.blobs = {str(Digest.of(CONFIG)): CONFIG, str(Digest.of(LAYER)): LAYER}
    return repo


@pytest.fixture
def reader(stub: StubRegistry, client_for) -> RegistryReader:  # type: ignore[no-untyped-def]
    client: RegistryClient = client_for(stub)
    return RegistryReader(client, "app")


# --- manifests -----------------------------------------------------------------------------


def test_a_manifest_by_tag_is_typed_by_its_content_type(repo: Repo, reader: RegistryReader,
                                                        stub: StubRegistry) -> None:
    repo.add(MANIFEST, mt.OCI_MANIFEST + "; charset=utf-8", tag="v1")
    fetched = reader.manifest("v1")
    assert fetched.raw == MANIFEST and fetched.digest == Digest.of(MANIFEST)
    assert fetched.media_type == mt.OCI_MANIFEST
    [get] = stub.requests("GET", "/manifests/")
    assert get.headers["accept"].split(", ") == list(mt.ACCEPT_MANIFESTS)


def test_a_manifest_by_digest_must_have_that_digest(repo: Repo, reader: RegistryReader,
                                                    stub: StubRegistry) -> None:
    asked = str(Digest.of(b"something else"))
    repo.manifests[asked] = (MANIFEST, mt.OCI_MANIFEST)
    with pytest.raises(RegistryError) as caught:
        reader.manifest(asked)
    assert str(caught.value) == (f"{stub.host} sent a manifest whose digest is "
                                 f"{Digest.of(MANIFEST)}, not the {asked} asked for")
    digest = repo.add(MANIFEST)
    assert reader.manifest(digest).digest == Digest.of(MANIFEST)


def test_a_tag_that_looks_like_nothing_else_is_not_checked_as_a_digest(
        repo: Repo, reader: RegistryReader) -> None:
    repo.add(MANIFEST, tag="sha256")
    assert reader.manifest("sha256").raw == MANIFEST


@pytest.mark.parametrize(("raw", "expected"), [
    (MANIFEST, mt.OCI_MANIFEST),
    (b'{"schemaVersion": 2, "mediaType": 5}', ""),
    (b'{"schemaVersion": 2', ""),  # starts as a JSON object: the parse says more later
])
def test_without_a_content_type_the_declared_type_is_used(repo: Repo, reader: RegistryReader,
                                                          raw: bytes, expected: str) -> None:
    repo.add(raw, None, tag="v1")
    assert reader.manifest("v1").media_type == expected


@pytest.mark.parametrize("raw", [b'["not", "a", "manifest"]', b"not json"])
def test_an_answer_that_is_no_json_object_is_refused(repo: Repo, reader: RegistryReader,
                                                     stub: StubRegistry, raw: bytes) -> None:
    repo.add(raw, None, tag="v1")
    with pytest.raises(RegistryError) as caught:
        reader.manifest("v1")
    assert str(caught.value) == (
        f"{stub.host} answered the manifest request for app:v1 with something that is not "
        f"a manifest (no Content-Type, {len(raw)} bytes, not JSON); is it a registry?")


def test_a_manifest_too_large_is_refused(repo: Repo, reader: RegistryReader,
                                         stub: StubRegistry) -> None:
    repo.add(b" " * MAX_MANIFEST_SIZE + b"{}", tag="big")
    repo.add(b" " * (MAX_MANIFEST_SIZE - 2) + b"{}", tag="edge")
    with pytest.raises(RegistryError, match=f"^{stub.host} sent "):
        reader.manifest("big")
    assert len(reader.manifest("edge").raw) == MAX_MANIFEST_SIZE


def test_a_missing_manifest_is_not_found(repo: Repo, reader: RegistryReader) -> None:
    with pytest.raises(NotFound, match="while fetching the manifest app:nothing "):
        reader.manifest("nothing")
    absent = str(Digest.of(b"absent"))
    with pytest.raises(NotFound, match=f"while fetching the manifest app@{absent} "):
        reader.manifest(absent)


def test_a_manifest_that_does_not_parse_is_named(repo: Repo, reader: RegistryReader,
                                                 stub: StubRegistry) -> None:
    digest = repo.add(b'{"schemaVersion": 2, "config": 5}', tag="bad")
    with pytest.raises(FreightError) as caught:
        reader.image(Reference.parse(f"{stub.host}/app:bad"))
    assert f"manifest {digest}" in str(caught.value)


# --- blobs ---------------------------------------------------------------------------------


def test_a_blob_streams_and_reads_in_any_sizes(repo: Repo, reader: RegistryReader) -> None:
    with reader.open_blob(Digest.of(LAYER)) as blob:
        assert blob.read(0) == b""
        assert blob.read(10) == LAYER[:10]
        assert blob.read(5000) == LAYER[10:5010]
        assert blob.read() == LAYER[5010:]
        assert blob.read() == b"" and blob.read(7) == b""


def test_a_missing_blob_is_not_found_in_the_registry_words(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    """The error is read from the answer's body: that body was once closed first, and a
    404 (or 401, 5xx) on a blob raised httpx.StreamClosed, not the registry's error."""
    absent = Digest.of(b"absent")
    with pytest.raises(NotFound) as caught:
        reader.open_blob(absent)
    assert str(caught.value) == (f"{stub.host} answered HTTP 404 while downloading blob "
                                 f"{absent.short} (BLOB_UNKNOWN: stub)")


def test_a_refused_resume_is_the_registry_error(repo: Repo, reader: RegistryReader,
                                                stub: StubRegistry) -> None:
    def refuse_ranges(seen: Seen, data: bytes) -> Answer:
        if "range" in seen.headers:
            return error(503, "UNAVAILABLE")
        return 200, {CUT_AFTER: "1000"}, data
    repo.blob_answer = refuse_ranges
    with reader.open_blob(Digest.of(LAYER)) as blob, pytest.raises(RegistryError) as caught:
        blob.read()
    assert str(caught.value).startswith(f"{stub.host} answered HTTP 503 while downloading blob")


def _cut_first(times: int, at: int = 1000) -> Callable[[Seen, bytes], Answer]:
    """Cut the first `times` answers after `at` bytes; answer Range requests with 206."""
    served = {"n": 0}

    def answer(seen: Seen, data: bytes) -> Answer:
        start = int(seen.headers.get("range", "bytes=0-")[6:].rstrip("-"))
        status = 206 if start else 200
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} \
            if start else {}
        served["n"] += 1
        if served["n"] <= times:
            headers[CUT_AFTER] = str(at)
        return status, headers, data[start:]
    return answer


def test_a_broken_download_resumes_from_the_byte_reached(
        repo: Repo, reader: RegistryReader, stub: StubRegistry, sleeps: list[float]) -> None:
    repo.blob_answer = _cut_first(2)
    with reader.open_blob(Digest.of(LAYER)) as blob:
        assert blob.read() == LAYER
    assert len(sleeps) == 2  # each resume waited, through the client's own retry policy
    ranges = [s.headers.get("range") for s in stub.requests("GET", "/blobs/")]
    assert ranges == [None, "bytes=1000-", "bytes=2000-"]


def test_resumes_end_after_a_budget_even_when_each_brings_bytes(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    repo.blob_answer = _cut_first(100, at=100)
    with reader.open_blob(Digest.of(LAYER)) as blob, \
            pytest.raises(NetworkError, match=f"^download from {stub.host} failed: ") as caught:
        blob.read()
    assert len(stub.requests("GET", "/blobs/")) == MAX_RESUMES + 1
    assert not str(caught.value).endswith("None")  # says what broke


def test_a_registry_that_cannot_resume_says_so(repo: Repo, reader: RegistryReader) -> None:
    def no_range(seen: Seen, data: bytes) -> Answer:
        return 200, ({} if "range" in seen.headers else {CUT_AFTER: "1000"}), data
    repo.blob_answer = no_range
    with reader.open_blob(Digest.of(LAYER)) as blob, \
            pytest.raises(NetworkError, match=r"cannot resume a download \(no Range support\)"):
        blob.read()


def test_a_closed_download_is_not_resumed(repo: Repo, reader: RegistryReader,
                                          stub: StubRegistry) -> None:
    repo.blob_answer = _cut_first(1)
    blob = reader.open_blob(Digest.of(LAYER))
    assert blob.read(10) == LAYER[:10]
    blob.close()
    with pytest.raises(Exception):  # noqa: B017 (whatever the closed stream raises)
        blob.read()
    assert len(stub.requests("GET", "/blobs/")) == 1


# --- trees ---------------------------------------------------------------------------------


def _index(repo: Repo, arches: list[str], tag: str = "multi") -> list[str]:
    digests, entries = [], []
    for arch in arches:
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        raw = _manifest(config)
        digests.append(repo.add(raw))
        entries.append({"mediaType": mt.OCI_MANIFEST, "digest": digests[-1], "size": len(raw),
                        "platform": {"os": "linux", "architecture": arch}})
    repo.add(json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                         "manifests": entries}).encode(), mt.OCI_INDEX, tag=tag)
    return digests


def test_an_image_is_a_tree_of_lazy_blobs(repo: Repo, reader: RegistryReader,
                                          stub: StubRegistry) -> None:
    repo.add(MANIFEST, tag="v1")
    image = reader.image(Reference.parse(f"{stub.host}/app:v1"))
    assert image.names == (f"{stub.host}/app:v1",) and image.label == f"{stub.host}/app:v1"
    node = image.root
    assert isinstance(node, ImageNode)
    assert node.manifest is not None and node.manifest.raw == MANIFEST
    assert not stub.requests("GET", "/blobs/")  # nothing downloaded yet
    [layer] = node.layers
    assert layer.what == f"layer 1 of app ({Digest.of(LAYER).short})"
    assert node.config.what == f"config of app ({Digest.of(CONFIG).short})"
    assert layer.origin == stub.host and layer.digest == Digest.of(LAYER)
    assert layer.size == len(LAYER) and layer.media_type == mt.OCI_LAYER_GZIP
    with layer.open() as f:
        assert f.read() == LAYER
    assert len(stub.requests("GET", "/manifests/")) == 1  # never fetched twice


def test_a_blob_redirected_to_storage_is_followed(repo: Repo, reader: RegistryReader,
                                                  stub: StubRegistry, stubs) -> None:  # type: ignore[no-untyped-def]
    storage = stubs()
    storage.script.append(lambda seen: (200, {}, LAYER) if seen.path == "/bucket/x" else None)
    repo.blob_answer = lambda seen, data: (307, {"Location": f"http://{storage.host}/bucket/x"},
                                           b"")
    with reader.open_blob(Digest.of(LAYER)) as blob:
        assert blob.read() == LAYER
    assert "authorization" not in storage.seen[0].headers


def test_an_image_by_digest_has_no_name(repo: Repo, reader: RegistryReader,
                                        stub: StubRegistry) -> None:
    digest = repo.add(MANIFEST)
    image = reader.image(Reference.parse(f"{stub.host}/app@{digest}"))
    assert image.names == ()


def test_an_index_is_walked_whole_without_a_platform(repo: Repo, reader: RegistryReader,
                                                     stub: StubRegistry) -> None:
    _index(repo, ["amd64", "arm64"])
    image = reader.image(Reference.parse(f"{stub.host}/app:multi"))
    assert isinstance(image.root, IndexNode)
    assert [d.platform for d, _ in image.root.children] == [
        Platform("linux", "amd64"), Platform("linux", "arm64")]
    assert all(isinstance(child, ImageNode) for _, child in image.root.children)
    assert len(image.root.index.manifests) == 2  # the index itself, pushed as it came


def test_a_platform_is_chosen_before_the_others_are_fetched(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    _, arm = _index(repo, ["amd64", "arm64"])
    image = reader.image(Reference.parse(f"{stub.host}/app:multi"),
                         platform=Platform("linux", "arm64"))
    assert isinstance(image.root, ImageNode) and image.root.platform == Platform("linux", "arm64")
    fetched = [s.path.rsplit("/", 1)[1] for s in stub.requests("GET", "/manifests/")]
    assert fetched == ["multi", arm]
    assert image.names == (f"{stub.host}/app:multi",)
    assert image.label == f"{stub.host}/app:multi"


def test_a_platform_asked_of_a_single_image_is_not_an_index_choice(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    repo.add(MANIFEST, tag="v1")
    image = reader.image(Reference.parse(f"{stub.host}/app:v1"),
                         platform=Platform("linux", "arm64"))
    assert isinstance(image.root, ImageNode)


def test_a_platform_the_index_lacks_is_a_usage_error_listing_what_there_is(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    _index(repo, ["amd64", "arm64"])
    ref = Reference.parse(f"{stub.host}/app:multi")
    with pytest.raises(UsageError) as caught:
        reader.image(ref, platform=Platform("linux", "s390x"))
    assert str(caught.value) == (f"{ref} has no image for linux/s390x (it has: linux/amd64, "
                                 "linux/arm64); choose one with --platform")


def test_pick_takes_the_first_match_and_names_no_platforms(repo: Repo,
                                                          reader: RegistryReader) -> None:
    from freight.manifest import Index
    _index(repo, ["arm64", "arm64"])
    raw, _ = repo.manifests["multi"]
    index = Index.parse(raw, mt.OCI_INDEX, "index")
    ref = Reference.parse("r.test/app:multi")
    assert pick(index, Platform("linux", "arm64"), ref) == index.manifests[0]
    bare = Index.parse(json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": str(Digest.of(MANIFEST)),
         "size": len(MANIFEST)}]}).encode(), mt.OCI_INDEX, "index")
    with pytest.raises(UsageError, match=r"\(it has: no platforms\)"):
        pick(bare, Platform("linux", "arm64"), ref)


def test_an_entry_of_another_type_is_refused(repo: Repo, reader: RegistryReader,
                                             stub: StubRegistry) -> None:
    digest = repo.add(b'{"hello": "world"}', "application/vnd.example+json", tag="odd")
    with pytest.raises(RegistryError) as caught:
        reader.image(Reference.parse(f"{stub.host}/app:odd"))
    assert str(caught.value) == \
        f"app@{digest} has unsupported media type 'application/vnd.example+json'"


def test_tags_are_listed(stub: StubRegistry, reader: RegistryReader) -> None:
    stub.script.append(lambda seen: (200, {"Content-Type": "application/json"},
                                     b'{"name": "app", "tags": ["b", "a"]}')
                       if "/tags/list" in seen.path else None)
    assert reader.tags() == ["b", "a"]
    [get] = stub.requests("GET", "/tags/list")
    assert get.path == "/v2/app/tags/list?n=1000"


def test_a_registry_gone_mid_pull_is_a_network_error_naming_the_blob(
        repo: Repo, reader: RegistryReader, stub: StubRegistry) -> None:
    stub.stop()
    digest = Digest.of(LAYER)
    with pytest.raises(NetworkError) as caught:
        reader.open_blob(digest)
    assert str(caught.value).startswith(f"cannot download blob {digest} from {stub.host}: ")
